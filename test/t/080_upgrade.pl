# ALTER EXTENSION tinyhnsw UPDATE from 0.1.0 to 0.2.0, on a database whose
# hnsw index is in use by an open transaction: the update goes through,
# the new types work, the index still answers as a sequential scan does
# (same ids, same distances), and the updated database has exactly the
# objects of a fresh 0.2.0 install.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use HnswTest;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE fresh');

# ------------------------------------------------------------ 0.1.0

$node->safe_psql('postgres', q{CREATE EXTENSION tinyhnsw VERSION '0.1.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'tinyhnsw'}),
	'0.1.0', 'the extension can still be created at 0.1.0');
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT '[1,2]'::halfvec});
like($err, qr/type "halfvec" does not exist/, '0.1.0 has no halfvec');

# A small table, so that a search at ef_search 1000 visits every element
# and must return exactly what a sequential scan returns.
hnsw_setup_data($node, dim => 8, clusters => 5, seed => 0.25);
hnsw_load($node, 't', n => 400, seed => 0.5);
hnsw_load($node, 'q', n => 5, seed => 0.75);
$node->safe_psql('postgres', 'CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops)');

my $exact_before = hnsw_topk_dist($node, 't', 'q', '<->', exact => 1, k => 10);
my $index_before = hnsw_topk_dist($node, 't', 'q', '<->', k => 10,
	ef_search => 1000, index => 't_v_idx', name => '0.1.0');
is_deeply($index_before, $exact_before,
	'0.1.0: the index returns the ids and distances of a sequential scan');

# ------------------------------------------------------------ in use

# A transaction that scanned the index and stays open through the update.
my $user = $node->background_psql('postgres', on_error_stop => 1);
$user->query_safe('BEGIN');
$user->query_safe('SET enable_seqscan = off');
my $first = $user->query_safe(q{SELECT id FROM t ORDER BY v <-> (SELECT v FROM q WHERE id = 1) LIMIT 1});
like(
	$node->safe_psql('postgres', q{SELECT count(*) FROM pg_locks
		WHERE relation = 't_v_idx'::regclass AND granted}),
	qr/^[1-9]/, 'an open transaction holds a lock on the index');

$node->safe_psql('postgres', 'ALTER EXTENSION tinyhnsw UPDATE');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'tinyhnsw'}),
	'0.2.0', 'ALTER EXTENSION tinyhnsw UPDATE goes to 0.2.0 with the index in use');

# The open transaction goes on scanning and commits.
is($user->query_safe(q{SELECT id FROM t ORDER BY v <-> (SELECT v FROM q WHERE id = 1) LIMIT 1}),
	$first, 'the open transaction scans the index again after the update');
$user->query_safe('COMMIT');
$user->quit;

# ------------------------------------------------------------ 0.2.0

is( $node->safe_psql(
		'postgres', q{
SELECT '[1,2,3]'::halfvec <-> '[3,2,1]', '{1:1,3:2}/3'::sparsevec <#> '{3:1}/3',
	B'1010' <~> B'0110', binary_quantize('[1,-1,0.5]'::vector),
	'[1,2]'::vector::halfvec(2)::sparsevec}),
	'2.8284271247461903|-2|2|101|{1:1,2:2}/2',
	'the new types, functions and casts work after the update');

my $exact_after = hnsw_topk_dist($node, 't', 'q', '<->', exact => 1, k => 10);
my $index_after = hnsw_topk_dist($node, 't', 'q', '<->', k => 10,
	ef_search => 1000, index => 't_v_idx', name => 'updated');
is_deeply($exact_after, $exact_before, 'the table reads the same after the update');
is_deeply($index_after, $exact_after,
	'after the update the index returns the ids and distances of a sequential scan');

# Inserts into the index after the update are found.
$node->safe_psql('postgres', q{INSERT INTO t VALUES (100000, '[9,9,9,9,9,9,9,9]')});
is( $node->safe_psql(
		'postgres', q{SET enable_seqscan = off;
SELECT id FROM t ORDER BY v <-> '[9,9,9,9,9,9,9,8.5]' LIMIT 1}),
	'100000', 'a row inserted after the update is found through the index');

# The new types' hnsw opclasses came with the update and index the
# table's vectors.
is( $node->safe_psql(
		'postgres', q{
CREATE INDEX t_half ON t USING hnsw ((v::halfvec(8)) halfvec_l2_ops);
CREATE INDEX t_bit ON t USING hnsw ((binary_quantize(v)::bit(8)) bit_hamming_ops);
CREATE INDEX t_sparse ON t USING hnsw ((v::sparsevec(8)) sparsevec_cosine_ops);
SET enable_seqscan = off;
SELECT (SELECT id FROM t ORDER BY v::halfvec(8) <-> '[9,9,9,9,9,9,9,8.5]' LIMIT 1),
	   (SELECT count(*) FROM (SELECT id FROM t
		ORDER BY binary_quantize(v)::bit(8) <~> B'11111111' LIMIT 5) s),
	   (SELECT id FROM t ORDER BY v::sparsevec(8) <=> '[9,9,9,9,9,9,9,9]'::vector::sparsevec(8) LIMIT 1)}),
	'100000|5|100000',
	'the updated extension builds and searches halfvec, bit and sparsevec indexes');

# ------------------------------------------------------------ same objects

# Every member object of the extension, with what defines a function
# (its C symbol, volatility, parallel safety, strictness) and a cast (its
# context), so that a missing or differently declared object shows.
my $objects_sql = q{
SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
	|| coalesce(' ' || (SELECT concat_ws(' ', p.prosrc, p.provolatile, p.proparallel, p.proisstrict)
						FROM pg_proc p WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid), '')
	|| coalesce(' ' || (SELECT c.castcontext::text FROM pg_cast c
						WHERE d.classid = 'pg_cast'::regclass AND c.oid = d.objid), '')
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tinyhnsw')
ORDER BY 1};

$node->safe_psql('fresh', 'CREATE EXTENSION tinyhnsw');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'tinyhnsw'}),
	'0.2.0', 'a fresh install is 0.2.0');
my $updated = $node->safe_psql('postgres', $objects_sql);
my $fresh = $node->safe_psql('fresh', $objects_sql);
my @updated = split /\n/, $updated;
my @fresh = split /\n/, $fresh;
cmp_ok(scalar @fresh, '>', 100, 'the fresh install has its objects (' . scalar(@fresh) . ')');
is_deeply(\@updated, \@fresh, 'the updated database has exactly the objects of a fresh 0.2.0 install');
for my $new ('type halfvec', 'type sparsevec', 'function hamming_distance(bit,bit)',
	'operator class halfvec_ops for access method btree',
	'operator class halfvec_l2_ops for access method hnsw',
	'operator class bit_jaccard_ops for access method hnsw',
	'operator class sparsevec_l1_ops for access method hnsw')
{
	ok((grep { index($_, $new) == 0 } @updated), "the update created $new");
}

$node->stop;
done_testing();
