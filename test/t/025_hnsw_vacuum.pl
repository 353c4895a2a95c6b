# VACUUM of hnsw indexes: deleted rows leave the graph without hurting the
# search around them, their slots are used again, and VACUUM can run while
# other sessions insert, delete and search.
#
# 1. A cluster deleted whole (about 230 of 7,000 rows), VACUUM, 500 new
#    rows: queries in that cluster still get 10 rows at the default
#    ef_search (not only the few live ones among the ef_search nearest
#    elements), and the index counts one heap TID per row.  (Whether they
#    are the right 10 is 026_hnsw_defects.pl's: recall there falls short
#    in some runs.)  After a VACUUM the invariant holds (hnsw_invariant:
#    every row found by its own vector, hnsw_verify clean, every element
#    reachable on every layer).
# 2. Half the rows deleted, VACUUM, as many inserted: the index does not
#    grow by more than a tenth (the freed slots are used again); the
#    invariant holds before and after a VACUUM.
# 3. 6 pgbench clients insert, delete, search and (about 9 times) VACUUM at
#    once, 1,800 transactions: no error,
#    and afterwards the index holds exactly the table's rows, the
#    invariant holds after a VACUUM, and recall@10 at ef_search 100 is at
#    least 0.99.
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

my $node = PostgreSQL::Test::Cluster->new('vacuum');
$node->init;
$node->start;

hnsw_setup_data($node, dim => 16, clusters => 30, seed => 0.25);

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

#------------------------------------------------------------------------
# 1. A cluster deleted whole.
#------------------------------------------------------------------------
hnsw_load($node, 't', n => 7000, seed => 0.5);
$node->safe_psql('postgres',
	'CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops)');
# Row i is in cluster 1 + i % 30: cluster 1 is the rows with i % 30 = 0,
# and the queries (stride 30) are all in cluster 1.
$node->safe_psql('postgres', 'DELETE FROM t WHERE id % 30 = 0; VACUUM t');
hnsw_load($node, 't', n => 500, seed => 0.51, first_id => 7001, create => 0);
hnsw_load($node, 'q', n => 20, seed => 0.75, stride => 30);

my $exact = hnsw_topk($node, 't', 'q', '<->', k => $K, exact => 1);
my $approx = hnsw_topk($node, 't', 'q', '<->', k => $K, ef_search => 40,
	index => 't_v_idx', name => 'deleted cluster');
my @short = grep { @{ $approx->{$_} } < $K } keys %$approx;
is(scalar(@short), 0,
	"deleted cluster: every query gets $K rows at ef_search 40")
  or diag('rows per query: '
	  . join(' ', map { scalar(@{ $approx->{$_} }) } sort { $a <=> $b } keys %$approx));
my $recall = hnsw_recall($approx, $exact);
note(sprintf('deleted cluster: recall@%d at ef_search 40 = %.4f (tested in 026)',
		$K, $recall));
tids_match_rows($node, 't', 't_v_idx', 'deleted cluster');
hnsw_invariant($node, 't', 't_v_idx', after_vacuum => 1,
	name => 'deleted cluster, after VACUUM');

#------------------------------------------------------------------------
# 2. Freed slots are used again.
#------------------------------------------------------------------------
hnsw_load($node, 'r', n => 6000, seed => 0.6);
$node->safe_psql('postgres',
	'CREATE INDEX r_v_idx ON r USING hnsw (v vector_l2_ops)');
my $size0 = $node->safe_psql('postgres', q{SELECT pg_relation_size('r_v_idx')});
$node->safe_psql('postgres', 'DELETE FROM r WHERE id % 2 = 0; VACUUM r');
hnsw_load($node, 'r', n => 3000, seed => 0.61, first_id => 6001, create => 0);
my $size1 = $node->safe_psql('postgres', q{SELECT pg_relation_size('r_v_idx')});
note(sprintf('reuse: r_v_idx %d blocks, after deleting half, VACUUM and as many inserts %d',
		$size0 / 8192, $size1 / 8192));
cmp_ok($size1, '<=', $size0 * 1.1,
	'reuse: inserts after VACUUM fill freed slots (the index grows by <= 10%)');
hnsw_invariant($node, 'r', 'r_v_idx', name => 'reuse');
tids_match_rows($node, 'r', 'r_v_idx', 'reuse');
hnsw_invariant($node, 'r', 'r_v_idx', after_vacuum => 1,
	name => 'reuse, after VACUUM');

#------------------------------------------------------------------------
# 3. VACUUM among concurrent inserts, deletes and searches.
#------------------------------------------------------------------------
hnsw_load($node, 'c', n => 5000, seed => 0.7);
hnsw_serial_ids($node, 'c', 5001);
$node->safe_psql('postgres',
	'CREATE INDEX c_v_idx ON c USING hnsw (v vector_l2_ops)');

$node->pgbench(
	'--no-vacuum --client=6 --jobs=2 --transactions=300 --random-seed=4711',
	0,
	[
		qr{number of transactions actually processed: 1800/1800},
		qr{number of failed transactions: 0 \(0\.000%\)}
	],
	[qr{\A(?:pgbench: setting random seed to 4711\n)?\z}],
	'inserts, deletes, searches and VACUUM at once, without an error',
	{
		'025_insert@120' => hnsw_insert_script(),
		'025_delete@50' => q{
\set id random(1, 6500)
DELETE FROM c WHERE id = :id;
},
		'025_search@28' => q{
\set seed random(0, 999999999)
\set c random(1, 30)
BEGIN;
SET LOCAL enable_seqscan = off;
SELECT setseed(:seed / 1000000000.0);
SELECT count(*) FROM (SELECT id FROM c ORDER BY v <-> (SELECT hnsw_point(x, 0.3) FROM hnsw_centres WHERE c = :c) LIMIT 10) s;
COMMIT;
},
		'025_vacuum@1' => q{
VACUUM c;
},
	});

tids_match_rows($node, 'c', 'c_v_idx', 'concurrent');
hnsw_invariant($node, 'c', 'c_v_idx', after_vacuum => 1,
	name => 'concurrent, after VACUUM');

hnsw_load($node, 'cq', n => 100, seed => 0.75, stride => 7);
$recall = hnsw_recall_at($node, 'c', 'cq', '<->', k => $K, ef_search => 100,
	index => 'c_v_idx', name => 'concurrent');
note(sprintf('concurrent: recall@%d at ef_search 100 = %.4f', $K, $recall));
cmp_ok($recall, '>=', 0.99, "concurrent: recall\@$K at ef_search 100 >= 0.99");

$node->stop;

done_testing();
