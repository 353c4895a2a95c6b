# VACUUM gives pages back (issue 12, the size goal): its cleanup moves the
# live elements and duplicate tuples of the last pages into free room on the
# first ones and truncates the index (src/hnswpage.c, compaction).
#   1. after deleting three quarters of the rows, the index is at most 1.3
#      times a fresh build of the rest, every row is still found, and a
#      standby replays the truncation and answers the same;
#   2. a live duplicate chain on the last pages moves too;
#   3. a crash between the moves and the renaming of the lists loses no
#      row, and the next VACUUM finishes the job;
#   4. an insert that waits for the index stops the compaction half-way
#      (held there by a wait point), and still nothing is lost;
#   5. a transaction that uses the index keeps it whole: no compaction
#      until it ends;
#   6. stopped half-way, then the rows of moved elements die: the next
#      VACUUM frees the old slots and where they went, and compacts;
#   7. a parallel VACUUM succeeds and leaves the compaction to the next
#      that is not parallel, which compacts;
#   8. after deletes spread over every page, at most 1.3 times a fresh
#      build, and 1.1 on average over four tables; a top element left on a
#      late page gets a page of its own in a second pass.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HnswTest;

my $DIM = 24;
my $MAX_RATIO = 1.3;
# Between VACUUMs (a crash, a compaction stopped half-way) a repaired
# graph may miss a row now and then at ef_search 100; after a VACUUM none.
# That compaction itself changes no answer, section 1 checks exactly.
my %TOL = (tolerance => 0.002);

my $node = PostgreSQL::Test::Cluster->new('compact');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "autovacuum = off\njit = off\n");
$node->start;
hnsw_setup_data($node, dim => $DIM, clusters => 20, seed => 0.25);

# A table of n clustered rows and its index; the first `delete` rows go.
sub load_and_delete
{
	my ($table, %o) = @_;
	hnsw_load($node, $table, n => $o{n} // 6000, seed => $o{seed} // 0.5);
	$node->safe_psql(
		'postgres', qq{
CREATE INDEX ${table}_idx ON $table USING hnsw (v vector_l2_ops);
DELETE FROM $table WHERE id <= @{[ $o{delete} // 4500 ]};
});
	return;
}

sub size_of
{
	my ($index) = @_;
	return $node->safe_psql('postgres', "SELECT pg_relation_size('$index')");
}

# The index's size over that of a fresh build of the same rows.
sub ratio_to_fresh
{
	my ($table) = @_;
	$node->safe_psql(
		'postgres', qq{
DROP TABLE IF EXISTS ${table}_fresh;
CREATE TABLE ${table}_fresh AS SELECT * FROM $table;
CREATE INDEX ${table}_fresh_idx ON ${table}_fresh USING hnsw (v vector_l2_ops);
});
	return size_of("${table}_idx") / size_of("${table}_fresh_idx");
}

# VACUUM with the compaction's DEBUG1 summary of its first pass: (element
# moves, duplicate moves, pages the free slots raise the end by, whether a
# second pass ran)
sub vacuum_debug
{
	my ($table) = @_;
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET client_min_messages = debug1; VACUUM $table");
	is($rc, 0, "VACUUM $table succeeds") or diag($err);
	note(join("\n", grep { /hnsw compaction/ } split /\n/, $err));
	my $second = $err =~ /hnsw compaction of "[^"]+" \(second pass\)/ ? 1 : 0;
	return $err =~ /(\d+) for the duplicates, (\d+) for the free slots.* (\d+) element and (\d+) duplicate tuple moves/
	  ? ($3, $4, $2 - $1, $second) : (0, 0, 0, $second);
}

#------------------------------------------------------------------------
# 1. A mass delete, and a standby
#------------------------------------------------------------------------
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('compact_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;

load_and_delete('t1');
my $before = size_of('t1_idx');
# A first VACUUM while a transaction holds the index: the rows go, no
# compaction.  The answers then, and after the compaction, must be equal.
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN; SET LOCAL enable_seqscan = off;
SELECT id FROM t1 ORDER BY v <-> (SELECT v FROM t1 LIMIT 1) LIMIT 1});
vacuum_debug('t1');
my $answers = q{SET enable_seqscan = off; SET enable_bitmapscan = off; SET hnsw.ef_search = 100;
SELECT string_agg(b.ids, ' ' ORDER BY a.id) FROM t1 a CROSS JOIN LATERAL
  (SELECT string_agg(id::text, ',') AS ids FROM (SELECT id FROM t1 b ORDER BY b.v <-> a.v LIMIT 5) s) b};
my $before_answers = $node->safe_psql('postgres', $answers);
$holder->query_safe('COMMIT');
$holder->quit;
my ($moves) = vacuum_debug('t1');
cmp_ok($moves, '>=', 1000, "1: the compaction moved the last pages' live elements ($moves)");
my $ratio = ratio_to_fresh('t1');
cmp_ok($ratio, '<=', $MAX_RATIO,
	sprintf('1: after deleting 75%% of the rows the index is %.2f times a fresh build (was %.2f)',
		$ratio, $before / size_of('t1_fresh_idx')));
is($node->safe_psql('postgres', $answers), $before_answers,
	'1: every self-search answers exactly as before the compaction');
hnsw_invariant($node, 't1', 't1_idx', after_vacuum => 1, name => '1: after the compaction');

$node->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT pg_relation_size('t1_idx')}),
	size_of('t1_idx'), '1: the standby replayed the truncation');
