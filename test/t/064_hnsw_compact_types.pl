# VACUUM's compaction (src/hnswpage.c) for the type families other than
# vector, whose section 1 of 063_hnsw_compact.pl is done here again for
# halfvec, bit and sparsevec (hnsw_families).  Their elements differ in
# size from vector's, and the compaction's planning of free room depends on
# it: halfvec and bit elements are small, many to a page; a sparsevec
# element reserves room for 1,000 non-zeros, about one to a page.  For
# each: after deleting the first three quarters of the rows,
#   - a VACUUM while a transaction holds the index does not compact, and
#     the one after it ends does (it moves elements);
#   - the index is then at most 1.3 times a fresh build of the rest;
#   - the 11 nearest rows of 20 fixed queries through the index are at the
#     same distances before and after the compaction, and the top 10 are
#     the same ids, up to the order of equal distances: the search breaks
#     ties by where the elements lie, which the compaction changes (for
#     bit, whose Hamming distances tie often, the order changed in every
#     query in the runs so far; for halfvec and sparsevec in none);
#   - the invariant holds (hnsw_invariant, after_vacuum).
# 1.00 to 1.05 times a fresh build in the runs so far, about 2 s a family.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use HnswTest;

my $DIM = 24;
my $MAX_RATIO = 1.3;
my $K = 10;
# Rows per family, 6,000 as in 063 (about 2 s a family); sparsevec's
# elements take a page each (with their neighbor tuples, two), so fewer.
my %N = (halfvec => 6000, bit => 6000, sparsevec => 600);

my $node = PostgreSQL::Test::Cluster->new('compact_types');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\njit = off\n");
$node->start;
hnsw_setup_data($node, dim => $DIM, clusters => 20, seed => 0.25);

# 20 fixed query vectors, one for each cluster.
$node->safe_psql(
	'postgres', q{
SELECT setseed(0.125);
CREATE TABLE q AS SELECT c AS id, hnsw_point(x, 0.3) AS v FROM hnsw_centres ORDER BY c;
});

sub size_of
{
	my ($index) = @_;
	return $node->safe_psql('postgres', "SELECT pg_relation_size('$index')");
}

# The index's size over that of a fresh build of the same rows.
sub ratio_to_fresh
{
	my ($table, $opclass) = @_;
	$node->safe_psql(
		'postgres', qq{
DROP TABLE IF EXISTS ${table}_fresh;
CREATE TABLE ${table}_fresh AS SELECT * FROM $table;
CREATE INDEX ${table}_fresh_idx ON ${table}_fresh USING hnsw (v $opclass);
});
	return size_of("${table}_idx") / size_of("${table}_fresh_idx");
}

# VACUUM with the compaction's DEBUG1 summary: (element moves, duplicate
# moves)
sub vacuum_debug
{
	my ($table, $name) = @_;
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET client_min_messages = debug1; VACUUM $table");
	is($rc, 0, "$name: VACUUM $table succeeds") or diag($err);
	note(join("\n", grep { /hnsw compaction/ } split /\n/, $err));
	return $err =~ /(\d+) element and (\d+) duplicate tuple moves/
	  ? ($1, $2) : (0, 0);
}

# The K + 1 nearest rows of each query through the index: (ids,
# distances), each one string, a query's values separated by commas, the
# queries by spaces; the plan must be an index scan of it.
sub answers
{
	my ($table, $queries, $op, $name) = @_;
	my $settings = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
SET hnsw.ef_search = 100;
};
	my $sql = qq{SELECT string_agg(b.ids, ' ' ORDER BY q.id), string_agg(b.ds, ' ' ORDER BY q.id)
FROM $queries q CROSS JOIN LATERAL
  (SELECT string_agg(id::text, ',') AS ids, string_agg(d::text, ',') AS ds
   FROM (SELECT t.id, t.v $op q.v AS d FROM $table t ORDER BY t.v $op q.v LIMIT @{[ $K + 1 ]}) s) b};
	like($node->safe_psql('postgres', $settings . "EXPLAIN (COSTS OFF) $sql"),
		qr/Index Scan using ${table}_idx on/, "$name: the queries use the index");
	return split /\|/, $node->safe_psql('postgres', $settings . $sql);
}

