# The hnsw opclasses of halfvec, bit and sparsevec, each through the same life as
# vector's: a serial build, one that outgrows maintenance_work_mem and a
# parallel one, each with recall@10 of at least 0.95 against an exact
# search on clustered data; a filtered (iterative) scan; then inserts,
# deletes and VACUUM, after which every live row is found by its own
# vector, hnsw_verify finds nothing wrong and every element is reachable
# on every layer, and recall holds.  halfvec holds the clustered vectors
# themselves (ip: scaled to unit length, as inner-product data usually
# is), sparsevec the same vectors (dense, as far as the graph cares), bit
# their binary quantization; recall over bit strings counts
# ties (hnsw_recall_dist), since Hamming and Jaccard distances have many.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use HnswTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('types');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_worker_processes = 8
max_parallel_workers = 8
max_parallel_maintenance_workers = 2
maintenance_work_mem = '64MB'
autovacuum = off
});
$node->start;

my $dim = 64;
my $n = 3000;
hnsw_setup_data($node, dim => $dim, clusters => 20, seed => 0.27);
hnsw_load($node, 'src', n => $n + 600, seed => 0.37);
hnsw_load($node, 'qsrc', n => 50, seed => 0.57);

# Each opclass: the type's column from the clustered vectors.
my @cases = (
	[ 'halfvec_l2_ops',     "v::halfvec($dim)" ],
	[ 'halfvec_ip_ops',     "l2_normalize(v::halfvec($dim))" ],
	[ 'halfvec_cosine_ops', "v::halfvec($dim)" ],
	[ 'halfvec_l1_ops',     "v::halfvec($dim)" ],
	[ 'bit_hamming_ops',    "binary_quantize(v)::bit($dim)" ],
	[ 'bit_jaccard_ops',    "binary_quantize(v)::bit($dim)" ],
	[ 'sparsevec_l2_ops',     "v::sparsevec($dim)" ],
	[ 'sparsevec_ip_ops',     "l2_normalize(v::sparsevec($dim))" ],
	[ 'sparsevec_cosine_ops', "v::sparsevec($dim)" ],
	[ 'sparsevec_l1_ops',     "v::sparsevec($dim)" ],);

# Every row is found by its own vector at ef_search 100, but for at most
# one in a thousand (which rows a search misses varies with the build's
# random levels: one in 3,000 now and then), each of which a search at
# ef_search 1000 must find, after churn too.
my %fresh = (tolerance => 0.001);

# Recall@10 at ef_search 100 of a search through $index against the exact
# answers, ties allowed for (the same as hnsw_recall where there are none).
sub recall
{
	my ($table, $op, $index, $name) = @_;
	my $exact = hnsw_topk_dist($node, $table, 'q', $op, exact => 1,
		name => "$name: exact");
	my $approx = hnsw_topk_dist($node, $table, 'q', $op, ef_search => 100,
		index => $index, name => $name);
	is_deeply(hnsw_out_of_order($approx), [], "$name: results in distance order");
	return hnsw_recall_dist($approx, $exact);
}

