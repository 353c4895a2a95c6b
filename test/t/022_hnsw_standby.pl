# hnsw indexes through WAL: a streaming standby replays the index builds
# (an in-memory build, logged page by page at its end, and a build that
# outgrew maintenance_work_mem and went on with logged inserts), the
# inserts and a VACUUM that follow, and must then answer every query with
# exactly the same ids as the primary, through the index.  After promotion
# (hnsw_verify cannot run during recovery) hnsw_verify must give the same
# figures as on the primary, and the replayed index must take inserts.  Last, an UNLOGGED table with an
# hnsw index is empty after an immediate restart, and usable.
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

my $K = 10;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;

hnsw_setup_data($primary, dim => 16, clusters => 30, seed => 0.25);
hnsw_load($primary, 'q', n => 50, seed => 0.75, stride => 7);
# t: indexed in memory; s: its build outgrows maintenance_work_mem.
hnsw_load($primary, 't', n => 5000, seed => 0.5);
hnsw_load($primary, 's', n => 5000, seed => 0.6);

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

# The builds happen after the backup, so the standby gets them from WAL.
$primary->safe_psql('postgres',
	q{CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops)});
my ($ret, $out, $err) = $primary->psql(
	'postgres', q{
SET maintenance_work_mem = '1MB';
CREATE INDEX s_v_idx ON s USING hnsw (v vector_cosine_ops);
});
is($ret, 0, 'build of s_v_idx') or diag($err);
like(
	$err,
	qr/hnsw graph no longer fits into maintenance_work_mem/,
	'the build of s_v_idx outgrew maintenance_work_mem');

# Inserts through the index after the builds, then deletes and a VACUUM.
# (One row in 7, spread over every cluster: a cluster deleted whole is
# another matter, see 025_hnsw_vacuum.pl.)
hnsw_load($primary, 't', n => 2000, seed => 0.51, first_id => 5001, create => 0);
hnsw_load($primary, 's', n => 2000, seed => 0.61, first_id => 5001, create => 0);
$primary->safe_psql(
	'postgres', q{
DELETE FROM t WHERE id % 7 = 3;
DELETE FROM s WHERE id % 7 = 3;
VACUUM t;
VACUUM s;
});
hnsw_load($primary, 't', n => 500, seed => 0.52, first_id => 7001, create => 0);
hnsw_load($primary, 's', n => 500, seed => 0.62, first_id => 7001, create => 0);

$primary->wait_for_catchup($standby);

my %verified;
for my $case ([ 't', '<->', 't_v_idx' ], [ 's', '<=>', 's_v_idx' ])
{
	my ($table, $op, $index) = @$case;

	# (hnsw_verify cannot run during recovery: the standby's figures are
	# compared with these after its promotion.)
	# (reachable => 0: see 021_hnsw_concurrent.pl.)
	$verified{$index} = hnsw_verify_check($primary, $index,
		name => "$index on the primary", reachable => 0);

	is($standby->safe_psql('postgres', "SELECT count(*) FROM $table"),
		$primary->safe_psql('postgres', "SELECT count(*) FROM $table"),
		"$table: the standby has as many rows as the primary");

	for my $ef (40, 100)
	{
		my $p = hnsw_topk($primary, $table, 'q', $op, k => $K,
			ef_search => $ef, index => $index,
			name => "$index, ef_search $ef, on the primary");
		my $s = hnsw_topk($standby, $table, 'q', $op, k => $K,
			ef_search => $ef, index => $index,
			name => "$index, ef_search $ef, on the standby");
		is(scalar(grep { @{ $p->{$_} } == $K } keys %$p),
			50, "$index, ef_search $ef: $K results for each of 50 queries");
		is_deeply($s, $p,
			"$index, ef_search $ef: the standby returns the primary's ids, in order");
	}

	my $exact = hnsw_topk($primary, $table, 'q', $op, k => $K, exact => 1);
	my $recall = hnsw_recall(
		hnsw_topk(
			$standby, $table, 'q', $op, k => $K, ef_search => 100,
			index => $index, name => "$index on the standby, recall"),
		$exact);
	note(sprintf('%s on the standby: recall@%d at ef_search 100 = %.4f',
			$index, $K, $recall));
	cmp_ok($recall, '>=', 0.99,
		"$index on the standby: recall\@$K at ef_search 100 >= 0.99");
}