# The top K of answers (which has K + 1 rows a query) up to the order of
# equal distances: per query, the ids at each distance, sorted, except at
# a distance the row after the top K has too, which LIMIT K may cut
# anywhere: there only how many.  The search breaks ties by where the
# elements lie (src/hnswgraph.c, heap_before), which the compaction
# changes, and bit's Hamming distances tie often.
sub canonical
{
	my ($ids, $dists) = @_;
	my @q = split / /, $ids;
	my @d = split / /, $dists;
	my @out;
	for my $i (0 .. $#q)
	{
		my @id = split /,/, $q[$i];
		my @di = split /,/, $d[$i];
		my $cut = @di > $K ? $di[$K] : undef;
		my (%by, @order);
		for my $j (0 .. ($#id < $K - 1 ? $#id : $K - 1))
		{
			push @order, $di[$j] unless exists $by{ $di[$j] };
			push @{ $by{ $di[$j] } }, $id[$j];
		}
		push @out, join(
			';',
			map {
				defined $cut && $_ eq $cut
				  ? "$_: " . scalar(@{ $by{$_} }) . ' rows'
				  : "$_: " . join(',', sort { $a <=> $b } @{ $by{$_} })
			} @order);
	}
	return join("\n", @out);
}

for my $f (hnsw_families($node, $DIM))
{
	my ($family, $opclass, $op, $value) = @$f{qw(family opclass op value)};
	next if $family eq 'vector';    # 063_hnsw_compact.pl
	my $t = "t_$family";
	my $n = $N{$family};
	my $start = time;

	hnsw_load($node, $t, n => $n, seed => 0.5, type => $f->{type}, value => $value);
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE q_$family AS SELECT id, @{[ $value->('v') ]} AS v FROM q;
CREATE INDEX ${t}_idx ON $t USING hnsw (v $opclass);
DELETE FROM $t WHERE id <= @{[ $n * 3 / 4 ]};
});
	my $before = size_of("${t}_idx");

	# A first VACUUM while a transaction holds the index: the rows go, no
	# compaction.  The answers then, and after the compaction, must be
	# the same (up to the order of equal distances: canonical).
	my $holder = $node->background_psql('postgres');
	$holder->query_safe(qq{BEGIN; SET LOCAL enable_seqscan = off;
SELECT id FROM $t ORDER BY v $op (SELECT v FROM $t LIMIT 1) LIMIT 1});
	my ($moves) = vacuum_debug($t, "$family: held");
	is($moves, 0, "$family: no compaction while a transaction holds the index");
	my ($before_ids, $before_dists) = answers($t, "q_$family", $op, "$family: before");
	$holder->query_safe('COMMIT');
	$holder->quit;

	($moves, my $dmoves) = vacuum_debug($t, $family);
	cmp_ok($moves, '>', 0,
		"$family: the compaction moved elements ($moves, and $dmoves duplicate tuples)");
	my $ratio = ratio_to_fresh($t, $opclass);
	cmp_ok($ratio, '<=', $MAX_RATIO,
		sprintf('%s: after deleting 75%% of %d rows the index is %.2f times a fresh build (was %.2f)',
			$family, $n, $ratio, $before / size_of("${t}_fresh_idx")));
	my ($ids, $dists) = answers($t, "q_$family", $op, "$family: after");
	is($dists, $before_dists,
		"$family: the @{[ $K + 1 ]} nearest of each query are at the same distances as before the compaction");
	is(canonical($ids, $dists), canonical($before_ids, $before_dists),
		"$family: and the top $K are the same rows, up to the order of equal distances");
	my @bq = split / /, $before_ids;
	my @aq = split / /, $ids;
	note(sprintf('%s: %d of %d queries answer the same %d ids in the same order',
			$family, scalar(grep { $aq[$_] eq $bq[$_] } 0 .. $#bq), scalar(@bq), $K + 1));
	hnsw_invariant($node, $t, "${t}_idx", after_vacuum => 1,
		name => "$family: after the compaction");
	note(sprintf('%s: %d rows, ratio %.2f, %.1f s', $family, $n, $ratio, time - $start));
}

$node->stop;
done_testing();
