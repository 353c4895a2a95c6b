# Scaling out with PostgreSQL's own engines: shards through postgres_fdw,
# reads on a streaming standby of a shard.
#
# A coordinator and three shard servers.  On the coordinator, items is
# hash-partitioned on tenant into three foreign partitions, one per shard
# (server options extensions 'tinyhnsw', so that the distance operator is
# shipped, and async_capable), each shard's table has an hnsw index, and
# every row is inserted through the coordinator.  Then:
#
# - the rows on the shards are those inserted, each on one shard;
# - until the coordinator has ANALYZEd its foreign partitions, a query
#   filtered on the partition key is not sent its ORDER BY (the coordinator
#   sorts the whole tenant); the rest runs after that ANALYZE;
# - the plain k-NN query (Merge Append) ships ORDER BY to every shard (not
#   to a server without extensions 'tinyhnsw'), and its top 10 reaches
#   recall >= 0.99 at the default hnsw.ef_search against exact search over
#   a local copy of all the rows;
# - the fan-out shape (hnsw_fanout_sql(): a UNION ALL of per-shard
#   ORDER BY ... LIMIT k) reads the shards with async foreign scans, ships
#   LIMIT k to each, and returns exactly the rows of the plain query (ids
#   and distances, in order);
# - with each shard made to take a second per query, the plain query takes
#   three seconds (the shards one after another) and the fan-out under two
#   (the shards at once);
# - a query filtered on the partition key plans one foreign scan, on the
#   tenant's shard, and reaches the same recall on its tenant's rows;
# - with a shard stopped, every query that needs it fails with a
#   connection error and returns no rows (a fresh session and one that had
#   a connection to it), a filtered query on another shard's tenant still
#   answers, and after a restart the answers are those of before;
# - a streaming standby of a shard (its copy made before the index had a
#   row: everything reached it through WAL) returns exactly the primary's
#   rows, directly and as a partition of the coordinator, and refuses an
#   insert routed to it.
#
# 12,000 rows of 32 dimensions (30 gaussian clusters), 50 queries.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use HnswTest;

my $N = 12000;
my $NQ = 50;
my $K = 10;
my $TENANTS = 12;
# what each shard sleeps per query in the concurrency check (seconds)
my $SLEEP = 1;

my $coord = PostgreSQL::Test::Cluster->new('coord');
$coord->init;
$coord->start;

my @shards;
for my $i (1 .. 3)
{
	my $shard = PostgreSQL::Test::Cluster->new("shard$i");
	$shard->init(allows_streaming => $i == 1);
	$shard->start;
	# items as the coordinator's partitions see it; items_slow answers
	# as items does, $SLEEP s later
	$shard->safe_psql(
		'postgres', qq{
CREATE EXTENSION tinyhnsw;
CREATE TABLE items (id int PRIMARY KEY, tenant int NOT NULL, v vector(32));
CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops);
CREATE FUNCTION one_second() RETURNS boolean LANGUAGE plpgsql VOLATILE
	AS \$\$ BEGIN PERFORM pg_sleep($SLEEP); RETURN true; END \$\$;
CREATE VIEW items_slow AS SELECT * FROM items WHERE (SELECT one_second());
});
	push @shards, $shard;
}

# The standby of shard 1, copied while its table and index are empty.
$shards[0]->backup('empty');
my $standby = PostgreSQL::Test::Cluster->new('shard1_standby');
$standby->init_from_backup($shards[0], 'empty', has_streaming => 1);
$standby->start;

# The coordinator: a local copy of every row (src, the exact answers'
# source) and the queries (q), from HnswTest's generator; tenant is a hash
# of id, so that it does not follow the cluster.
hnsw_setup_data($coord, dim => 32, clusters => 30, seed => 0.25);
hnsw_load($coord, 'src', n => $N, seed => 0.5);
hnsw_load($coord, 'q', n => $NQ, seed => 0.75, stride => 7);
$coord->safe_psql(
	'postgres', qq{
ALTER TABLE src ADD COLUMN tenant int;
UPDATE src SET tenant = abs(hashint4(id)) % $TENANTS;
ANALYZE src;
ANALYZE q;
});

