# Defects of the hnsw index found by the TAP tests.  Like
# sql/hnsw_defects.sql, this file asserts the CORRECT behaviour: a defect
# still open is a TODO block (reported, not failing the run), a fixed one
# an ordinary assertion that guards against its return.  Each section says
# what was wrong and what was seen.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HnswTest;

my $node = PostgreSQL::Test::Cluster->new('defects');
$node->init;
$node->start;

hnsw_setup_data($node, dim => 16, clusters => 30, seed => 0.25);

#------------------------------------------------------------------------
# 1. A row that is an outlier of its cluster is never found, not even by a
# search with its own vector at ef_search 1000: no neighbor list keeps a
# link to it, and hnsw_verify counts its element unreachable.  The data
# are those of 020_hnsw_recall.pl (10,000 rows of 32 dimensions in 30
# gaussian clusters); each of row 6886's 8 nearest rows has at least 125
# rows nearer to it than 6886 is.
#
# a. Inserted one by one into an index created on the empty table (no
# longer TODO: asserted, as issue 12 item 8 is being fixed): seen,
# hnsw_verify counting 1 unreachable element in 5 runs of 5, and row 6886
# not found by its own vector even at ef_search 1000 in 4 of them (and 0
# to 8 rows of 10,000 unreachable in the 32-dimensional data that pgbench
# inserts as in 021_hnsw_concurrent.pl, before cbc08ce and after it
# alike).  Rarer in
# 16 dimensions, but there too hnsw_verify has counted 1 element that
# layer 0 does not reach (a spilled vector_l1_ops build of 4,000 rows plus
# 2,500 inserts, in 023_hnsw_crash.pl), while every row was still found by
# its own vector: an element of a higher level can be found through the
# layers above, yet no search that enters layer 0 elsewhere reaches it.
# b. CREATE INDEX, in memory and spilled, under three opclasses: since
# cbc08ce (perhaps its "pruned lists refill to capacity"), 6886 was
# unreachable after most builds (in memory 7 to 9 of 10, spilled 4 to 6 of
# 6), and hnsw_verify counted 1 unreachable element after some spilled
# builds under vector_cosine_ops and vector_ip_ops too; before cbc08ce,
# every row was found at ef_search 100 in 28 builds of 28.  With the
# orphan linking at the end of a build that the working tree had
# (uncommitted) at 10:52, 0 of 26 builds left one: if that lands, this part
# belongs in 020_hnsw_recall.pl.
# Correct: every row is found by a search with its own vector, and no
# element is unreachable.
#------------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE d32');
hnsw_setup_data($node, dim => 32, clusters => 30, seed => 0.25, dbname => 'd32');
$node->safe_psql(
	'd32', q{
CREATE TABLE t (id int PRIMARY KEY, v vector(32));
CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops);
});
hnsw_load($node, 't', n => 10000, seed => 0.5, create => 0, dbname => 'd32');
# Issue 12, item 8 (being fixed): one-by-one inserts must not prune an
# element's last incoming link, so the invariant holds before any VACUUM.
# (060_hnsw_invariant_inserts.pl is the larger test of the same.)
hnsw_invariant($node, 't', 't_v_idx', reachable => 1,
	tolerance => 0.0005,
	name => 'outliers, inserted', dbname => 'd32');
# and after VACUUM, on every layer
$node->safe_psql('d32', 'VACUUM t');
hnsw_invariant($node, 't', 't_v_idx', after_vacuum => 1,
	name => 'outliers, inserted, after VACUUM', dbname => 'd32');
$node->safe_psql('d32', 'DROP INDEX t_v_idx');

for my $opclass ('vector_l2_ops', 'vector_cosine_ops', 'vector_l1_ops')
{
	for my $b ([ 'in-memory', '256MB' ], [ 'spilled', '1MB' ])
	{
		my ($build, $mwm) = @$b;
		my $name = "outliers, $opclass, $build build";
		$node->safe_psql(
			'd32', qq{
SET maintenance_work_mem = '$mwm';
SET client_min_messages = warning;
CREATE INDEX t_v_idx ON t USING hnsw (v $opclass);
});
		hnsw_verify_check($node, 't_v_idx', name => $name, dbname => 'd32');
		$node->safe_psql('d32', 'DROP INDEX t_v_idx');
	}
}

