# Filtered k-NN queries through the hnsw index (iterative scans), with the
# issue's numeric thresholds.  50,000 rows of 32 dimensions in 31 gaussian
# clusters, with category columns c50 = id % 50 (1,000 rows each) and
# c500 = (id * 7) % 500 (100 rows each).  31 clusters, not 30: row i is
# in cluster 1 + i % 31, so every category has rows in every cluster, and
# the 10 nearest rows of a category are among the first few thousand rows
# nearest to the query.  (With 30 clusters, id % 50 and id % 30 share the
# factor 10, each category would sit in 3 clusters only, and for some
# queries the 10th nearest row of a 1/500 category is more than 20,000
# rows (hnsw.max_scan_tuples) away.)
#
# 5. 60 queries at each selectivity, ORDER BY v <-> q LIMIT 10 with
#    WHERE c50 = k / WHERE c500 = k, at the default settings (no hnsw.*
#    setting changed; the plan must use the hnsw index, with
#    enable_seqscan = off only if the planner picks a sequential scan by
#    default, which is noted): every query returns exactly 10 rows, recall
#    against the exact filtered search is at least 0.95, and the distances
#    (computed in SQL next to the ids) never decrease.  The same figures
#    are noted for hnsw.iterative_scan = off and relaxed_order.
# 6. hnsw.max_scan_tuples bounds the rows a scan visits: with a filter
#    matching nothing (c500 = -1) and max_scan_tuples = 1000 the query
#    returns no row and the Index Scan node's "Rows Removed by Filter" is
#    at most 1000 plus a slack of 10 (the heap TIDs of one element, 9 at
#    most, are returned together); with 5000 it is larger than with 1000,
#    and at most 5000 plus the same slack.
# 7. The planner, after ANALYZE, with btree indexes on c5000 =
#    (id * 13) % 5000 (10 rows each) and c2 = id % 2: a c5000 = k filter
#    is planned as a scan of the btree index and a Sort, without the hnsw
#    index; a c2 = k filter as an hnsw Index Scan.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HnswTest;

my $N = 50000;
my $NQ = 60;
my $K = 10;
my $MIN_RECALL = 0.95;
my $SLACK = 10;

my $node = PostgreSQL::Test::Cluster->new('filtered');
$node->init;
# Not hnsw settings: no autovacuum (the statistics are those of our
# ANALYZE), no JIT (it would compile each of the queries' outer plans
# for nothing), and no statement logging.
$node->append_conf(
	'postgresql.conf', q{
autovacuum = off
jit = off
log_statement = 'none'
});
$node->start;

hnsw_setup_data($node, dim => 32, clusters => 31, seed => 0.25);
$node->safe_psql(
	'postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v vector(32),
                c50 int GENERATED ALWAYS AS (id % 50) STORED,
                c500 int GENERATED ALWAYS AS ((id * 7) % 500) STORED,
                c5000 int GENERATED ALWAYS AS ((id * 13) % 5000) STORED,
                c2 int GENERATED ALWAYS AS (id % 2) STORED);
});
hnsw_load($node, 't', n => $N, seed => 0.5, create => 0);
hnsw_load($node, 'q', n => $NQ, seed => 0.75, stride => 7);
# Query i asks for category i % 50 and (i * 13) % 500: all 50 categories
# of c50, and 60 different ones of c500.
$node->safe_psql(
	'postgres', q{
ALTER TABLE q ADD c50 int, ADD c500 int;
UPDATE q SET c50 = id % 50, c500 = (id * 13) % 500;
CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops);
VACUUM ANALYZE t;
ANALYZE q;
});
is( $node->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) || ' ' || count(DISTINCT 1 + id % 31) FROM t WHERE c50 = 7)
                 || ' ' || (SELECT count(*) || ' ' || count(DISTINCT 1 + id % 31) FROM t WHERE c500 = 7)}),
	'1000 31 100 31',
	'a category of c50 has 1,000 rows, one of c500 100, both in every cluster');

