# Churn (issue 12): 8 pgbench clients insert, update and delete random and
# duplicate vectors for 120 s (HNSW_CHURN_SECONDS to change it; the longer
# run is `HNSW_CHURN_SECONDS=1800 test/run test/t/061_hnsw_churn.pl`),
# while one more client runs VACUUM over and over and autovacuum, set
# aggressive on the table, runs too.  The loop's VACUUMs are 1.5 s apart
# and SKIP_LOCKED: autovacuum skips a table it cannot lock at once, and a
# VACUUM that waited for autovacuum's lock would cancel it.  Mid-way, from the test itself:
#   - at 30% of the run, DELETE every row, then reload 5,000 rows in 10
#     INSERTs, while the clients and VACUUM go on;
#   - at 60%, ALTER TABLE ... ALTER COLUMN v TYPE vector (dropping the
#     typmod: PostgreSQL keeps the index, whose metapage has the
#     dimensions).
# Then:
#   - no client transaction and no VACUUM failed, and the server logged no
#     ERROR;
#   - the invariant (hnsw_invariant) holds as the churn left the index:
#     at most 0.2% of the rows missed (every row found by its own vector,
#     LIMIT 10 or the number of its duplicates, at ef_search 100; inserts
#     since the last VACUUM may land where a search misses them),
#     hnsw_verify(heapallindexed) finds nothing wrong;
#   - after a final VACUUM, 0 rows missing, no element unreachable from
#     the entry point on any layer, and a relaxed iterative scan from a
#     missed row's vector reaches every row;
#   - the index is at most 1.3 times as large as a fresh build of the same
#     rows (CREATE INDEX on a copy of the table: what a REINDEX would build).
# The figures (rows missing, unreachable, size ratio, free slots) are
# printed at the end.
#
# 24 dimensions, 20 clusters, and 10 "hot" vectors that inserts and
# updates copy, so that long duplicate chains come and go.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use HnswTest;

my $SECONDS = $ENV{HNSW_CHURN_SECONDS} // 120;
my $CLIENTS = 8;
my $DIM = 24;
my $CLUSTERS = 20;
my $N0 = 5000;
my $HOT = 10;
my $MAX_SIZE_RATIO = 1.3;

my $node = PostgreSQL::Test::Cluster->new('churn');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
autovacuum = on
autovacuum_naptime = '1s'
log_statement = 'none'
log_autovacuum_min_duration = -1
max_connections = 30
deadlock_timeout = '100ms'
jit = off
});
$node->start;

hnsw_setup_data($node, dim => $DIM, clusters => $CLUSTERS, seed => 0.25);
hnsw_load($node, 'c', n => $N0, seed => 0.5);
hnsw_serial_ids($node, 'c', $N0 + 1);
$node->safe_psql(
	'postgres', qq{
-- autovacuum as often as it can be had
ALTER TABLE c SET (autovacuum_vacuum_threshold = 50,
                   autovacuum_vacuum_scale_factor = 0.01,
                   autovacuum_vacuum_insert_threshold = 100,
                   autovacuum_vacuum_insert_scale_factor = 0.01,
                   autovacuum_analyze_threshold = 200,
                   autovacuum_analyze_scale_factor = 0.05);
CREATE TABLE hot (h int PRIMARY KEY, v vector);
SELECT setseed(0.125);
INSERT INTO hot SELECT h, hnsw_point((SELECT x FROM hnsw_centres WHERE c = 1 + h % $CLUSTERS), 0.3)
  FROM generate_series(1, $HOT) h;
-- some duplicates from the start
INSERT INTO c (v) SELECT v FROM hot, generate_series(1, 20);
CREATE INDEX c_v_idx ON c USING hnsw (v vector_l2_ops);
ANALYZE c;
});

# Updates and deletes take the first row at or after a random id below
# the sequence's last value, so that they nearly always hit one.  One row
# per statement, so no lock-order deadlock between clients.
my $pick = q{(SELECT min(id) FROM c WHERE id >= :id)};
my $top = q{SELECT last_value AS top FROM c_id \gset
\set id random(1, :top)};
my %scripts = (
	'061_insert@3' => hnsw_insert_script(clusters => $CLUSTERS),
	'061_insert_dup@2' => qq{
\\set h random(1, $HOT)
INSERT INTO c (v) SELECT v FROM hot WHERE h = :h;
},
	'061_update@2' => qq{
\\set seed random(0, 999999999)
\\set c random(1, $CLUSTERS)
$top
BEGIN;
SELECT setseed(:seed / 1000000000.0);
UPDATE c SET v = (SELECT hnsw_point(x, 0.3) FROM hnsw_centres WHERE c = :c)
  WHERE id = $pick;
COMMIT;
},
	'061_update_dup@1' => qq{
\\set h random(1, $HOT)
$top
UPDATE c SET v = (SELECT v FROM hot WHERE h = :h) WHERE id = $pick;
},
	'061_delete@3' => qq{
$top
DELETE FROM c WHERE id = $pick;
},
);

my $log_start = -s $node->logfile;
my $t0 = time();

my $vacuum = hnsw_pgbench_start($node, "--no-vacuum --client=1 --time=$SECONDS",
	{ '061_vacuum' => "VACUUM (SKIP_LOCKED) c;\n\\sleep 1500 ms\n" });
my $main = hnsw_pgbench_start($node,
	"--no-vacuum --client=$CLIENTS --jobs=2 --time=$SECONDS --random-seed=4321",
	\%scripts);

