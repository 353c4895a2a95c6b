# Soak: 8 pgbench clients insert, update, delete and search through an
# hnsw index for 60 seconds (weights 3:2:1:4) while another session runs
# VACUUM over and over.  Afterwards:
#   - no transaction failed or aborted (in either pgbench), and the server
#     logged no ERROR and no deadlock;
#   - every search during the run returned its 10 rows (a search that came
#     back short raises an error, so it is counted above);
#   - recall@10 over the live rows at hnsw.ef_search = 100 is at least 0.95,
#     right after the run and again after a last VACUUM (exact answers from
#     a sequential scan);
#   - after that VACUUM, the invariant holds (hnsw_invariant): every row is
#     found by a search with its own vector, hnsw_verify(heapallindexed) is
#     clean and finds every element reachable on every layer; and the
#     index holds one heap TID per row.
# This is also the test of VACUUM running for more than 30 s among
# concurrent inserts, deletes and searches (025_hnsw_vacuum.pl runs VACUUM
# as 1% of 3,000 pgbench transactions).
#
# 16 dimensions: see 021_hnsw_concurrent.pl.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HnswTest;

my $SECONDS = 60;
my $CLIENTS = 8;
my $N0 = 10000;
my $K = 10;
my $MIN_RECALL = 0.95;

my $node = PostgreSQL::Test::Cluster->new('soak');
$node->init;
# VACUUM only from our loop; no statement logging (thousands per second).
$node->append_conf(
	'postgresql.conf', q{
autovacuum = off
log_statement = 'none'
max_connections = 30
deadlock_timeout = '100ms'
jit = off
});
$node->start;

hnsw_setup_data($node, dim => 16, clusters => 30, seed => 0.25);
hnsw_load($node, 's', n => $N0, seed => 0.5);
hnsw_load($node, 'q', n => 100, seed => 0.75, stride => 7);
hnsw_serial_ids($node, 's', $N0 + 1);
$node->safe_psql(
	'postgres', qq{
CREATE INDEX s_v_idx ON s USING hnsw (v vector_l2_ops);
ANALYZE s;
});

# Rows are drawn by pgbench's seeded generator (setseed); updates and
# deletes take the first row at or after a random id, so that they nearly
# always hit one.  One row per statement: no lock-order deadlock is
# possible between clients, so a deadlock could only come from the index.
my $pick = q{(SELECT min(id) FROM s WHERE id >= :id)};
my %scripts = (
	'052_insert@3' => hnsw_insert_script(table => 's'),
	'052_update@2' => qq{
\\set seed random(0, 999999999)
\\set c random(1, 30)
\\set id random(1, $N0 + 3000)
BEGIN;
SELECT setseed(:seed / 1000000000.0);
UPDATE s SET v = (SELECT hnsw_point(x, 0.3) FROM hnsw_centres WHERE c = :c)
  WHERE id = $pick;
COMMIT;
},
	'052_delete@1' => qq{
\\set id random(1, $N0 + 3000)
DELETE FROM s WHERE id = $pick;
},
	# A search must return its 10 rows; one that does not is an error.
	'052_search@4' => q{
\set seed random(0, 999999999)
\set c random(1, 30)
BEGIN;
SET LOCAL enable_seqscan = off;
SELECT setseed(:seed / 1000000000.0);
SELECT count(*) AS found FROM (SELECT id FROM s
  ORDER BY v <-> (SELECT hnsw_point(x, 0.3) FROM hnsw_centres WHERE c = :c)
  LIMIT 10) r \gset
\if :found < 10
DO $$ BEGIN RAISE EXCEPTION 'an index search returned fewer than 10 rows'; END $$;
\endif
COMMIT;
},
);

# The search script must really go through the index.
like(
	$node->safe_psql(
		'postgres', q{
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM s
  ORDER BY v <-> (SELECT hnsw_point(x, 0.3) FROM hnsw_centres WHERE c = 1)
  LIMIT 10}),
	qr/Index Scan using s_v_idx/,
	'the searches of the soak use the index');

my $log_start = -s $node->logfile;