my $servers = '';
for my $i (1 .. 3)
{
	my $s = $shards[ $i - 1 ];
	my $r = $i - 1;
	$servers .= qq{
CREATE SERVER shard$i FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '@{[ $s->host ]}', port '@{[ $s->port ]}', dbname 'postgres',
			 extensions 'tinyhnsw', async_capable 'true', batch_size '100');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard$i;
CREATE FOREIGN TABLE items_s$i PARTITION OF items FOR VALUES WITH (MODULUS 3, REMAINDER $r)
	SERVER shard$i OPTIONS (table_name 'items');
CREATE FOREIGN TABLE slow_s$i PARTITION OF slow FOR VALUES WITH (MODULUS 3, REMAINDER $r)
	SERVER shard$i OPTIONS (table_name 'items_slow');
};
}
$coord->safe_psql(
	'postgres', qq{
CREATE EXTENSION postgres_fdw;
CREATE TABLE items (id int NOT NULL, tenant int NOT NULL, v vector(32)) PARTITION BY HASH (tenant);
CREATE TABLE slow (id int NOT NULL, tenant int NOT NULL, v vector(32)) PARTITION BY HASH (tenant);
$servers
});

# ------------------------------------------------------------------ inserts

my $t0 = time;
$coord->safe_psql('postgres',
	'INSERT INTO items (id, tenant, v) SELECT id, tenant, v FROM src');
note(sprintf('%d rows inserted through the coordinator in %.1f s', $N, time - $t0));

my @counts = map { $_->safe_psql('postgres', 'SELECT count(*) FROM items') } @shards;
note("rows per shard: @counts");
is(scalar(grep { $_ > 0 } @counts), 3, 'every shard holds rows');
is($counts[0] + $counts[1] + $counts[2], $N, "the shards hold $N rows in all");

# The rows through the coordinator are those of src (a digest of every
# row), and each tenant's rows are on one shard, the one whose partition
# bound the tenant's hash satisfies.
my $digest = q{SELECT md5(string_agg(id || ' ' || tenant || ' ' || v::text, ',' ORDER BY id)) FROM };
is($coord->safe_psql('postgres', $digest . 'items'),
	$coord->safe_psql('postgres', $digest . 'src'),
	'the rows read through the coordinator are the rows inserted');
