
=pod

=head1 NAME

HnswTest - shared code of the hnsw TAP tests (test/t/0*_hnsw*.pl)

=head1 SYNOPSIS

  use FindBin;
  use lib "$FindBin::RealBin/../lib";
  use HnswTest;

  hnsw_setup_data($node, dim => 32, clusters => 30, seed => 0.25);
  hnsw_load($node, 't', n => 10000, seed => 0.5);
  hnsw_load($node, 'q', n => 100, seed => 0.75);
  my $exact = hnsw_topk($node, 't', 'q', '<->', exact => 1);
  my $approx = hnsw_topk($node, 't', 'q', '<->', ef_search => 100,
      index => 't_v_idx');
  my $r = hnsw_recall($approx, $exact);

=head1 DESCRIPTION

Data: clustered random vectors generated in SQL, deterministically
(setseed() before each load, and every random() is drawn in a fixed
order).  The cluster centres are uniform in [-1, 1]^dim; a point is its
centre plus gaussian noise (Box-Muller) of standard deviation C<sigma> in
every coordinate.  The centres live in the table C<hnsw_centres>, and
C<hnsw_point(centre, sigma)> draws one point, so that other clients
(pgbench) can draw from the same distribution.

Searches: C<hnsw_topk> runs one k-NN query per row of a query table, all in
one statement, and returns the ids found; with C<exact> the index is kept
out of the plan (index and bitmap scans disabled), otherwise sequential
scans are disabled and the plan is checked to use the named index, so a
recall figure can never silently be the recall of a sequential scan.

Every function dies on an SQL error, so a broken setup ends the test file
rather than producing meaningless figures.

=cut

package HnswTest;

use strict;
use warnings;

use Exporter 'import';
use Test::More;

our @EXPORT = qw(
  hnsw_setup_data
  hnsw_load
  hnsw_topk
  hnsw_plan
  hnsw_recall
  hnsw_not_self_first
  %HNSW_OPCLASS
);

# The operator of each opclass.
our %HNSW_OPCLASS = (
	vector_l2_ops     => '<->',
	vector_ip_ops     => '<#>',
	vector_cosine_ops => '<=>',
	vector_l1_ops     => '<+>',
);

=pod

=over

=item hnsw_setup_data($node, %opts)

Creates C<hnsw_centres(c int, x float8[])> with C<clusters> centres of
C<dim> dimensions (seeded with C<seed>) and the function
C<hnsw_point(float8[], float8) RETURNS vector>.  Options: dim (32),
clusters (30), seed (0.25), dbname ('postgres').

=cut

sub hnsw_setup_data
{
	my ($node, %o) = @_;
	my $dim = $o{dim} // 32;
	my $clusters = $o{clusters} // 30;
	my $seed = $o{seed} // 0.25;
	my $db = $o{dbname} // 'postgres';

	$node->safe_psql(
		$db, qq{
CREATE EXTENSION IF NOT EXISTS tinyhnsw;
-- One point: centre + N(0, sigma^2) in every coordinate.  1 - random() is
-- in (0, 1], so ln() never sees 0.  The float4 cast first, so the text
-- is exactly what the vector will hold.
CREATE FUNCTION hnsw_point(centre float8[], sigma float8) RETURNS vector
LANGUAGE sql VOLATILE AS \$\$
  SELECT ('[' || string_agg(
           (x + sigma * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::float4::text,
           ',' ORDER BY d) || ']')::vector
  FROM unnest(centre) WITH ORDINALITY AS u(x, d)
\$\$;
SELECT setseed($seed);
CREATE TABLE hnsw_centres AS
  SELECT c, (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, $dim) d
             WHERE c > 0) AS x
  FROM generate_series(1, $clusters) c;
});
	return;
}

=pod

=item hnsw_load($node, $table, %opts)

Adds C<n> rows to C<$table> (created as C<id int PRIMARY KEY, v vector(dim)>
unless C<create> is 0), ids C<first_id> .. C<first_id + n - 1>; row i
belongs to cluster C<1 + (i * stride) % clusters>.  Options: n, seed
(required), first_id (1), sigma (0.3), stride (1), create (1), unlogged (0),
dbname.

=cut

sub hnsw_load
{
	my ($node, $table, %o) = @_;
	my $n = $o{n} // die 'hnsw_load: n';
	my $seed = $o{seed} // die 'hnsw_load: seed';
	my $first = $o{first_id} // 1;
	my $sigma = $o{sigma} // 0.3;
	my $stride = $o{stride} // 1;
	my $create = $o{create} // 1;
	my $db = $o{dbname} // 'postgres';
	my $last = $first + $n - 1;

	my $sql = '';
	if ($create)
	{
		my $dim = $node->safe_psql($db,
			'SELECT cardinality(x) FROM hnsw_centres LIMIT 1');
		my $unlogged = $o{unlogged} ? 'UNLOGGED' : '';
		$sql .= "CREATE $unlogged TABLE $table (id int PRIMARY KEY, v vector($dim));\n";
	}
	# The centre is fetched by a scalar subquery, so the rows are produced
	# (and random() drawn) in generate_series order whatever the plan.
	$sql .= qq{
SELECT setseed($seed);
INSERT INTO $table (id, v)
  SELECT i, hnsw_point((SELECT x FROM hnsw_centres
                        WHERE c = 1 + (i * $stride) % (SELECT count(*) FROM hnsw_centres)),
                       $sigma)
  FROM generate_series($first, $last) i;
};
	$node->safe_psql($db, $sql);
	return;
}