#------------------------------------------------------------------------
# 5. Filtered queries at the default settings.
#------------------------------------------------------------------------
my %sel = (
	'1/50'  => 't.c50 = q.c50',
	'1/500' => 't.c500 = q.c500',
);
for my $s (sort keys %sel)
{
	my $where = $sel{$s};
	my $name = "filter $s";

	my $exact = hnsw_topk($node, 't', 'q', '<->', k => $K, exact => 1,
		where => $where, name => "$name, exact");
	my @sizes = map { scalar(@{ $exact->{$_} }) } keys %$exact;
	is(scalar(grep { $_ == $K } @sizes), $NQ,
		"$name: the exact search finds $K rows for each of the $NQ queries");

	# Which plan the defaults give.
	my $sql = qq{SELECT q.id, ARRAY(SELECT t.id FROM t t WHERE $where
                        ORDER BY t.v <-> q.v LIMIT $K) FROM q q};
	my $plan = $node->safe_psql('postgres', "EXPLAIN (COSTS OFF) $sql");
	my $settings = '';
	if ($plan =~ /Index Scan using t_v_idx on/)
	{
		note("$name: the planner picks the hnsw index at the default settings");
	}
	else
	{
		note("$name: the planner does not pick the hnsw index at the default settings; "
			  . "enable_seqscan = off. Its plan:\n$plan");
		$settings = 'SET enable_seqscan = off;';
	}

	my %fig;
	for my $mode ('default', 'off', 'relaxed_order')
	{
		my $set = $settings;
		$set .= "SET hnsw.iterative_scan = $mode;" if $mode ne 'default';
		my $res = hnsw_topk_dist($node, 't', 'q', '<->', k => $K,
			where => $where, settings => $set, index => 't_v_idx',
			name => "$name, iterative_scan $mode");
		my $recall = hnsw_recall(hnsw_ids($res), $exact);
		my $full = grep { @{ $res->{$_} } == $K } keys %$res;
		my $rows = 0;
		$rows += @{ $res->{$_} } for keys %$res;
		my $unordered = hnsw_out_of_order($res);
		$fig{$mode} = [ $recall, $full, $rows, $unordered, $res ];
		note(sprintf('%s, hnsw.iterative_scan %s: recall@%d %.4f, %d of %d queries full (%d rows of %d), %d out of distance order',
				$name, $mode eq 'default' ? 'default (strict_order)' : $mode,
				$K, $recall, $full, $NQ, $rows, $NQ * $K, scalar(@$unordered)));
	}

	my ($recall, $full, $rows, $unordered, $res) = @{ $fig{default} };
	is($full, $NQ, "$name, default settings: every query returns exactly $K rows")
	  or diag('short (query:rows): '
		  . join(' ',
			map { "$_:" . scalar(@{ $res->{$_} }) }
			grep { @{ $res->{$_} } != $K } sort { $a <=> $b } keys %$res));
	cmp_ok($recall, '>=', $MIN_RECALL,
		"$name, default settings: recall\@$K >= $MIN_RECALL against the exact filtered search");
	is(scalar(@$unordered), 0,
		"$name, default settings: every query's distances are non-decreasing")
	  or diag("queries out of order: @$unordered");
}

