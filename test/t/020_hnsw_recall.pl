# Recall of the hnsw index against exact search, for every opclass, for a
# build that keeps the graph in memory and for one that outgrows
# maintenance_work_mem and finishes through the on-page insert path.
#
# 10,000 clustered random vectors of 32 dimensions (30 clusters) and 100
# query vectors from the same distribution, all generated deterministically
# in SQL.  The exact top 10 of each query comes from a sequential scan; the
# index's top 10 at hnsw.ef_search = 100 must contain at least 99% of them
# (97% for inner product, whose nearest neighbors are not near in the
# graph's sense).  hnsw_verify checks each index's structure and that it
# holds every row.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HnswTest;

my $N = 10000;
my $NQ = 100;
my $K = 10;

my %min_recall = (
	vector_l2_ops     => 0.99,
	vector_ip_ops     => 0.97,
	vector_cosine_ops => 0.99,
	vector_l1_ops     => 0.99,
);

# Builds: maintenance_work_mem, and whether the graph must outgrow it.
my @builds = (
	[ 'in-memory', '256MB', 0 ],
	[ 'spilled',   '1MB',   1 ],
);

my $node = PostgreSQL::Test::Cluster->new('recall');
$node->init;
$node->start;

hnsw_setup_data($node, dim => 32, clusters => 30, seed => 0.25);
hnsw_load($node, 't', n => $N,  seed => 0.5);
hnsw_load($node, 'q', n => $NQ, seed => 0.75, stride => 7);
$node->safe_psql('postgres', 'ANALYZE t; ANALYZE q');

is($node->safe_psql('postgres', 'SELECT count(DISTINCT v::text) FROM t'),
	$N, "$N distinct vectors loaded");

for my $opclass (sort keys %min_recall)
{
	my $op = $HNSW_OPCLASS{$opclass};

	my $exact = hnsw_topk($node, 't', 'q', $op, k => $K, exact => 1,
		name => "exact $opclass");
	is(scalar(grep { @{ $exact->{$_} } == $K } keys %$exact),
		$NQ, "$opclass: exact search gives $K rows for each of $NQ queries");

	for my $b (@builds)
	{
		my ($build, $mwm, $spills) = @$b;
		my $name = "$opclass, $build build";

		my ($ret, $out, $err) = $node->psql(
			'postgres', qq{
SET maintenance_work_mem = '$mwm';
SET client_min_messages = notice;
CREATE INDEX t_v_idx ON t USING hnsw (v $opclass);
});
		is($ret, 0, "$name: CREATE INDEX") or diag($err);
		if ($spills)
		{
			like(
				$err,
				qr/NOTICE:  hnsw graph no longer fits into maintenance_work_mem/,
				"$name: NOTICE that the graph outgrew maintenance_work_mem");
		}
		else
		{
			unlike($err, qr/maintenance_work_mem/,
				"$name: no NOTICE about maintenance_work_mem")
			  or diag($err);
		}
		note("$name: $err") if $err ne '';

		# The structure, and that the index holds every row.  How many
		# elements cannot be reached from the entry point is only noted:
		# on these data, 0 or 1 of 10,000 under every opclass, varying
		# with the build; that every row is reachable is tested, and
		# fails today, in 026_hnsw_defects.pl, so that this file keeps
		# guarding recall.
		hnsw_verify_check($node, 't_v_idx', name => $name, reachable => 0);

		# What the build reported as index tuples lands in reltuples.
		is( $node->safe_psql(
				'postgres',
				"SELECT reltuples::bigint FROM pg_class WHERE relname = 't_v_idx'"),
			$N,
			"$name: the build indexed $N rows");

		my $approx = hnsw_topk($node, 't', 'q', $op, k => $K,
			ef_search => 100, index => 't_v_idx', name => $name);
		my $recall = hnsw_recall($approx, $exact);
		note(sprintf("%s: recall\@%d at ef_search 100 = %.4f", $name, $K, $recall));
		cmp_ok($recall, '>=', $min_recall{$opclass},
			"$name: recall\@$K at ef_search 100 >= $min_recall{$opclass}");

		# For information: the default ef_search.
		my $approx40 = hnsw_topk($node, 't', 'q', $op, k => $K,
			ef_search => 40, index => 't_v_idx', name => "$name, ef 40");
		note(sprintf("%s: recall\@%d at ef_search 40 = %.4f",
				$name, $K, hnsw_recall($approx40, $exact)));

		$node->safe_psql('postgres', 'DROP INDEX t_v_idx');
	}
}

$node->stop;

done_testing();