my $q = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT string_agg(b.id::text, ',') FROM t1 a CROSS JOIN LATERAL
  (SELECT id FROM t1 b ORDER BY b.v <-> a.v LIMIT 3) b WHERE a.id % 50 = 0};
is($standby->safe_psql('postgres', $q), $node->safe_psql('postgres', $q),
	'1: the standby answers as the primary does');
$standby->stop;

#------------------------------------------------------------------------
# 2. A live duplicate chain on the last pages.  The chain of a vector
# with 1,500 rows fills the first duplicate pages and dies; one of 2,000
# rows, added later, takes pages of its own near the end.
#------------------------------------------------------------------------
my $h1 = '[' . join(',', (1) x $DIM) . ']';
my $h2 = '[' . join(',', (2) x $DIM) . ']';
hnsw_load($node, 't2', n => 0, seed => 0.5);
$node->safe_psql(
	'postgres', qq{
CREATE INDEX t2_idx ON t2 USING hnsw (v vector_l2_ops);
INSERT INTO t2 SELECT i, '$h1' FROM generate_series(1, 1500) i;
INSERT INTO t2 SELECT i, hnsw_point((SELECT x FROM hnsw_centres WHERE c = 1 + i % 20), 0.3)
  FROM generate_series(1501, 5500) i;
INSERT INTO t2 SELECT i, '$h2' FROM generate_series(5501, 7500) i;
INSERT INTO t2 SELECT i, hnsw_point((SELECT x FROM hnsw_centres WHERE c = 1 + i % 20), 0.3)
  FROM generate_series(7501, 8500) i;
DELETE FROM t2 WHERE id <= 5500;
});
my ($emoves, $dmoves) = vacuum_debug('t2');
cmp_ok($dmoves, '>=', 1, "2: duplicate tuples of the live chain moved ($dmoves)");
# 1.0 to 1.37 in runs so far: a live element whose neighbor tuple lies on
# a late page holds the end there (open: README, VACUUM gives pages back)
$ratio = ratio_to_fresh('t2');
cmp_ok($ratio, '<=', 1.5, sprintf('2: the index is %.2f times a fresh build', $ratio));
is( $node->safe_psql(
		'postgres', qq{SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM (SELECT id FROM t2 ORDER BY v <-> '$h2' LIMIT 2500) s WHERE id BETWEEN 5501 AND 7500}),
	2000,
	'2: the index returns all 2,000 rows of the moved chain');
hnsw_invariant($node, 't2', 't2_idx', after_vacuum => 1, name => '2: after the compaction');

#------------------------------------------------------------------------
# 3. A crash after the moves, before the lists are renamed
#------------------------------------------------------------------------
load_and_delete('t3', seed => 0.7);
$before = size_of('t3_idx');
my $hold = hnsw_hold($node);
my $vac = $node->background_psql('postgres', on_error_stop => 0);
$vac->query_until(qr/started/, "SET hnsw.test_wait_point = 'vacuum_compact_moved';\n\\echo started\nVACUUM t3;\n");
hnsw_wait_until_held($node);
$node->stop('immediate');
eval { $vac->quit; };
eval { $hold->{session}->quit; };
$node->start;
is(size_of('t3_idx'), $before, '3: the crash came before the truncation');
hnsw_invariant($node, 't3', 't3_idx', reachable => 1, %TOL,
	name => '3: after a crash between the moves and the renaming');
vacuum_debug('t3');
$ratio = ratio_to_fresh('t3');
cmp_ok($ratio, '<=', $MAX_RATIO,
	sprintf('3: the next VACUUM compacts: %.2f times a fresh build', $ratio));
hnsw_invariant($node, 't3', 't3_idx', after_vacuum => 1,
	name => '3: after the next VACUUM');

