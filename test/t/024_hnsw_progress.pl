# CREATE INDEX ... USING hnsw reports its progress in
# pg_stat_progress_create_index: while it loads the table the phase is
# "building index: loading tuples" and tuples_done counts the rows read.
#
# No timing luck involved: the index is on an expression whose function
# waits, at row 5000, for an advisory lock that this test holds.  The build
# is then parked in the middle of its load for as long as we look, and is
# let go afterwards.  Once for a build that fits in maintenance_work_mem and
# once for one that has outgrown it by row 5000.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HnswTest;

my $N = 10000;
my $GATE_ID = 5000;
my $LOCK = 4242;

my $node = PostgreSQL::Test::Cluster->new('progress');
$node->init;
$node->start;

hnsw_setup_data($node, dim => 16, clusters => 30, seed => 0.25);
hnsw_load($node, 't', n => $N, seed => 0.5);
# ANALYZE, so that the build knows the table's size (tuples_total).
$node->safe_psql(
	'postgres', qq{
ANALYZE t;
-- Declared IMMUTABLE so that it may be indexed; it waits at row $GATE_ID
-- until the advisory lock $LOCK is free.
CREATE FUNCTION gate(id int, v vector) RETURNS vector
LANGUAGE plpgsql IMMUTABLE AS \$\$
BEGIN
  IF id = $GATE_ID THEN
    PERFORM pg_advisory_lock_shared($LOCK);
    PERFORM pg_advisory_unlock_shared($LOCK);
  END IF;
  RETURN v;
END
\$\$;
});

for my $b ([ 'in-memory', '256MB', 0 ], [ 'spilled', '1MB', 1 ])
{
	my ($build, $mwm, $spills) = @$b;

	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($LOCK)");

	my $builder = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $builder->query_safe('SELECT pg_backend_pid()');
	$builder->query_until(
		qr/started/, qq{
SET maintenance_work_mem = '$mwm';
\\echo started
CREATE INDEX t_gate_idx ON t USING hnsw ((gate(id, v)::vector(16)) vector_l2_ops);
});

	# Wait until the build is parked at the gate.
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) = 1 FROM pg_locks
WHERE pid = $pid AND locktype = 'advisory' AND NOT granted}),
		"$build build: CREATE INDEX reaches row $GATE_ID and waits there");

	my $row = $node->safe_psql(
		'postgres', qq{
SELECT phase, tuples_done, tuples_total, relid::regclass
FROM pg_stat_progress_create_index WHERE pid = $pid});
	note("$build build, parked at row $GATE_ID: pg_stat_progress_create_index: $row");
	my ($phase, $done, $total, $relid) = split /\|/, $row;

	is($relid, 't', "$build build: the progress row names the table");
	is( $phase,
		'building index: loading tuples',
		"$build build: phase is the hnsw load phase");
	ok( defined $done && $done > 0 && $done < $GATE_ID,
		"$build build: tuples_done counts the rows read so far (0 < $done < $GATE_ID)"
	);
	is($total, $N, "$build build: tuples_total is the table's size");

	$holder->query_safe("SELECT pg_advisory_unlock($LOCK)");
	$holder->quit;

	# The next statement runs once CREATE INDEX has finished.
	my ($out, $failed) = $builder->query('SELECT 1');
	my $stderr = $builder->{stderr};
	$builder->quit;
	if ($spills)
	{
		# ... and before the gate, so the phase above was the one of the
		# load that goes on through the pages.
		my ($at) = $stderr =~
		  /hnsw graph no longer fits into maintenance_work_mem after (\d+) tuples/;
		ok(defined $at && $at < $GATE_ID,
			"$build build: it outgrew maintenance_work_mem before row $GATE_ID")
		  or diag($stderr);
	}
	else
	{
		unlike($stderr, qr/ERROR|maintenance_work_mem/,
			"$build build: no error, and no NOTICE about memory");
	}
	is( $node->safe_psql(
			'postgres', q{
SELECT indisvalid FROM pg_index WHERE indexrelid = 't_gate_idx'::regclass}),
		't',
		"$build build: the index is built once the gate opens");
	is( $node->safe_psql(
			'postgres', 'SELECT count(*) FROM pg_stat_progress_create_index'),
		0,
		"$build build: no progress row is left behind");
	is( $node->safe_psql(
			'postgres',
			q{SELECT reltuples::bigint FROM pg_class WHERE relname = 't_gate_idx'}),
		$N,
		"$build build: all $N rows indexed");

	$node->safe_psql('postgres', 'DROP INDEX t_gate_idx');
}

$node->stop;

done_testing();
