# CREATE INDEX takes the memory the table needs, growing up to
# maintenance_work_mem, rather than reserving all of it up front.
#   - With maintenance_work_mem far above what the machine has (30GB, and
#     the largest value PostgreSQL accepts, about 2TB), serial and parallel
#     builds of a 10-row table succeed, and the graph takes at most 4MB
#     (our DEBUG1 line reports its size).  Reserving the setting failed
#     with "out of memory" wherever it is above RAM and swap.
#   - A serial build whose row estimate is stale (ANALYZE saw 200 of 20,200
#     rows) grows its graph past the estimate and holds every row in
#     memory: no NOTICE, every row found by its own vector, hnsw_verify
#     clean.
#   - The same build in 4MB grows to the limit, then says it no longer fits
#     and finishes on pages with every row indexed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use HnswTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $SMALL_GRAPH_MAX = 4 * 1024 * 1024;

my $node = PostgreSQL::Test::Cluster->new('buildmem');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_parallel_maintenance_workers = 2
autovacuum = off
});
$node->start;

hnsw_setup_data($node, dim => 16, clusters => 20, seed => 0.17);
hnsw_load($node, 'small', n => 10, seed => 0.19);
$node->safe_psql('postgres',
	'ANALYZE small; ALTER TABLE small SET (parallel_workers = 1)');

# Build an index; returns (exit code, stderr with our DEBUG1 lines)
sub build
{
	my ($sql, %o) = @_;
	my $workers = $o{workers} // 0;
	my ($ret, $out, $err) = $node->psql('postgres', qq{
SET client_min_messages = debug1;
SET maintenance_work_mem = '$o{mwm}';
SET max_parallel_maintenance_workers = $workers;
$sql
});
	return ($ret, $err);
}

# The graph size and grow count of our DEBUG1 line for an index
sub graph_size
{
	my ($err, $index) = @_;
	my ($elements, $bytes, $grown) = $err =~
	  /hnsw build of "$index": (\d+) elements in a graph of (\d+) bytes, grown (\d+) times/;
	return ($elements, $bytes, $grown);
}

for my $mwm ('30GB', '2147483647kB')
{
	for my $workers (0, 1)
	{
		my $kind = $workers ? 'parallel' : 'serial';
		my $name = "$kind build in $mwm";
		my ($ret, $err) = build(
			'CREATE INDEX small_idx ON small USING hnsw (v)',
			mwm => $mwm, workers => $workers);
		is($ret, 0, "$name of 10 rows succeeds") or diag($err);
		if ($workers)
		{
			like($err, qr/hnsw build of "small_idx" with 1 parallel workers/,
				"$name: a worker took part");
		}
		my ($elements, $bytes) = graph_size($err, 'small_idx');
		is($elements, 10, "$name: the graph holds the 10 rows");
		ok(defined $bytes && $bytes <= $SMALL_GRAPH_MAX,
			"$name: the graph takes at most $SMALL_GRAPH_MAX bytes")
		  or diag('graph: ' . ($bytes // 'not reported'));
		note "$name: graph of " . ($bytes // '?') . ' bytes';
		is($node->safe_psql('postgres', q{
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM small ORDER BY v <-> (SELECT v FROM small WHERE id = 1) LIMIT 20) s;
}), '10', "$name: an index scan returns every row");
		$node->safe_psql('postgres', 'DROP INDEX IF EXISTS small_idx');
	}
}

# A stale estimate: the area starts at what 200 rows need and grows
hnsw_load($node, 'g', n => 200, seed => 0.23);
$node->safe_psql('postgres', 'ANALYZE g');
hnsw_load($node, 'g', n => 20000, first_id => 201, seed => 0.29, create => 0);
my $rows = 20200;

my ($ret, $err) = build('CREATE INDEX g_mem ON g USING hnsw (v)',
	mwm => '256MB');
is($ret, 0, 'growing build succeeds') or diag($err);
unlike($err, qr/no longer fits/, 'growing build: no NOTICE');
my ($elements, $bytes, $grown) = graph_size($err, 'g_mem');
is($elements, $rows, 'growing build: the graph holds every row');
cmp_ok($grown // 0, '>=', 2, 'growing build: the graph grew');
note "growing build: graph of " . ($bytes // '?') . " bytes, grown " .
  ($grown // '?') . ' times';
my $missed = hnsw_not_self_first($node, 'g', '<->', index => 'g_mem',
	ef_search => 400, name => 'growing build');
is(scalar(@$missed), 0, 'growing build: every row is found by its own vector')
  or diag("not found: @$missed[0 .. ($#$missed < 9 ? $#$missed : 9)]");
my $v = hnsw_verify_check($node, 'g_mem', name => 'growing build');
is($v->{unreachable}, 0, 'growing build: every element reachable');
$node->safe_psql('postgres', 'DROP INDEX g_mem');

# The same in 4MB: grows to the limit, then finishes on pages.  (The build
# above set g's reltuples right: a table of its own, as stale.)
hnsw_load($node, 'h', n => 200, seed => 0.23);
$node->safe_psql('postgres', 'ANALYZE h');
hnsw_load($node, 'h', n => 20000, first_id => 201, seed => 0.29, create => 0);
($ret, $err) = build('CREATE INDEX h_low ON h USING hnsw (v)', mwm => '4MB');
is($ret, 0, 'build in 4MB succeeds') or diag($err);
like($err, qr/hnsw graph no longer fits into maintenance_work_mem after \d+ tuples/,
	'build in 4MB: NOTICE that the graph outgrew maintenance_work_mem');
($elements, $bytes, $grown) = graph_size($err, 'h_low');
ok(defined $bytes && $bytes <= 4 * 1024 * 1024 && $bytes > 3 * 1024 * 1024,
	'build in 4MB: the graph grew to the limit and no further')
  or diag('graph: ' . ($bytes // 'not reported'));
cmp_ok($grown // 0, '>=', 1, 'build in 4MB: the graph grew before it filled');
note "build in 4MB: $elements rows in memory, graph of " . ($bytes // '?') .
  ' bytes';
is($node->safe_psql('postgres',
		"SELECT reltuples FROM pg_class WHERE relname = 'h_low'"),
	$rows, 'build in 4MB: the index holds every row');
$missed = hnsw_not_self_first($node, 'h', '<->', index => 'h_low',
	ef_search => 400, name => 'build in 4MB');
is(scalar(@$missed), 0, 'build in 4MB: every row is found by its own vector')
  or diag("not found: @$missed[0 .. ($#$missed < 9 ? $#$missed : 9)]");

$node->stop;
done_testing();