my %shard_of;
for my $i (1 .. 3)
{
	for my $tenant (split /\n/,
		$shards[ $i - 1 ]->safe_psql('postgres', 'SELECT DISTINCT tenant FROM items'))
	{
		$shard_of{$tenant} .= $i;
	}
}
is( join(',', map { "$_:" . ($shard_of{$_} // '') } sort { $a <=> $b } keys %shard_of),
	$coord->safe_psql(
		'postgres', q{
SELECT string_agg(t || ':' || (SELECT r + 1 FROM generate_series(0, 2) r
                               WHERE satisfies_hash_partition('items'::regclass, 3, r, t)),
                  ',' ORDER BY t)
FROM (SELECT DISTINCT tenant AS t FROM src) s}),
	'each tenant lives on one shard, the one its hash routes it to');

my $qvec = $coord->safe_psql('postgres', 'SELECT v FROM q WHERE id = 1');

# The tenant with the most rows, and the partition the coordinator routes
# it to, for the filtered queries.
my ($tenant, $part) = split /\|/, $coord->safe_psql(
	'postgres', q{
SELECT tenant, tableoid::regclass FROM items GROUP BY 1, 2 ORDER BY count(*) DESC, tenant LIMIT 1});
my $filtered_sql =
  "SELECT id FROM items WHERE tenant = $tenant ORDER BY v <-> '$qvec' LIMIT $K";

# Until the coordinator has statistics on its foreign partitions, it
# takes a filtered query to match a few rows, and sorts them itself: the
# shard sends every row of the tenant.
my $plan = $coord->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) $filtered_sql");
like($plan, qr/Remote SQL: SELECT id, v FROM public\.items WHERE \(\(tenant = $tenant\)\)$/m,
	'filtered, before ANALYZE: the ORDER BY is not sent') or diag($plan);
like($plan, qr/-> +Sort\b/, 'filtered, before ANALYZE: the coordinator sorts') or diag($plan);
# ANALYZE of the foreign partitions (postgres_fdw reads every row of each
# to sample them); ANALYZE items would read each shard twice, once more
# for the parent's statistics.
$coord->safe_psql('postgres', 'ANALYZE items_s1, items_s2, items_s3');

# ------------------------------------------------------------------ plain query

$plan = $coord->safe_psql('postgres',
	"EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items ORDER BY v <-> '$qvec' LIMIT $K");
like($plan, qr/Merge Append/, 'plain query: a Merge Append over the shards')
  or diag($plan);
my @ordered = $plan =~ /Remote SQL: SELECT id, v FROM public\.items ORDER BY \(v OPERATOR\(public\.<->\) /g;
is(scalar @ordered, 3, 'plain query: each shard is sent the ORDER BY')
  or diag($plan);
unlike($plan, qr/LIMIT/, 'plain query: no LIMIT is sent (under a Merge Append it is not)');

# Without extensions 'tinyhnsw', postgres_fdw does not send our operator:
# that shard sends every row, and the coordinator sorts them.
$plan = $coord->safe_psql(
	'postgres', qq{
BEGIN;
ALTER SERVER shard2 OPTIONS (DROP extensions);
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items ORDER BY v <-> '$qvec' LIMIT $K;
ROLLBACK;
});
like($plan, qr/Remote SQL: SELECT id, v FROM public\.items$/m,
	'without extensions \'tinyhnsw\': the shard is sent no ORDER BY') or diag($plan);
@ordered = $plan =~ /Remote SQL: SELECT id, v FROM public\.items ORDER BY /g;
is(scalar @ordered, 2, 'without extensions \'tinyhnsw\' on one server: the two others are sent the ORDER BY');

# The default ef_search everywhere: nothing in this file sets it.
is( join(',',
		map { $_->safe_psql('postgres', 'LOAD \'tinyhnsw\'; SHOW hnsw.ef_search') }
		  ($coord, @shards)),
	'40,40,40,40',
	'hnsw.ef_search is 40 (the default) on the coordinator and every shard');

my $exact = hnsw_topk_dist($coord, 'src', 'q', '<->', k => $K, exact => 1,
	name => 'exact search on the local copy');
is(scalar(grep { @{ $exact->{$_} } == $K } keys %$exact),
	$NQ, "exact search gives $K rows for each of $NQ queries");
my $plain = hnsw_topk_dist($coord, 'items', 'q', '<->', k => $K, settings => '');
my $recall = hnsw_recall(hnsw_ids($plain), hnsw_ids($exact));
note(sprintf('plain query through the coordinator: recall@%d = %.4f', $K, $recall));
cmp_ok($recall, '>=', 0.99,
	"plain query through the coordinator: recall\@$K at the default ef_search >= 0.99");
is_deeply(hnsw_out_of_order($plain), [], 'plain query: every result in distance order');

# ------------------------------------------------------------------ fan-out

# The fan-out query for one vector, and for every query of q in one
# statement (hnsw_fanout_sql's text run by EXECUTE ... USING).
my $fanout_prepare = qq{SELECT hnsw_fanout_sql('items', 'v', $K, columns => '{id}') AS fanout \\gset
PREPARE fanout(vector) AS :fanout;
};
$plan = $coord->safe_psql('postgres',
	$fanout_prepare . "EXPLAIN (VERBOSE, COSTS OFF) EXECUTE fanout('$qvec');");
my @async = $plan =~ /Async Foreign Scan on public\.items_s\d/g;
is(scalar @async, 3, 'fan-out: an async foreign scan on each shard') or diag($plan);
unlike($plan, qr/Merge Append/, 'fan-out: no Merge Append');
my @limited = $plan =~ /Remote SQL: SELECT id, v FROM public\.items ORDER BY \(v OPERATOR\(public\.<->\) [^\n]* LIMIT $K\b/g;
is(scalar @limited, 3, "fan-out: each shard is sent ORDER BY ... LIMIT $K") or diag($plan);

$coord->safe_psql(
	'postgres', q{
CREATE FUNCTION fanout(tab regclass, q vector, k int) RETURNS TABLE (id int, distance float8)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE hnsw_fanout_sql(tab, 'v', k, columns => '{id}') USING q;
END
$$;
});

# { query id => [ [ id, distance ], ... ] }, as hnsw_topk_dist gives them
sub fanout_topk
{
	my ($node, $table) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
SELECT q.id, ARRAY(SELECT f.id::text || ':' || f.distance::text
                   FROM fanout('$table', q.v, $K) WITH ORDINALITY f(id, distance, n) ORDER BY f.n)
FROM q ORDER BY q.id});
	my %res;
	for my $line (split /\n/, $out)
	{
		my ($qid, $arr) = split /\|/, $line, 2;
		$arr =~ s/^\{|\}$//g;
		$res{$qid} = [ map { [ split /:/, $_, 2 ] } split /,/, $arr ];
	}
	return \%res;
}

my $fan = fanout_topk($coord, 'items');
is_deeply($fan, $plain,
	'fan-out: the rows of the plain query, with their distances, in order');
$recall = hnsw_recall(hnsw_ids($fan), hnsw_ids($exact));
note(sprintf('fan-out through the coordinator: recall@%d = %.4f', $K, $recall));
cmp_ok($recall, '>=', 0.99,
	"fan-out through the coordinator: recall\@$K at the default ef_search >= 0.99");

# Concurrency: every shard takes $SLEEP s per query on items_slow.  The
# Merge Append starts its shards' queries one after another; the async
# Append starts them together.
$t0 = time;
my $n = $coord->safe_psql('postgres',
	"SELECT count(*) FROM (SELECT id FROM slow ORDER BY v <-> '$qvec' LIMIT $K) s");
my $seq_seconds = time - $t0;
is($n, $K, "plain query on the slow shards: $K rows");
$t0 = time;
$n = $coord->safe_psql('postgres', "SELECT count(*) FROM fanout('slow', '$qvec', $K)");
my $async_seconds = time - $t0;
is($n, $K, "fan-out on the slow shards: $K rows");
note(sprintf('shards taking %d s each: plain query %.2f s, fan-out %.2f s',
		$SLEEP, $seq_seconds, $async_seconds));
cmp_ok($seq_seconds, '>=', 3 * $SLEEP,
	'plain query: the shards are read one after another');
cmp_ok($async_seconds, '<', 2 * $SLEEP, 'fan-out: the shards are read at once');

# ------------------------------------------------------------------ filtered

# After ANALYZE: one shard, sent the filter and the ORDER BY (not the
# LIMIT: it is not pushed through the partitioned parent).
$plan = $coord->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) $filtered_sql");
my @scans = $plan =~ /Foreign Scan on (public\.\w+)/g;
is_deeply(\@scans, ["public.$part"],
	"filtered on tenant $tenant: one foreign scan, on $part") or diag($plan);
like(
	$plan,
	qr/Remote SQL: SELECT id, v FROM public\.items WHERE \(\(tenant = $tenant\)\) ORDER BY \(v OPERATOR\(public\.<->\) '[^']*'\) ASC NULLS LAST$/m,
	'filtered: the shard is sent the filter and the ORDER BY') or diag($plan);
my $fexact = hnsw_topk($coord, 'src', 'q', '<->', k => $K, exact => 1,
	where => "t.tenant = $tenant", name => 'exact filtered search');
my $filtered = hnsw_topk($coord, 'items', 'q', '<->', k => $K,
	where => "t.tenant = $tenant");
is( scalar(grep { @{ $filtered->{$_} } == $K } keys %$filtered), $NQ,
	"filtered: $K rows for each of $NQ queries");
is( $coord->safe_psql('postgres',
		"SELECT count(*) FROM src WHERE tenant <> $tenant AND id IN ("
		  . join(',', map { @$_ } values %$filtered) . ')'),
	0,
	"filtered: every row returned is tenant ${tenant}'s");
$recall = hnsw_recall($filtered, $fexact);
note(sprintf('filtered on tenant %d: recall@%d = %.4f', $tenant, $K, $recall));
cmp_ok($recall, '>=', 0.99,
	"filtered: recall\@$K at the default ef_search >= 0.99");

# ------------------------------------------------------------------ a shard down

# A session that has a connection to shard 3 open when it stops.
my $session = $coord->background_psql('postgres', on_error_stop => 0);
$session->query_safe("SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> '$qvec' LIMIT $K) s");
$shards[2]->stop;

# A tenant of shard 1's and one of shard 3's.
my ($t1) = grep { $shard_of{$_} eq '1' } sort { $a <=> $b } keys %shard_of;
my ($t3) = grep { $shard_of{$_} eq '3' } sort { $a <=> $b } keys %shard_of;
my $conn_error = qr/could not connect to server "shard3"/;
for my $case (
	[ 'plain query', "SELECT id FROM items ORDER BY v <-> '$qvec' LIMIT $K" ],
	[ 'fan-out', "SELECT id FROM fanout('items', '$qvec', $K)" ],
	[ "query filtered on shard 3's tenant $t3",
		"SELECT id FROM items WHERE tenant = $t3 ORDER BY v <-> '$qvec' LIMIT $K" ],
	[ 'all queries in one statement',
		"SELECT q.id, ARRAY(SELECT t.id FROM items t ORDER BY t.v <-> q.v LIMIT $K) FROM q" ])
{
	my ($name, $sql) = @$case;
	my ($ret, $out, $err) = $coord->psql('postgres', $sql);
	isnt($ret, 0, "shard 3 down: $name fails");
	like($err, $conn_error, "shard 3 down: $name: the error names the shard")
	  or diag($err);
	is($out, '', "shard 3 down: $name returns no rows");
}
my ($out, $failed) = $session->query("SELECT id FROM items ORDER BY v <-> '$qvec' LIMIT $K");
is($failed, 1, 'shard 3 down: a session that was connected to it gets an error');
like($session->{stderr}, qr/could not connect to server "shard3"|server closed the connection|connection to server .* failed/,
	'shard 3 down: the session\'s error is a connection error') or diag($session->{stderr});
is($out, '', 'shard 3 down: the session gets no rows');
$session->quit;

my $only1 = $coord->safe_psql('postgres',
	"SELECT count(*) FROM (SELECT id FROM items WHERE tenant = $t1 ORDER BY v <-> '$qvec' LIMIT $K) s");
is($only1, $K, "shard 3 down: a query filtered on shard 1's tenant $t1 still answers");

$shards[2]->start;
is_deeply(hnsw_topk_dist($coord, 'items', 'q', '<->', k => $K, settings => ''),
	$plain, 'shard 3 back: the plain query gives the rows of before');
is_deeply(fanout_topk($coord, 'items'), $plain,
	'shard 3 back: the fan-out gives the rows of before');

# ------------------------------------------------------------------ standby

# Shard 1's queries, copied there through a foreign table, so that shard 1
# and its standby can be asked directly.
$coord->safe_psql(
	'postgres', q{
CREATE FOREIGN TABLE q_s1 (id int, v vector(32)) SERVER shard1 OPTIONS (table_name 'q');
});
$shards[0]->safe_psql('postgres', 'CREATE TABLE q (id int PRIMARY KEY, v vector(32))');
$coord->safe_psql('postgres', 'INSERT INTO q_s1 SELECT id, v FROM q');
$shards[0]->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM items'),
	$counts[0], 'the standby has shard 1\'s rows');