my $vacuum = hnsw_pgbench_start($node,
	"--no-vacuum --client=1 --time=$SECONDS",
	{ '052_vacuum' => "VACUUM (INDEX_CLEANUP ON) s;\n" });
my $main = hnsw_pgbench_start($node,
	"--no-vacuum --client=$CLIENTS --jobs=2 --time=$SECONDS --random-seed=1234",
	\%scripts);

my ($f, $out) = hnsw_pgbench_check($main, 'soak pgbench');
my ($vf) = hnsw_pgbench_check($vacuum, 'VACUUM loop', min => 2);

# Per script, from pgbench's report.
my %per_script;
while ($out =~ /SQL script \d+: \S*?(052_\w+)\n - weight: \d+ \(targets [^)]*\)\n - (\d+) transactions/g)
{
	$per_script{$1} = $2;
}
my $mix = join(', ', map { "$_ $per_script{$_}" } sort keys %per_script);
note("soak: $mix");

my $log = slurp_file($node->logfile, $log_start);
my @deadlocks = $log =~ /deadlock detected/g;
my @errors = $log =~ /^.*(?:ERROR|FATAL|PANIC):.*$/mg;
is(scalar(@deadlocks), 0, 'the server log shows no deadlock');
is(scalar(@errors), 0, 'the server log shows no error')
  or diag(join("\n", @errors[0 .. ($#errors < 9 ? $#errors : 9)]));

my ($live, $dead_ids) = split /\|/,
  $node->safe_psql('postgres',
	q{SELECT count(*), (SELECT last_value FROM s_id) - count(*) FROM s});
note("soak: $live live rows at the end, $dead_ids ids deleted or never used");

# Recall over the live rows, as the soak left the index.
my $exact = hnsw_topk($node, 's', 'q', '<->', k => $K, exact => 1);
my $recall = hnsw_recall(
	hnsw_topk(
		$node, 's', 'q', '<->', k => $K, ef_search => 100,
		index => 's_v_idx', name => 'after the soak'),
	$exact);
cmp_ok($recall, '>=', $MIN_RECALL,
	"recall\@$K at ef_search 100 right after the soak >= $MIN_RECALL");

$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) s');
my $recall2 = hnsw_recall(
	hnsw_topk(
		$node, 's', 'q', '<->', k => $K, ef_search => 100,
		index => 's_v_idx', name => 'after the last VACUUM'),
	$exact);
cmp_ok($recall2, '>=', $MIN_RECALL,
	"recall\@$K at ef_search 100 after a last VACUUM >= $MIN_RECALL");

# The invariant, after that VACUUM: every row found by its own vector,
# hnsw_verify(heapallindexed) clean, every element reachable on every
# layer; and one heap TID per live row.
# After the last VACUUM, 0 rows missed at ef_search 100 (README, Design).
my $inv = hnsw_invariant($node, 's', 's_v_idx', after_vacuum => 1,
	name => 'after the soak and a last VACUUM');
my $v = $inv->{verify} // {};
is($v->{heap_tids} // -1, $live, 'the index holds one heap TID per live row');

my $errors = ($f->{failed} // 0) + ($vf->{failed} // 0) + scalar(@errors);
diag(
	sprintf(
		"soak, %d s, %d clients: %d transactions (%s), %d VACUUMs; errors %d, deadlocks %d; "
		  . "%d live rows; recall\@%d at ef_search 100 = %.4f after the run, %.4f after a last VACUUM; "
		  . "index %s pages, %s elements (%s deleted or free), %s unreachable on layer 0, %s above, %s rows not found by their own vector",
		$SECONDS, $CLIENTS, $f->{processed} // 0, $mix, $vf->{processed} // 0,
		$errors, scalar(@deadlocks), $live, $K, $recall, $recall2,
		$v->{pages} // '?', $v->{elements} // '?', $v->{deleted} // '?',
		$v->{unreachable} // '?', $v->{unreachable_upper} // '?',
		defined $inv->{missing} ? scalar(@{ $inv->{missing} }) : '?'));

$node->stop;

done_testing();