for my $case (@cases)
{
	my ($opclass, $expr) = @$case;
	my $op = $HNSW_OPCLASS{$opclass};
	(my $t = $opclass) =~ s/_ops$//;

	# n rows, a NULL and (where the type has one) a zero vector; the
	# queries through the same expression
	my ($type) = $opclass =~ /^([a-z]+)_/;
	$type .= "($dim)";
	my $zero = $opclass =~ /^bit/ ? "repeat('0', $dim)::bit($dim)"
	  : "array_fill(0, ARRAY[$dim])::vector::$type";
	# Under inner product and Jaccard the zero vector is at the same
	# distance from every row (0, 1), itself included: a search for it
	# may return any rows, so it is not asked to find itself.
	my %self = $opclass =~ /_ip_|jaccard/
	  ? (where => 'id <> ' . ($n + 1002)) : ();
	$node->safe_psql('postgres', qq{
DROP TABLE IF EXISTS q;
CREATE TABLE q AS SELECT id, $expr AS v FROM qsrc;
CREATE TABLE $t (id int PRIMARY KEY, v $type);
INSERT INTO $t SELECT id, $expr FROM src WHERE id <= $n;
INSERT INTO $t VALUES ($n + 1001, NULL), ($n + 1002, $zero);
ANALYZE $t;
});

	# serial build
	my ($ret, $out, $err) = $node->psql('postgres', qq{
SET max_parallel_maintenance_workers = 0;
CREATE INDEX ${t}_serial ON $t USING hnsw (v $opclass);
});
	is($ret, 0, "$opclass: serial build succeeds") or diag($err);
	my $r = recall($t, $op, "${t}_serial", "$opclass serial");
	note sprintf('%s serial build: recall@10 at ef_search 100 = %.4f', $opclass, $r);
	cmp_ok($r, '>=', 0.95, "$opclass: serial build: recall@10 >= 0.95");
	hnsw_invariant($node, $t, "${t}_serial", %self, %fresh,
		name => "$opclass serial build");
	# the zero vector has no cosine distance and is left out; the NULL always
	my $indexed = $opclass =~ /cosine/ ? $n : $n + 1;
	is($node->safe_psql('postgres',
			"SELECT heap_tids FROM hnsw_verify('${t}_serial', true)"),
		$indexed,
		"$opclass: serial build: the index holds every row it should");
	$node->safe_psql('postgres', "DROP INDEX ${t}_serial");

	# a build that outgrows maintenance_work_mem goes on through inserts
	($ret, $out, $err) = $node->psql('postgres', qq{
SET max_parallel_maintenance_workers = 0;
SET maintenance_work_mem = '1MB';
CREATE INDEX ${t}_spill ON $t USING hnsw (v $opclass);
});
	is($ret, 0, "$opclass: spilled build succeeds") or diag($err);
	like($err, qr/hnsw graph no longer fits into maintenance_work_mem/,
		"$opclass: the build outgrew maintenance_work_mem");
	$r = recall($t, $op, "${t}_spill", "$opclass spilled");
	note sprintf('%s spilled build: recall@10 at ef_search 100 = %.4f', $opclass, $r);
	cmp_ok($r, '>=', 0.95, "$opclass: spilled build: recall@10 >= 0.95");
	is($node->safe_psql('postgres',
			"SELECT heap_tids FROM hnsw_verify('${t}_spill', true)"),
		$indexed,
		"$opclass: spilled build: the index holds every row it should");
	$node->safe_psql('postgres', "DROP INDEX ${t}_spill");

	# parallel build: the leader and a worker insert into one shared graph
	$node->safe_psql('postgres', "ALTER TABLE $t SET (parallel_workers = 1)");
	($ret, $out, $err) = $node->psql('postgres', qq{
SET client_min_messages = debug1;
SET max_parallel_maintenance_workers = 1;
CREATE INDEX ${t}_idx ON $t USING hnsw (v $opclass);
});
	is($ret, 0, "$opclass: parallel build succeeds") or diag($err);
	like($err, qr/hnsw build of "${t}_idx" with 1 parallel workers/,
		"$opclass: the build launched a parallel worker");
	$r = recall($t, $op, "${t}_idx", "$opclass parallel");
	note sprintf('%s parallel build: recall@10 at ef_search 100 = %.4f', $opclass, $r);
	cmp_ok($r, '>=', 0.95, "$opclass: parallel build: recall@10 >= 0.95");
	hnsw_invariant($node, $t, "${t}_idx", %self, %fresh,
		name => "$opclass parallel build");

	# filtered: a tenth of the rows qualify; the iterative scan goes on
	# until LIMIT rows match, in order, at the default ef_search
	my $fexact = hnsw_topk_dist($node, $t, 'q', $op, exact => 1,
		where => 't.id % 10 = 3', name => "$opclass filtered, exact");
	my $fapprox = hnsw_topk_dist($node, $t, 'q', $op, settings => 'SET enable_seqscan = off;',
		where => 't.id % 10 = 3', index => "${t}_idx", name => "$opclass filtered");
	is_deeply([ grep { @{ $fapprox->{$_} } != 10 } sort keys %$fapprox ], [],
		"$opclass: filtered: every query gets 10 rows");
	is_deeply(hnsw_out_of_order($fapprox), [], "$opclass: filtered: in distance order");
	$r = hnsw_recall_dist($fapprox, $fexact);
	note sprintf('%s filtered: recall@10 = %.4f', $opclass, $r);
	cmp_ok($r, '>=', 0.95, "$opclass: filtered: recall@10 >= 0.95");

	# churn: 600 inserts, a fifth of the rows deleted, VACUUM
	$node->safe_psql('postgres', qq{
INSERT INTO $t SELECT id, $expr FROM src WHERE id > $n;
DELETE FROM $t WHERE id % 5 = 0;
VACUUM $t;
});
	hnsw_invariant($node, $t, "${t}_idx", %self, after_vacuum => 1,
		name => "$opclass after inserts, deletes and VACUUM");
	$r = recall($t, $op, "${t}_idx", "$opclass after VACUUM");
	note sprintf('%s after VACUUM: recall@10 at ef_search 100 = %.4f', $opclass, $r);
	cmp_ok($r, '>=', 0.95, "$opclass: after VACUUM: recall@10 >= 0.95");
	$node->safe_psql('postgres', "DROP TABLE $t");
}

$node->stop;
done_testing();
