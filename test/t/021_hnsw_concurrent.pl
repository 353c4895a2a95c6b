# Concurrent inserts into an hnsw index that starts empty: 10 pgbench
# clients insert 10,000 clustered random vectors, one per transaction, all
# through aminsert (the first ones race to become the entry point).
# Afterwards no row may be missing, from the table or from the index, every
# row must be found by a search with its own vector, and recall@10 at
# hnsw.ef_search = 100 must be at least 0.99.
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
my $PER_CLIENT = 1000;
my $N = $CLIENTS * $PER_CLIENT;
my $NQ = 100;
my $K = 10;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->start;

hnsw_setup_data($node, dim => 16, clusters => 30, seed => 0.25);
hnsw_load($node, 'q', n => $NQ, seed => 0.75, stride => 7);
$node->safe_psql(
	'postgres', q{
CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                v vector(16));
CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops);
});
is($node->safe_psql('postgres', q{SELECT pg_relation_size('t_v_idx')}),
	8192, 'the index on the empty table is its metapage alone');

# Each transaction seeds the server's random() from pgbench's own seeded
# generator, so the vectors inserted are the same from run to run (only
# their order and ids depend on the interleaving).
$node->pgbench(
	"--no-vacuum --client=$CLIENTS --jobs=2 --transactions=$PER_CLIENT --random-seed=5489",
	0,
	[
		qr{number of transactions actually processed: $N/$N},
		qr{number of failed transactions: 0 \(0\.000%\)}
	],
	# nothing on stderr but the line about the seed
	[qr{\A(?:pgbench: setting random seed to 5489\n)?\z}],
	"$CLIENTS concurrent clients insert $N rows without an error",
	{
		'021_hnsw_insert' => q{
\set seed random(0, 999999999)
\set c random(1, 30)
BEGIN;
SELECT setseed(:seed / 1000000000.0);
INSERT INTO t (v) SELECT hnsw_point(x, 0.3) FROM hnsw_centres WHERE c = :c;
COMMIT;
}
	});

is($node->safe_psql('postgres', 'SELECT count(*) FROM t'),
	$N, "the table has exactly $N rows");

# amvacuumcleanup counts the heap TIDs held by the index's elements; VACUUM
# stores that count (not an estimate) as the index's reltuples.  A lost or
# doubled insert shows here.
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t');
is( $node->safe_psql(
		'postgres',
		q{SELECT reltuples::bigint FROM pg_class WHERE relname = 't_v_idx'}),
	$N,
	"the index holds exactly $N heap TIDs");

# hnsw_verify: the structure, and one heap TID per row.  Its count of
# elements that layer 0 does not reach from the entry point is only noted
# (the rows are all found, above or below, by their own vectors; an element
# that layer 0 leaves out, 0 or 1 in some runs, is 026_hnsw_defects.pl's).
hnsw_verify_check($node, 't_v_idx', name => 'after concurrent inserts',
	reachable => 0);

my $lost = hnsw_unreachable($node, 't', '<->', ef_search => 100,
	index => 't_v_idx', name => 'self-search');
is(scalar(@$lost), 0,
	'every row is found by a search with its own vector')
  or diag("not found even at ef_search 1000: @$lost[0 .. ($#$lost < 19 ? $#$lost : 19)]");

my $exact = hnsw_topk($node, 't', 'q', '<->', k => $K, exact => 1);
my $approx = hnsw_topk($node, 't', 'q', '<->', k => $K, ef_search => 100,
	index => 't_v_idx');
my $recall = hnsw_recall($approx, $exact);
note(sprintf('recall@%d at ef_search 100 after concurrent inserts = %.4f',
		$K, $recall));
cmp_ok($recall, '>=', 0.99, "recall\@$K at ef_search 100 >= 0.99");

# For comparison: the same rows indexed by CREATE INDEX.
$node->safe_psql('postgres', 'REINDEX INDEX t_v_idx');
my $rebuilt = hnsw_recall(
	hnsw_topk(
		$node, 't', 'q', '<->', k => $K, ef_search => 100,
		index => 't_v_idx', name => 'after REINDEX'),
	$exact);
note(sprintf('recall@%d at ef_search 100 of the same rows after REINDEX = %.4f',
		$K, $rebuilt));

$node->stop;

done_testing();