=pod

=item hnsw_plan($node, $sql, %opts)

EXPLAIN (COSTS OFF) of $sql after the settings of hnsw_topk's options
(exact, ef_search), as text.

=cut

sub _settings
{
	my (%o) = @_;
	my $s = '';
	if ($o{exact})
	{
		$s .= "SET enable_indexscan = off;\nSET enable_bitmapscan = off;\n";
		$s .= "SET enable_indexonlyscan = off;\n";
	}
	else
	{
		$s .= "SET enable_seqscan = off;\n";
		$s .= "SET hnsw.ef_search = $o{ef_search};\n" if defined $o{ef_search};
	}
	return $s;
}

sub hnsw_plan
{
	my ($node, $sql, %o) = @_;
	my $db = $o{dbname} // 'postgres';
	return $node->safe_psql($db, _settings(%o) . "EXPLAIN (COSTS OFF) $sql");
}

=pod

=item hnsw_topk($node, $table, $queries, $op, %opts)

For every row of $queries (id, v), the ids of the k rows of $table nearest
to v by $op, nearest first: a hash ref { query id => [ ids ] }.  Options:
k (10), exact (0), ef_search, index (an index name: the plan must use it;
checked unless exact), where (an extra condition on $table's rows, as
SQL), dbname.  The plan check is a test (ok/fail), named after C<name>.

=cut

sub hnsw_topk
{
	my ($node, $table, $queries, $op, %o) = @_;
	my $k = $o{k} // 10;
	my $db = $o{dbname} // 'postgres';
	my $where = defined $o{where} ? "WHERE $o{where}" : '';

	my $sql = qq{SELECT q.id, ARRAY(SELECT t.id FROM $table t $where
                        ORDER BY t.v $op q.v LIMIT $k)
  FROM $queries q ORDER BY q.id};

	my $plan = hnsw_plan($node, $sql, %o);
	if ($o{exact})
	{
		unlike($plan, qr/Index Scan/,
			($o{name} // "exact $table $op") . ': plan has no index scan')
		  or diag($plan);
	}
	elsif (defined $o{index})
	{
		like(
			$plan,
			qr/Index Scan using \Q$o{index}\E on/,
			($o{name} // "$o{index} $op") . ': plan uses the index')
		  or diag($plan);
	}

	my $out = $node->safe_psql($db, _settings(%o) . $sql);
	my %res;
	for my $line (split /\n/, $out)
	{
		my ($qid, $arr) = split /\|/, $line, 2;
		$arr =~ s/^\{|\}$//g;
		$res{$qid} = [ $arr eq '' ? () : split(/,/, $arr) ];
	}
	return \%res;
}

=pod

=item hnsw_recall($approx, $exact)

Mean over the queries of |approx ∩ exact| / |exact| (a query missing from
$approx counts 0).

=cut

sub hnsw_recall
{
	my ($approx, $exact) = @_;
	my ($sum, $n) = (0, 0);
	for my $qid (keys %$exact)
	{
		my %want = map { $_ => 1 } @{ $exact->{$qid} };
		next unless %want;
		my $hits = grep { $want{$_} } @{ $approx->{$qid} // [] };
		$sum += $hits / scalar(keys %want);
		$n++;
	}
	die 'hnsw_recall: no queries' if $n == 0;
	return $sum / $n;
}

=pod

=item hnsw_not_self_first($node, $table, $op, %opts)

The ids of the rows of $table that an index search with the row's own
vector does not return among the rows at distance 0 from it (that is,
ahead of every row at a positive distance), as an array ref.  Options:
ef_search, k (how many results to look at; 10), where (which rows of $table
to check, as SQL over alias a), index (checked to be in the plan, as in
hnsw_topk), name, dbname.

=cut

sub hnsw_not_self_first
{
	my ($node, $table, $op, %o) = @_;
	my $k = $o{k} // 10;
	my $db = $o{dbname} // 'postgres';

	# The rows at distance 0 come first; among the first k results keep
	# only those, then ask whether the row itself is among them.
	my $where = defined $o{where} ? "AND ($o{where})" : '';
	my $sql = qq{SELECT a.id FROM $table a
  WHERE a.id <> ALL (ARRAY(
          SELECT s.id FROM (SELECT b.id, b.v $op a.v AS d FROM $table b
                            ORDER BY b.v $op a.v LIMIT $k) s
          WHERE s.d = 0)) $where
  ORDER BY a.id};
	if (defined $o{index})
	{
		my $plan = hnsw_plan($node, $sql, %o);
		like(
			$plan,
			qr/Index Scan using \Q$o{index}\E on/,
			($o{name} // "$o{index} $op") . ': self-search plan uses the index')
		  or diag($plan);
	}
	my $out = $node->safe_psql($db, _settings(%o) . $sql);
	return [ split /\n/, $out ];
}

1;

=pod

=back

=cut
