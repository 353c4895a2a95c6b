# VACUUM of hnsw indexes: deleted rows leave the graph without hurting the
# search around them, their slots are used again, and VACUUM can run while
# other sessions insert, delete and search.
#
# 1. A cluster deleted whole (about 230 of 7,000 rows), VACUUM, 500 new
#    rows: queries in that cluster still get 10 rows at ef_search 40 (not
#    only the few live ones among the ef_search nearest elements), and the
#    index counts one heap TID per row.  (Whether they are the right 10 is
#    026_hnsw_defects.pl's: recall there falls short in some runs.)  After
#    a VACUUM the invariant holds (hnsw_invariant: every row found by its
#    own vector, hnsw_verify clean, every element reachable on every
#    layer).
# 2. Half the rows deleted, VACUUM, as many inserted: the index does not
#    grow by more than a tenth (the freed slots are used again); the
#    invariant holds before and after a VACUUM.
# 3. 6 pgbench clients insert, delete, search and (about 9 times) VACUUM at
#    once, 1,800 transactions: no error,
#    and afterwards the index holds exactly the table's rows, the
#    invariant holds after a VACUUM, and recall@10 at ef_search 100 is at
#    least 0.99.
#
# All of it for one opclass of each type family (hnsw_families: vector,
# halfvec, bit, sparsevec): VACUUM repairs the neighbor lists through each
# type's distance, and frees and refills elements of each one's size.  The
# figures above are vector's; the other families' tables are smaller, to
# keep the file's time (%SIZE), but each still deletes a cluster of more
# rows than ef_search 40, frees half its rows and has VACUUM run among
# the other clients about as often.
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

my $K = 10;
my $dim = 16;

# Rows of each section, per family: 1. the table (a cluster is one row in
# 30 of it) and the rows added after the VACUUM; 2. the table (half of it
# deleted, then as many added); 3. the table, pgbench's transactions per
# client (of 6), the ids its deletes draw from (a few beyond the
# table's first rows, so that some inserted rows go too) and the weight of
# its VACUUM script (about 9 VACUUMs in the run, for either number of
# transactions).  A cluster of the smaller table 1 is 50 rows, still more
# than ef_search 40.
my %SIZE = (
	vector => {
		deleted => 7000,
		added => 500,
		reuse => 6000,
		concurrent => 5000,
		transactions => 300,
		delete_ids => 6500,
		vacuum_weight => 1
	},
	other => {
		deleted => 1500,
		added => 100,
		reuse => 800,
		concurrent => 800,
		transactions => 100,
		delete_ids => 1040,
		vacuum_weight => 3
	},);

my $node = PostgreSQL::Test::Cluster->new('vacuum');
$node->init;
$node->start;

hnsw_setup_data($node, dim => $dim, clusters => 30, seed => 0.25);
# The queries of section 1, all in cluster 1 (stride 30), and of section 3.
hnsw_load($node, 'q', n => 20, seed => 0.75, stride => 30);
hnsw_load($node, 'cq', n => 100, seed => 0.75, stride => 7);