# At 30% of the run: every row deleted, 5,000 reloaded, 10 INSERTs.
sleep($t0 + 0.3 * $SECONDS - time()) if time() < $t0 + 0.3 * $SECONDS;
$node->safe_psql('postgres', 'DELETE FROM c');
for my $b (1 .. 10)
{
	$node->safe_psql(
		'postgres', qq{
SELECT setseed(0.6 + $b / 100.0);
INSERT INTO c (v) SELECT hnsw_point((SELECT x FROM hnsw_centres WHERE c = 1 + i % $CLUSTERS), 0.3)
  FROM generate_series(1, 500) i;
});
}
note(sprintf('delete-all and reload done at %.0f s', time() - $t0));

# At 60%: the typmod dropped.
sleep($t0 + 0.6 * $SECONDS - time()) if time() < $t0 + 0.6 * $SECONDS;
my ($alter_rc, $alter_out, $alter_err) =
  $node->psql('postgres', 'ALTER TABLE c ALTER COLUMN v TYPE vector');
is($alter_rc, 0, 'ALTER COLUMN v TYPE vector mid-way succeeds') or diag($alter_err);
note(sprintf('ALTER COLUMN done at %.0f s', time() - $t0));

my ($f, $out) = hnsw_pgbench_check($main, 'churn pgbench');
my ($vf) = hnsw_pgbench_check($vacuum, 'VACUUM loop', min => 2);

my %per_script;
while ($out =~ /SQL script \d+: \S*?(061_\w+)\n - weight: \d+ \(targets [^)]*\)\n - (\d+) transactions/g)
{
	$per_script{$1} = $2;
}
my $mix = join(', ', map { "$_ $per_script{$_}" } sort keys %per_script);

my $autovacuums = $node->safe_psql('postgres',
	q{SELECT autovacuum_count FROM pg_stat_user_tables WHERE relname = 'c'});
cmp_ok($autovacuums, '>=', 1, 'autovacuum ran on the table during the churn');

# (ALTER TABLE cancels an autovacuum of the table: logged as an ERROR)
my $errors = [ grep { !/canceling autovacuum task/ }
	  @{ hnsw_server_errors($node, $log_start) } ];
is(scalar(@$errors), 0, 'the server log shows no error')
  or diag(join("\n", @$errors[0 .. ($#$errors < 9 ? $#$errors : 9)]));

my ($live, $distinct) = split /\|/,
  $node->safe_psql('postgres', 'SELECT count(*), count(DISTINCT v) FROM c');

# The invariant as the churn left the index, then after a final VACUUM.
# A churned graph is not a fresh build: a search at ef_search 100 misses a
# few rows (0.05% to 0.12% here) that one at 1000 finds; see README.
# Every row missed at 100 must be found at 1000.  Until inserts stopped
# cutting groups off (026 section 4), the index as the churn left it hid 1
# row of about 50,000 even from the search at 1000 in 3 of 18 runs (found
# again after the final VACUUM), and this check was a TODO.
my $inv = hnsw_invariant($node, 'c', 'c_v_idx', tolerance => 0.002,
	name => 'after the churn');
# (its own DEBUG lines say what the compaction planned and did: printed)
my ($vac_rc, $vac_out, $vac_err) = $node->psql('postgres',
	'SET client_min_messages = debug2; VACUUM c');
is($vac_rc, 0, 'the final VACUUM succeeds') or diag($vac_err);
diag(join("\n", grep { /c_v_idx/ } split /\n/, $vac_err));
my $invv = hnsw_invariant($node, 'c', 'c_v_idx', after_vacuum => 1,
	name => 'after the churn and a final VACUUM');

# The size against a fresh build of the same rows: a copy of the table,
# with the dimensions the column had before the ALTER (whether REINDEX
# works on a column without them is not this test's business).
my $size = $node->safe_psql('postgres', q{SELECT pg_relation_size('c_v_idx')});
my ($copy_rc, $copy_out, $copy_err) = $node->psql(
	'postgres', qq{
CREATE TABLE c_fresh (id int, v vector($DIM));
INSERT INTO c_fresh SELECT id, v FROM c;
CREATE INDEX c_fresh_idx ON c_fresh USING hnsw (v vector_l2_ops);
});
is($copy_rc, 0, 'a fresh build of the same rows succeeds') or diag($copy_err);
# (no fresh build, no ratio: the test fails)
my $fresh = $copy_rc == 0
  ? $node->safe_psql('postgres', q{SELECT pg_relation_size('c_fresh_idx')}) : 0;
my $ratio = $fresh > 0 ? $size / $fresh : 9**9**9;
cmp_ok($ratio, '<=', $MAX_SIZE_RATIO,
	"after the final VACUUM the index is at most $MAX_SIZE_RATIO times a fresh build of the same rows");

my $v = $invv->{verify} // {};
diag(
	sprintf(
		"churn, %d s, %d clients: %d transactions (%s), %d VACUUMs, %d autovacuums; "
		  . "%d live rows, %d distinct vectors; rows missing %s before the final VACUUM, %s after; "
		  . "unreachable after it: %s on layer 0, %s above; "
		  . "index %d bytes, a fresh build %d: size ratio %.2f; elements %s, of them deleted or free %s",
		$SECONDS, $CLIENTS, $f->{processed} // 0, $mix, $vf->{processed} // 0,
		$autovacuums, $live, $distinct,
		map({ defined $_->{missing} ? scalar(@{ $_->{missing} }) : '?' } $inv, $invv),
		$v->{unreachable} // '?', $v->{unreachable_upper} // '?',
		$size, $fresh, $ratio, $v->{elements} // '?', $v->{deleted} // '?'));

$node->stop;

done_testing();