#------------------------------------------------------------------------
# 6. hnsw.max_scan_tuples bounds the rows a scan visits.
#------------------------------------------------------------------------
# "Rows Removed by Filter" of the Index Scan node: every heap row the scan
# returned, since the filter matches none.
sub removed_by_filter
{
	my ($max, $qid) = @_;
	my $set = defined $max ? "SET hnsw.max_scan_tuples = $max;" : '';
	my $sql = qq{SELECT id FROM t WHERE c500 = -1
  ORDER BY v <-> (SELECT v FROM q WHERE id = $qid) LIMIT $K};
	my $out = $node->safe_psql('postgres',
		"SET enable_seqscan = off; $set EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $sql");
	my $count = $node->safe_psql('postgres',
		"SET enable_seqscan = off; $set SELECT count(*) FROM ($sql) s");
	my ($node_text) = $out =~ /(Index Scan using t_v_idx on t.*)\z/s;
	my ($removed) = ($node_text // '') =~ /Rows Removed by Filter: (\d+)/;
	return ($removed // 0, $count, $out);
}

for my $qid (1, 2, 3)
{
	my ($r1000, $c1000, $p1000) = removed_by_filter(1000, $qid);
	my ($r5000, $c5000, $p5000) = removed_by_filter(5000, $qid);
	my ($rdef, $cdef) = removed_by_filter(undef, $qid);
	note(sprintf('max_scan_tuples, query %d, WHERE c500 = -1: rows removed by filter %d at 1000, %d at 5000, %d at the default (20000)',
			$qid, $r1000, $r5000, $rdef));
	like($p1000, qr/Index Scan using t_v_idx on t/,
		"max_scan_tuples, query $qid: the plan uses the hnsw index")
	  or diag($p1000);
	is($c1000, 0, "max_scan_tuples 1000, query $qid: no row returned");
	is($c5000, 0, "max_scan_tuples 5000, query $qid: no row returned");
	cmp_ok($r1000, '<=', 1000 + $SLACK,
		"max_scan_tuples 1000, query $qid: the index scan returned at most 1000 (+ $SLACK) rows");
	cmp_ok($r5000, '>', $r1000,
		"max_scan_tuples 5000, query $qid: the index scan returned more rows than with 1000");
	cmp_ok($r5000, '<=', 5000 + $SLACK,
		"max_scan_tuples 5000, query $qid: the index scan returned at most 5000 (+ $SLACK) rows");
}

#------------------------------------------------------------------------
# 7. The planner: btree for a very selective filter, hnsw for a loose one.
#------------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
CREATE INDEX t_c5000_idx ON t (c5000);
CREATE INDEX t_c2_idx ON t (c2);
ANALYZE t;
});
# A plan's nodes, without their conditions and keys.
sub plan_nodes
{
	my ($plan) = @_;
	return join(' -> ',
		grep { !/^(?:Sort Key|Order By|Recheck Cond|Index Cond|Filter):/ }
		map { s/^\s*(?:->\s+)?//r } split /\n/, $plan);
}

for my $qid (1, 2, 3)
{
	my $vec = $node->safe_psql('postgres', "SELECT v FROM q WHERE id = $qid");
	my $k5000 = ($qid * 977) % 5000;
	my $k2 = $qid % 2;
	my $plan = $node->safe_psql('postgres',
		"EXPLAIN (COSTS OFF) SELECT id FROM t WHERE c5000 = $k5000 ORDER BY v <-> '$vec' LIMIT $K");
	ok( $plan =~ /(?:Bitmap Index Scan on|Index Scan using) t_c5000_idx/
		  && $plan =~ /\bSort\b/
		  && $plan !~ /t_v_idx/,
		"planner, query $qid: WHERE c5000 = $k5000 (1/5000) is a scan of the btree index and a Sort, not the hnsw index"
	) or diag($plan);
	note("planner, query $qid, c5000 = $k5000: " . plan_nodes($plan)) if $qid == 1;

	$plan = $node->safe_psql('postgres',
		"EXPLAIN (COSTS OFF) SELECT id FROM t WHERE c2 = $k2 ORDER BY v <-> '$vec' LIMIT $K");
	like($plan, qr/Index Scan using t_v_idx on t/,
		"planner, query $qid: WHERE c2 = $k2 (1/2) is an hnsw Index Scan")
	  or diag($plan);
	note("planner, query $qid, c2 = $k2: " . plan_nodes($plan)) if $qid == 1;
}

$node->stop;

done_testing();