# The index must hold exactly one heap TID per row of the table.
sub tids_match_rows
{
	my ($node, $table, $index, $name) = @_;
	$node->safe_psql('postgres', "VACUUM (INDEX_CLEANUP ON) $table");
	my ($tids, $rows) = split /\|/,
	  $node->safe_psql(
		'postgres',
		"SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname = '$index'),
                (SELECT count(*) FROM $table)");
	is($tids, $rows, "$name: the index holds one heap TID per row ($rows)");
	return;
}

for my $f (hnsw_families($node, $dim))
{
	my ($family, $op, $value) = @$f{qw(family op value)};
	my $size = $SIZE{ $family eq 'vector' ? 'vector' : 'other' };
	my %load = (type => $f->{type}, value => $value);

	$node->safe_psql('postgres',
		"CREATE TABLE q_$family AS SELECT id, " . $value->('v') . ' AS v FROM q;'
		  . "CREATE TABLE cq_$family AS SELECT id, " . $value->('v') . ' AS v FROM cq;');

	#--------------------------------------------------------------------
	# 1. A cluster deleted whole.
	#--------------------------------------------------------------------
	my $t = "t_$family";
	hnsw_load($node, $t, n => $size->{deleted}, seed => 0.5, %load);
	$node->safe_psql('postgres',
		"CREATE INDEX ${t}_v_idx ON $t USING hnsw (v $f->{opclass})");
	# Row i is in cluster 1 + i % 30: cluster 1 is the rows with i % 30 =
	# 0, and the queries are all in cluster 1.
	$node->safe_psql('postgres', "DELETE FROM $t WHERE id % 30 = 0; VACUUM $t");
	hnsw_load($node, $t, n => $size->{added}, seed => 0.51,
		first_id => $size->{deleted} + 1, create => 0, %load);

	my $exact = hnsw_topk_dist($node, $t, "q_$family", $op, k => $K,
		exact => 1, name => "$family: deleted cluster, exact");
	my $approx = hnsw_topk_dist($node, $t, "q_$family", $op, k => $K,
		ef_search => 40, index => "${t}_v_idx",
		name => "$family: deleted cluster");
	my @short = grep { @{ $approx->{$_} } < $K } keys %$approx;
	is(scalar(@short), 0,
		"$family: deleted cluster: every query gets $K rows at ef_search 40")
	  or diag('rows per query: '
		  . join(' ', map { scalar(@{ $approx->{$_} }) } sort { $a <=> $b } keys %$approx));
	# (with distances: bit strings have many ties, any of which may stand
	# for another; see hnsw_recall_dist)
	note(sprintf('%s: deleted cluster: recall@%d at ef_search 40 = %.4f (tested in 026)',
			$family, $K, hnsw_recall_dist($approx, $exact)));
	tids_match_rows($node, $t, "${t}_v_idx", "$family: deleted cluster");
	hnsw_invariant($node, $t, "${t}_v_idx", after_vacuum => 1,
		name => "$family: deleted cluster, after VACUUM");

	#--------------------------------------------------------------------
	# 2. Freed slots are used again.
	#--------------------------------------------------------------------
	my $r = "r_$family";
	my $half = $size->{reuse} / 2;
	hnsw_load($node, $r, n => $size->{reuse}, seed => 0.6, %load);
	$node->safe_psql('postgres',
		"CREATE INDEX ${r}_v_idx ON $r USING hnsw (v $f->{opclass})");
	my $size0 = $node->safe_psql('postgres', "SELECT pg_relation_size('${r}_v_idx')");
	$node->safe_psql('postgres', "DELETE FROM $r WHERE id % 2 = 0; VACUUM $r");
	hnsw_load($node, $r, n => $half, seed => 0.61,
		first_id => $size->{reuse} + 1, create => 0, %load);
	my $size1 = $node->safe_psql('postgres', "SELECT pg_relation_size('${r}_v_idx')");
	note(sprintf('%s: reuse: %s_v_idx %d blocks, after deleting half, VACUUM and as many inserts %d',
			$family, $r, $size0 / 8192, $size1 / 8192));
	cmp_ok($size1, '<=', $size0 * 1.1,
		"$family: reuse: inserts after VACUUM fill freed slots (the index grows by <= 10%)");
	hnsw_invariant($node, $r, "${r}_v_idx", name => "$family: reuse");
	tids_match_rows($node, $r, "${r}_v_idx", "$family: reuse");
	hnsw_invariant($node, $r, "${r}_v_idx", after_vacuum => 1,
		name => "$family: reuse, after VACUUM");

	#--------------------------------------------------------------------
	# 3. VACUUM among concurrent inserts, deletes and searches.
	#--------------------------------------------------------------------
	my $c = "c_$family";
	my $tx = 6 * $size->{transactions};
	hnsw_load($node, $c, n => $size->{concurrent}, seed => 0.7, %load);
	hnsw_serial_ids($node, $c, $size->{concurrent} + 1);
	$node->safe_psql('postgres',
		"CREATE INDEX ${c}_v_idx ON $c USING hnsw (v $f->{opclass})");

	my $query = $value->('hnsw_point(x, 0.3)');
	$node->pgbench(
		"--no-vacuum --client=6 --jobs=2 --transactions=$size->{transactions} --random-seed=4711",
		0,
		[
			qr{number of transactions actually processed: $tx/$tx},
			qr{number of failed transactions: 0 \(0\.000%\)}
		],
		[qr{\A(?:pgbench: setting random seed to 4711\n)?\z}],
		"$family: inserts, deletes, searches and VACUUM at once, without an error",
		{
			"025_insert_$family\@120" =>
			  hnsw_insert_script(table => $c, value => $value),
			"025_delete_$family\@50" => qq{
\\set id random(1, $size->{delete_ids})
DELETE FROM $c WHERE id = :id;
},
			"025_search_$family\@28" => qq{
\\set seed random(0, 999999999)
\\set c random(1, 30)
BEGIN;
SET LOCAL enable_seqscan = off;
SELECT setseed(:seed / 1000000000.0);
SELECT count(*) FROM (SELECT id FROM $c ORDER BY v $op (SELECT $query FROM hnsw_centres WHERE c = :c) LIMIT 10) s;
COMMIT;
},
			"025_vacuum_$family\@$size->{vacuum_weight}" => qq{
VACUUM $c;
},
		});

	tids_match_rows($node, $c, "${c}_v_idx", "$family: concurrent");
	hnsw_invariant($node, $c, "${c}_v_idx", after_vacuum => 1,
		name => "$family: concurrent, after VACUUM");

	$exact = hnsw_topk_dist($node, $c, "cq_$family", $op, k => $K,
		exact => 1, name => "$family: concurrent, exact");
	my $recall = hnsw_recall_dist(
		hnsw_topk_dist(
			$node, $c, "cq_$family", $op, k => $K, ef_search => 100,
			index => "${c}_v_idx", name => "$family: concurrent"),
		$exact);
	note(sprintf('%s: concurrent: recall@%d at ef_search 100 = %.4f',
			$family, $K, $recall));
	cmp_ok($recall, '>=', 0.99,
		"$family: concurrent: recall\@$K at ef_search 100 >= 0.99");
}

$node->stop;

done_testing();