#------------------------------------------------------------------------
# 4. An insert waits for the index: the compaction stops half-way
#------------------------------------------------------------------------
load_and_delete('t4', seed => 0.9);
$before = size_of('t4_idx');
$hold = hnsw_hold($node);
$vac = $node->background_psql('postgres');
$vac->query_until(qr/started/, "SET hnsw.test_wait_point = 'vacuum_compact_moved';\n\\echo started\nVACUUM t4;\n\\echo vacuumed\n");
hnsw_wait_until_held($node);
my $ins = $node->background_psql('postgres');
$ins->query_until(qr/started/,
	"\\echo started\nINSERT INTO t4 SELECT 100000, v FROM t4 WHERE id = 5000;\n\\echo inserted\n");
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) > 0 FROM pg_locks WHERE relation = 't4_idx'::regclass AND NOT granted}),
	'4: the insert waits for the index');
hnsw_release($hold);
$vac->query_until(qr/vacuumed/, '');
$ins->query_until(qr/inserted/, '');
$vac->quit;
$ins->quit;
is(size_of('t4_idx'), $before, '4: the compaction stopped before the truncation');
hnsw_invariant($node, 't4', 't4_idx', reachable => 1, %TOL,
	name => '4: after a compaction stopped half-way');
vacuum_debug('t4');
$ratio = ratio_to_fresh('t4');
cmp_ok($ratio, '<=', $MAX_RATIO,
	sprintf('4: the next VACUUM compacts: %.2f times a fresh build', $ratio));
hnsw_invariant($node, 't4', 't4_idx', after_vacuum => 1, name => '4: after the next VACUUM');

#------------------------------------------------------------------------
# 6. Stopped half-way as in 4, then rows of moved elements die: the next
# VACUUM's passes take the old slots that led there (routers) for deleted
# elements, repair the lists that name them and free them, with where they
# went; then it compacts again.
#------------------------------------------------------------------------
load_and_delete('t6', seed => 0.7);
$before = size_of('t6_idx');
$hold = hnsw_hold($node);
$vac = $node->background_psql('postgres');
$vac->query_until(qr/started/, "SET hnsw.test_wait_point = 'vacuum_compact_moved';\n\\echo started\nVACUUM t6;\n\\echo vacuumed\n");
hnsw_wait_until_held($node);
$ins = $node->background_psql('postgres');
$ins->query_until(qr/started/,
	"\\echo started\nINSERT INTO t6 SELECT 100000, v FROM t6 WHERE id = 5000;\n\\echo inserted\n");
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) > 0 FROM pg_locks WHERE relation = 't6_idx'::regclass AND NOT granted}),
	'6: the insert waits for the index');
hnsw_release($hold);
$vac->query_until(qr/vacuumed/, '');
$ins->query_until(qr/inserted/, '');
$vac->quit;
$ins->quit;
$node->safe_psql('postgres', 'DELETE FROM t6 WHERE id % 2 = 0');
# (once: ERROR, a moved element without a destination)  Its passes free
# the old slots and where they went, then it compacts.
my ($moves6) = vacuum_debug('t6');
cmp_ok($moves6, '>', 0, "6: the VACUUM moves elements ($moves6)");
cmp_ok(size_of('t6_idx'), '<', $before / 2,
	sprintf('6: and gives pages back: %.2f times a fresh build', ratio_to_fresh('t6')));
hnsw_invariant($node, 't6', 't6_idx', after_vacuum => 1,
	name => '6: after the compaction');

#------------------------------------------------------------------------
# 5. A transaction that used the index holds it
#------------------------------------------------------------------------
load_and_delete('t5', seed => 0.3);
$before = size_of('t5_idx');
my $reader = $node->background_psql('postgres');
$reader->query_safe(
	q{BEGIN; SET LOCAL enable_seqscan = off; SELECT id FROM t5 ORDER BY v <-> (SELECT v FROM t5 LIMIT 1) LIMIT 1});
($moves) = vacuum_debug('t5');
is($moves, 0, '5: no compaction while a transaction holds the index');
is(size_of('t5_idx'), $before, '5: the index keeps its size meanwhile');
$reader->query_safe('COMMIT');
$reader->quit;
vacuum_debug('t5');
cmp_ok(size_of('t5_idx'), '<', $before / 2, '5: once it ends, VACUUM compacts');
hnsw_invariant($node, 't5', 't5_idx', after_vacuum => 1, name => '5: after the compaction');