#------------------------------------------------------------------------
# 2. Rows inserted after a VACUUM into a region whose rows were all deleted
# are found as well as after a REINDEX: 3 clusters deleted whole (about 700
# of 7,000 rows), VACUUM, 1,000 new rows (about 100 of them in those
# clusters), 60 queries in those clusters, recall@10 >= 0.99 at ef_search
# 40 and 100.  Once an open defect: 1.0 in about half the runs, 0.97 to
# 0.997 in the others, and with one cluster deleted down to 0.86.  An
# insert that descended greedily, one element per layer, could end in a
# neighboring cluster and link only into it; since inserts keep
# HNSW_INSERT_DESCENT_EF elements per layer on the way down (ec11354, the
# likely fix), 15 runs of 15 gave 1.0 in both rounds at both ef_search.
#------------------------------------------------------------------------
for my $round (1, 2)
{
	my $name = "deleted clusters, round $round";
	my ($t, $q) = ("dv$round", "dvq$round");
	hnsw_load($node, $t, n => 7000, seed => 0.5);
	$node->safe_psql('postgres',
		"CREATE INDEX ${t}_v_idx ON $t USING hnsw (v vector_l2_ops)");
	# rows with id % 10 = 0 are clusters 1, 11 and 21, and so are the
	# queries (stride 10)
	$node->safe_psql('postgres', "DELETE FROM $t WHERE id % 10 = 0; VACUUM $t");
	hnsw_load($node, $t, n => 1000, seed => 0.51, first_id => 7001,
		create => 0);
	hnsw_load($node, $q, n => 60, seed => 0.75, stride => 10);

	my $exact = hnsw_topk($node, $t, $q, '<->', k => 10, exact => 1);
	for my $ef (40, 100)
	{
		my $recall = hnsw_recall(
			hnsw_topk(
				$node, $t, $q, '<->', k => 10, ef_search => $ef,
				index => "${t}_v_idx", name => "$name, ef_search $ef"),
			$exact);
		note(sprintf('%s: recall@10 at ef_search %d = %.4f', $name, $ef, $recall));
		cmp_ok($recall, '>=', 0.99,
			"$name: recall\@10 at ef_search $ef >= 0.99");
	}

	# For comparison: the same rows after REINDEX.
	$node->safe_psql('postgres', "REINDEX INDEX ${t}_v_idx");
	my $recall = hnsw_recall(
		hnsw_topk(
			$node, $t, $q, '<->', k => 10, ef_search => 40,
			index => "${t}_v_idx", name => "$name, after REINDEX"),
		$exact);
	note(sprintf('%s: after REINDEX, recall@10 at ef_search 40 = %.4f', $name, $recall));
}

# The tables k = 1 .. 40 that $sql->($k) makes, each with an index, and
# whose last statement gives hnsw_verify's unreachable count: those where
# it is not 0, as " k (count)" each.
sub unreachable_in
{
	my ($sql) = @_;
	my $found = '';
	for my $k (1 .. 40)
	{
		my $u = (split /\n/, $node->safe_psql('postgres', $sql->($k)))[-1];
		$found .= " $k ($u)" if $u != 0;
	}
	return $found;
}

#------------------------------------------------------------------------
# 3. A fresh build leaves no group of elements that only link among
# themselves.  The end of an in-memory build linked the elements that no
# list names (HnswLinkOrphans), but not a group whose members name each
# other and that nothing else names: no search enters it, and its rows are
# never found until a VACUUM.  With m 2 (a layer-0 list of 4) and 60
# uniform rows of 4 dimensions, 4 builds of 40 left 2 or 3 elements so,
# at the same levels each run (hnsw.test_seed).  Now the build walks the
# graph from the entry point and links what it does not reach, as a build
# that went on on pages and every VACUUM do.
#------------------------------------------------------------------------
my $groups = unreachable_in(
	sub {
		my ($k) = @_;
		return qq{
SELECT setseed(0.02 * $k);
CREATE TABLE bu$k AS
  SELECT i AS id, ARRAY[random() * 2 - 1, random() * 2 - 1,
                        random() * 2 - 1, random() * 2 - 1]::vector(4) AS v
  FROM generate_series(1, 60) i;
SET hnsw.test_seed = 7;
CREATE INDEX bu${k}_idx ON bu$k USING hnsw (v vector_l2_ops)
  WITH (m = 2, ef_construction = 8);
SELECT unreachable FROM hnsw_verify('bu${k}_idx');
};
	});
is($groups, '', 'builds at m 2: no element unreachable after any of 40 (tables listed if any)');
for my $k (9, 34)
{
	hnsw_invariant($node, "bu$k", "bu${k}_idx", reachable => 1,
		name => "build at m 2, table $k");
}

#------------------------------------------------------------------------
# 4. Inserts never cut a group of elements off.  An insert that pruned a
# full layer-0 list kept the dropped member's last incoming link, asked of
# the member's own neighbors; but a group whose members all link each
# other passes that check while the dropped link was the only way into it
# from the entry point, and its rows were not found until a VACUUM.  The
# forced link that keeps a new element reachable could take such a link
# too.  With m 2, 150 uniform rows of 8 dimensions and 20 inserts, 8
# tables of 40 were left with 2 to 5 elements unreachable on layer 0
# (tables 7, 10, 28, 31, 32, 33, 36 and 40; in table 7 a row was not
# found by its own vector).  Now the new element links to the member it
# displaces (HnswInherit: it chose m neighbors for a list of 2m, so it has
# room), and a walk that reached the list goes on through it.
#------------------------------------------------------------------------
my $cut = unreachable_in(
	sub {
		my ($k) = @_;
		return qq{
SELECT setseed(0.02 * $k);
CREATE TABLE iu$k AS
  SELECT i AS id,
         ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 8)
               WHERE i > 0)::vector(8) AS v
  FROM generate_series(1, 150) i;
SET hnsw.test_seed = 7;
CREATE INDEX iu${k}_idx ON iu$k USING hnsw (v vector_l2_ops)
  WITH (m = 2, ef_construction = 8);
INSERT INTO iu$k
  SELECT 1000 + j,
         ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 8)
               WHERE j > 0)::vector(8)
  FROM generate_series(1, 20) j;
SELECT unreachable FROM hnsw_verify('iu${k}_idx');
};
	});
is($cut, '', 'inserts at m 2: no element unreachable after any of 40 tables (tables listed if any)');
for my $k (7, 33)
{
	hnsw_invariant($node, "iu$k", "iu${k}_idx", reachable => 1,
		name => "inserts at m 2, table $k");
}

$node->stop;

done_testing();