# Promotion: the replayed index must take inserts and find them.
$standby->promote;
for my $index ('t_v_idx', 's_v_idx')
{
	my $v = hnsw_verify_check($standby, $index,
		name => "$index on the promoted standby", reachable => 0);
	is_deeply($v, $verified{$index},
		"$index: hnsw_verify gives the same figures on the promoted standby as on the primary");
}
hnsw_load($standby, 't', n => 500, seed => 0.53, first_id => 8001, create => 0);
my $lost = hnsw_unreachable($standby, 't', '<->', ef_search => 100,
	index => 't_v_idx', name => 'promoted standby',
	where => 'a.id > 8000');
is(scalar(@$lost), 0,
	'after promotion, every row inserted is found by a search with its own vector'
) or diag("not found even at ef_search 1000: @$lost");
$standby->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t');
is( $standby->safe_psql(
		'postgres',
		q{SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname = 't_v_idx')
               = (SELECT count(*) FROM t)}),
	't',
	'after promotion, the index holds one heap TID per row');
$standby->stop;

# UNLOGGED: after a crash, the table and its index are reset to empty.
hnsw_load($primary, 'u', n => 1000, seed => 0.7, unlogged => 1);
$primary->safe_psql('postgres',
	'CREATE INDEX u_v_idx ON u USING hnsw (v vector_l2_ops)');
hnsw_load($primary, 'u', n => 500, seed => 0.71, first_id => 1001, create => 0);
$lost = hnsw_unreachable($primary, 'u', '<->', ef_search => 100,
	index => 'u_v_idx', name => 'unlogged');
is(scalar(@$lost), 0,
	'unlogged: every row is found by a search with its own vector')
  or diag("not found even at ef_search 1000: @$lost");

$primary->stop('immediate');
$primary->start;

is($primary->safe_psql('postgres', 'SELECT count(*) FROM u'),
	0, 'unlogged: the table is empty after an immediate restart');
is($primary->safe_psql('postgres', q{SELECT pg_relation_size('u_v_idx')}),
	8192, 'unlogged: the index is reset to its metapage');
my $empty = hnsw_topk($primary, 'u', 'q', '<->', k => $K, ef_search => 100,
	index => 'u_v_idx', name => 'unlogged, after the restart');
is(scalar(grep { @{ $empty->{$_} } > 0 } keys %$empty),
	0, 'unlogged: an index scan after the restart returns nothing');

hnsw_load($primary, 'u', n => 300, seed => 0.72, first_id => 1, create => 0);
$lost = hnsw_unreachable($primary, 'u', '<->', ef_search => 100,
	index => 'u_v_idx', name => 'unlogged, after the restart');
is(scalar(@$lost), 0,
	'unlogged: after the restart, every row inserted is found through the index')
  or diag("not found even at ef_search 1000: @$lost");
my $exact = hnsw_topk($primary, 'u', 'q', '<->', k => $K, exact => 1);
my $recall = hnsw_recall(
	hnsw_topk(
		$primary, 'u', 'q', '<->', k => $K, ef_search => 100,
		index => 'u_v_idx', name => 'unlogged, recall'),
	$exact);
note(sprintf('unlogged, 300 rows after the restart: recall@%d at ef_search 100 = %.4f',
		$K, $recall));
cmp_ok($recall, '>=', 0.99,
	"unlogged, after the restart: recall\@$K at ef_search 100 >= 0.99");

$primary->stop;

done_testing();