my $on_primary = hnsw_topk_dist($shards[0], 'items', 'q', '<->', k => $K,
	settings => 'SET enable_seqscan = off;', index => 'items_v_idx',
	name => 'shard 1');
my $on_standby = hnsw_topk_dist($standby, 'items', 'q', '<->', k => $K,
	settings => 'SET enable_seqscan = off;', index => 'items_v_idx',
	name => 'shard 1\'s standby');
is_deeply($on_standby, $on_primary,
	'the standby returns the primary\'s rows, with their distances, in order, through its index');

# Reads on the standby through the coordinator: items_ro is items with
# shard 1's partition on its standby.
$coord->safe_psql(
	'postgres', qq{
CREATE SERVER shard1_standby FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '@{[ $standby->host ]}', port '@{[ $standby->port ]}', dbname 'postgres',
			 extensions 'tinyhnsw', async_capable 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard1_standby;
CREATE TABLE items_ro (id int NOT NULL, tenant int NOT NULL, v vector(32)) PARTITION BY HASH (tenant);
CREATE FOREIGN TABLE items_ro_s1 PARTITION OF items_ro FOR VALUES WITH (MODULUS 3, REMAINDER 0)
	SERVER shard1_standby OPTIONS (table_name 'items');
CREATE FOREIGN TABLE items_ro_s2 PARTITION OF items_ro FOR VALUES WITH (MODULUS 3, REMAINDER 1)
	SERVER shard2 OPTIONS (table_name 'items');
CREATE FOREIGN TABLE items_ro_s3 PARTITION OF items_ro FOR VALUES WITH (MODULUS 3, REMAINDER 2)
	SERVER shard3 OPTIONS (table_name 'items');
});
is_deeply(hnsw_topk_dist($coord, 'items_ro', 'q', '<->', k => $K, settings => ''),
	$plain, 'with shard 1 read on its standby, the plain query gives the same rows');
is_deeply(fanout_topk($coord, 'items_ro'), $plain,
	'with shard 1 read on its standby, the fan-out gives the same rows');

my ($ret, $stdout, $err) = $coord->psql('postgres',
	"INSERT INTO items_ro SELECT id + $N, tenant, v FROM src WHERE tenant = $t1 LIMIT 1");
isnt($ret, 0, 'an insert routed to the standby fails');
like($err, qr/cannot execute INSERT in a read-only transaction/,
	'an insert routed to the standby: the error says it is read-only') or diag($err);

$standby->stop;
$_->stop for @shards;
$coord->stop;

done_testing();
