# Parallel index build: the leader and a worker insert into one graph in
# shared memory.  Checks that a worker really took part, that recall and
# reachability match a serial build's, and that a build whose graph
# outgrows its shared area (the row estimate was stale) still indexes
# every row.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use HnswTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('parallel');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_worker_processes = 8
max_parallel_workers = 8
max_parallel_maintenance_workers = 2
autovacuum = off
});
$node->start;

hnsw_setup_data($node, dim => 24, clusters => 40, seed => 0.31);
hnsw_load($node, 't', n => 20000, seed => 0.41);
hnsw_load($node, 'q', n => 100, seed => 0.59);
$node->safe_psql('postgres', 'ANALYZE t; ALTER TABLE t SET (parallel_workers = 1)');
my $exact = hnsw_topk($node, 't', 'q', '<->', exact => 1);

# A worker takes part (our DEBUG1 line names how many were launched)
my ($ret, $out, $err) = $node->psql('postgres', qq{
SET client_min_messages = debug1;
SET maintenance_work_mem = '256MB';
SET max_parallel_maintenance_workers = 1;
CREATE INDEX t_par ON t USING hnsw (v);
});
is($ret, 0, 'parallel build succeeds') or diag($err);
like($err, qr/hnsw build of "t_par" with 1 parallel workers/,
	'the build launched a parallel worker');

my $approx = hnsw_topk($node, 't', 'q', '<->', ef_search => 100,
	index => 't_par', name => 'parallel build');
my $r = hnsw_recall($approx, $exact);
note sprintf('parallel build: recall@10 at ef_search 100 = %.4f', $r);
cmp_ok($r, '>=', 0.99, 'parallel build: recall@10 >= 0.99');
my $missed = hnsw_not_self_first($node, 't', '<->', index => 't_par',
	ef_search => 1000,
	name => 'parallel build');
is(scalar(@$missed), 0, 'parallel build: every row is found by its own vector')
  or diag("not found: @$missed[0 .. ($#$missed < 9 ? $#$missed : 9)]");
is($node->safe_psql('postgres',
		"SELECT reltuples FROM pg_class WHERE relname = 't_par'"),
	'20000', 'parallel build: the index holds every row');

# A stale estimate: ANALYZE saw 2,000 rows, the table has 22,000, and
# maintenance_work_mem holds a graph of far fewer than that.  The shared
# area fills; a serial pass must insert the rest.
$node->safe_psql('postgres', 'DROP INDEX t_par');
hnsw_load($node, 's', n => 2000, seed => 0.43);
$node->safe_psql('postgres', 'ANALYZE s; ALTER TABLE s SET (parallel_workers = 1)');
hnsw_load($node, 's', n => 20000, first_id => 2001, seed => 0.47, create => 0);
($ret, $out, $err) = $node->psql('postgres', qq{
SET client_min_messages = debug1;
SET maintenance_work_mem = '4MB';
SET max_parallel_maintenance_workers = 1;
CREATE INDEX s_par ON s USING hnsw (v);
});
is($ret, 0, 'parallel build with a full area succeeds') or diag($err);
like($err, qr/hnsw build of "s_par" with 1 parallel workers/,
	'the stale-estimate build ran in parallel');
like($err, qr/hnsw graph no longer fits into maintenance_work_mem/,
	'the full area is reported');
is($node->safe_psql('postgres',
		"SELECT reltuples FROM pg_class WHERE relname = 's_par'"),
	'22000', 'full area: the index holds every row');
$missed = hnsw_not_self_first($node, 's', '<->', index => 's_par',
	ef_search => 1000,
	name => 'full-area build');
is(scalar(@$missed), 0, 'full area: every row is found by its own vector')
  or diag("not found: @$missed[0 .. ($#$missed < 9 ? $#$missed : 9)]");
my $exact_s = hnsw_topk($node, 's', 'q', '<->', exact => 1);
my $approx_s = hnsw_topk($node, 's', 'q', '<->', ef_search => 100,
	index => 's_par', name => 'full-area build');
$r = hnsw_recall($approx_s, $exact_s);
note sprintf('full-area parallel build: recall@10 at ef_search 100 = %.4f', $r);
cmp_ok($r, '>=', 0.99, 'full area: recall@10 >= 0.99');

$node->stop;
done_testing();
