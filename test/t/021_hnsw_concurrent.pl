# Concurrent inserts into an hnsw index that starts empty: 10 pgbench
# clients insert clustered random vectors, one per transaction, all
# through aminsert (the first ones race to become the entry point).
# Afterwards no row may be missing, from the table or from the index, every
# row must be found by a search with its own vector, and recall@10 at
# hnsw.ef_search = 100 must be at least 0.99.
#
# All of it for one opclass of each type family (hnsw_families: vector,
# halfvec, bit, sparsevec), each of whose inserts links elements of its own
# format: vector's table gets 10,000 rows, the others 2,000 (200 per
# client: the race for the entry point is at the start, and the rest
# keeps the file's time).
#
# 16 dimensions, not 32: in 32-dimensional gaussian clusters a few rows in
# 10,000 are outliers that no neighbor list keeps (their in-degree in the
# graph is 0, with a sequential build as much as here), so "every row is
# found" would test the data rather than this file's subject.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HnswTest;

my $CLIENTS = 10;
my $NQ = 100;
my $K = 10;
my $dim = 16;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->start;

hnsw_setup_data($node, dim => $dim, clusters => 30, seed => 0.25);
hnsw_load($node, 'q', n => $NQ, seed => 0.75, stride => 7);

for my $f (hnsw_families($node, $dim))
{
	my ($family, $op) = @$f{qw(family op)};
	my $per_client = $family eq 'vector' ? 1000 : 200;
	my $n = $CLIENTS * $per_client;
	my $table = "t_$family";
	my $index = "${table}_v_idx";
	my $queries = "q_$family";

	$node->safe_psql(
		'postgres', qq{
CREATE TABLE $table (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     v $f->{type});
CREATE INDEX $index ON $table USING hnsw (v $f->{opclass});
CREATE TABLE $queries AS SELECT id, } . $f->{value}->('v') . ' AS v FROM q;');
	is($node->safe_psql('postgres', "SELECT pg_relation_size('$index')"),
		8192, "$family: the index on the empty table is its metapage alone");

	# Each transaction seeds the server's random() from pgbench's own
	# seeded generator, so the vectors inserted are the same from run to
	# run (only their order and ids depend on the interleaving).
	$node->pgbench(
		"--no-vacuum --client=$CLIENTS --jobs=2 --transactions=$per_client --random-seed=5489",
		0,
		[
			qr{number of transactions actually processed: $n/$n},
			qr{number of failed transactions: 0 \(0\.000%\)}
		],
		# nothing on stderr but the line about the seed
		[qr{\A(?:pgbench: setting random seed to 5489\n)?\z}],
		"$family: $CLIENTS concurrent clients insert $n rows without an error",
		{
			"021_hnsw_insert_$family" =>
			  hnsw_insert_script(table => $table, value => $f->{value})
		});

	is($node->safe_psql('postgres', "SELECT count(*) FROM $table"),
		$n, "$family: the table has exactly $n rows");

	# amvacuumcleanup counts the heap TIDs held by the index's elements;
	# VACUUM stores that count (not an estimate) as the index's reltuples.
	# A lost or doubled insert shows here.
	$node->safe_psql('postgres', "VACUUM (INDEX_CLEANUP ON) $table");
	is( $node->safe_psql(
			'postgres',
			"SELECT reltuples::bigint FROM pg_class WHERE relname = '$index'"),
		$n,
		"$family: the index holds exactly $n heap TIDs");

	# hnsw_verify: the structure, and one heap TID per row.  Its count of
	# elements that layer 0 does not reach from the entry point is only
	# noted (the rows are all found, above or below, by their own vectors;
	# an element that layer 0 leaves out, 0 or 1 in some runs, is
	# 026_hnsw_defects.pl's).
	hnsw_verify_check($node, $index,
		name => "$family: after concurrent inserts", reachable => 0);

	my $lost = hnsw_unreachable($node, $table, $op, ef_search => 100,
		index => $index, name => "$family: self-search");
	is(scalar(@$lost), 0,
		"$family: every row is found by a search with its own vector")
	  or diag("not found even at ef_search 1000: @$lost[0 .. ($#$lost < 19 ? $#$lost : 19)]");

	# (with distances: bit strings have many ties, any of which may stand
	# for another; see hnsw_recall_dist)
	my $exact = hnsw_topk_dist($node, $table, $queries, $op, k => $K,
		exact => 1, name => "$family: exact");
	my $recall = hnsw_recall_dist(
		hnsw_topk_dist(
			$node, $table, $queries, $op, k => $K, ef_search => 100,
			index => $index, name => "$family: after concurrent inserts"),
		$exact);
	note(sprintf('%s: recall@%d at ef_search 100 after concurrent inserts = %.4f',
			$family, $K, $recall));
	cmp_ok($recall, '>=', 0.99,
		"$family: recall\@$K at ef_search 100 >= 0.99");

	# For comparison: the same rows indexed by CREATE INDEX.
	$node->safe_psql('postgres', "REINDEX INDEX $index");
	my $rebuilt = hnsw_recall_dist(
		hnsw_topk_dist(
			$node, $table, $queries, $op, k => $K, ef_search => 100,
			index => $index, name => "$family: after REINDEX"),
		$exact);
	note(sprintf('%s: recall@%d at ef_search 100 of the same rows after REINDEX = %.4f',
			$family, $K, $rebuilt));
}

$node->stop;

done_testing();