#------------------------------------------------------------------------
# 7. A parallel VACUUM (this node logs for standbys: wal_level replica).
# Its index cleanup runs in parallel mode, where the AccessExclusiveLock
# the compaction takes cannot get the transaction ID it is logged under:
# once, ERROR "cannot assign XIDs during a parallel operation", and no
# VACUUM of a table with two large indexes ever finished.  It leaves the
# compaction to the next VACUUM that is not parallel.
#------------------------------------------------------------------------
load_and_delete('t7', seed => 0.45);
$before = size_of('t7_idx');
my ($prc, $pout, $perr) = $node->psql('postgres',
	'SET min_parallel_index_scan_size = 0; VACUUM (PARALLEL 2, VERBOSE) t7');
is($prc, 0, '7: a parallel VACUUM succeeds') or diag($perr);
like($perr, qr/launched \d+ parallel vacuum workers? for index/,
	'7: it vacuumed the indexes in parallel');
is(size_of('t7_idx'), $before, '7: it leaves the compaction to the next VACUUM');
hnsw_invariant($node, 't7', 't7_idx', after_vacuum => 1, name => '7: after the parallel VACUUM');
($prc, $pout, $perr) = $node->psql('postgres', 'VACUUM (PARALLEL 0) t7');
is($prc, 0, '7: then VACUUM (PARALLEL 0) succeeds') or diag($perr);
$ratio = ratio_to_fresh('t7');
cmp_ok($ratio, '<=', $MAX_RATIO,
	sprintf('7: and compacts: the index is %.2f times a fresh build', $ratio));

#------------------------------------------------------------------------
# 8. Deletes spread over every page: no page of free slots only.  A page
# filled up as its last element was written keeps that element's neighbor
# tuple on the next page, so nearly every page ends with one, and where
# that element is a free slot with no room for a new neighbor tuple before
# the end, the end used to be raised past it; that reached the next page's
# last slot, and so on: 1.00 to 1.12 times a fresh build after a delete of
# 70% of uniform rows, and once, in CI, over 1.5.  Such a slot is now
# dropped, line pointer and all (0 or 1 a table): the free slots raise the
# end by 2 pages at most.
#
# And a top element (level 3 or 4 of 8,000 at m 16) built onto a late page
# found no free slot of its level before the goal, and no free slot whose
# neighbor tuple could grow where it is: it stayed, and held the end
# there: 1.5 to 2.0 times a fresh build in about one table in five (CI
# failed on it twice).  The first pass now moves the rest anyway, and a
# second rebuilds one of the pages it emptied for that element.
#
# The levels are drawn from hnsw.test_seed, so each table is the same in
# every run; seed 2 of the last table puts a level-4 element on block 225.
# Each table at most $MAX_RATIO times a fresh build, the mean at most 1.1.
#------------------------------------------------------------------------
my @ratios;
my @cases = (
	[ 't8_1', 0.1, 0.05, 101 ], [ 't8_2', 0.2, 0.10, 102 ],
	[ 't8_3', 0.3, 0.15, 103 ], [ 't8_4', 0.4, 0.20, 104 ],
	[ 't8_top', 0.02, 0.01, 2 ]);
for my $case (@cases)
{
	my ($t, $dataseed, $delseed, $levelseed) = @$case;
	hnsw_load($node, $t, n => 8000, seed => $dataseed);
	$node->safe_psql(
		'postgres', qq{
SET hnsw.test_seed = $levelseed;
CREATE INDEX ${t}_idx ON $t USING hnsw (v vector_l2_ops);
SELECT setseed($delseed);
DELETE FROM $t WHERE random() < 0.7;
});
	my (undef, undef, $raised, $second) = vacuum_debug($t);
	cmp_ok($raised, '<=', 2,
		"8: $t: free slots whose neighbor tuple lies past the end raise it by $raised pages");
	is($second, 1, "8: $t: the level-4 element on a late page takes a second pass")
	  if $t eq 't8_top';
	my $ratio = ratio_to_fresh($t);
	cmp_ok($ratio, '<=', $MAX_RATIO,
		sprintf('8: after a delete of 70%% spread over every page, %s: the index is %.2f times a fresh build',
			$t, $ratio));
	push @ratios, $ratio unless $t eq 't8_top';
}
my $mean = 0;
$mean += $_ / @ratios for @ratios;
cmp_ok($mean, '<=', 1.1,
	sprintf('8: over the four tables, the index is %.2f times a fresh build on average (%s)',
		$mean, join(', ', map { sprintf('%.2f', $_) } @ratios)));
hnsw_invariant($node, 't8_4', 't8_4_idx', after_vacuum => 1, name => '8: after the compaction');
hnsw_invariant($node, 't8_top', 't8_top_idx', after_vacuum => 1,
	name => '8: after the second pass');

$node->stop;
done_testing();
