
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
use IPC::Run;
use PostgreSQL::Test::Utils ();
use Test::More;

our @EXPORT = qw(
  hnsw_setup_data
  hnsw_load
  hnsw_topk
  hnsw_plan
  hnsw_recall
  hnsw_not_self_first
  hnsw_unreachable
  hnsw_verify_check
  hnsw_pgbench_start
  hnsw_pgbench_finish
  hnsw_pgbench_figures
  hnsw_pgbench_check
  hnsw_invariant
  hnsw_hold
  hnsw_wait_until_held
  hnsw_release
  %HNSW_OPCLASS
  @HNSW_VERIFY_COLUMNS
);

# The columns of hnsw_verify's row, in order.
our @HNSW_VERIFY_COLUMNS =
  qw(pages elements heap_tids deleted entry_level max_level unreachable unreachable_upper);

# The operator of each opclass.
our %HNSW_OPCLASS = (
	vector_l2_ops      => '<->',
	vector_ip_ops      => '<#>',
	vector_cosine_ops  => '<=>',
	vector_l1_ops      => '<+>',
	halfvec_l2_ops     => '<->',
	halfvec_ip_ops     => '<#>',
	halfvec_cosine_ops => '<=>',
	halfvec_l1_ops     => '<+>',
	bit_hamming_ops    => '<~>',
	bit_jaccard_ops    => '<%>',
	sparsevec_l2_ops     => '<->',
	sparsevec_ip_ops     => '<#>',
	sparsevec_cosine_ops => '<=>',
	sparsevec_l1_ops     => '<+>',
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
type and value (the column's type, and a sub that makes the SQL of a value
of it from the SQL of a vector: C<value> of hnsw_families; the rows are the
same vectors, so made), dbname.

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
		my $type = $o{type} // "vector($dim)";
		$sql .= "CREATE $unlogged TABLE $table (id int PRIMARY KEY, v $type);\n";
	}
	# The centre is fetched by a scalar subquery, so the rows are produced
	# (and random() drawn) in generate_series order whatever the plan.
	my $point = qq{hnsw_point((SELECT x FROM hnsw_centres
                        WHERE c = 1 + (i * $stride) % (SELECT count(*) FROM hnsw_centres)),
                       $sigma)};
	$point = $o{value}->($point) if defined $o{value};
	$sql .= qq{
SELECT setseed($seed);
INSERT INTO $table (id, v)
  SELECT i, $point
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

=pod

=item hnsw_unreachable($node, $table, $op, %opts)

The rows of $table that the index does not find by their own vector even
when it looks wide: every row is searched at C<ef_search> (100), and the
rows missed are searched again at C<wide_ef> (1000), as an array ref of the
rows missed both times.  How many the first search missed is noted, as a
figure of the graph's quality, but not tested: which rows a search at
ef_search 100 misses (0 to 3 in 10,000 in the data of these tests) varies
with the random levels of the build, while a row missed at ef_search 1000
has, in practice, no link to it left.  Options as hnsw_not_self_first,
plus wide_ef.

=cut

sub hnsw_unreachable
{
	my ($node, $table, $op, %o) = @_;
	my $ef = $o{ef_search} // 100;
	my $wide = $o{wide_ef} // 1000;

	my $missed = hnsw_not_self_first($node, $table, $op, %o, ef_search => $ef);
	note(sprintf('%s: %d rows not found at ef_search %d%s',
			$o{name} // $table, scalar(@$missed), $ef,
			@$missed ? ' (' . join(' ', @$missed[0 .. ($#$missed < 19 ? $#$missed : 19)]) . ')' : ''));
	return [] unless @$missed;

	my $in = 'a.id IN (' . join(',', @$missed) . ')';
	$in = "($o{where}) AND $in" if defined $o{where};
	delete $o{index};	# the plan was checked above
	return hnsw_not_self_first($node, $table, $op, %o, ef_search => $wide,
		where => $in);
}

=pod

=item hnsw_verify_check($node, $index, %opts)

Runs C<hnsw_verify($index, heapallindexed)> and makes one test of it: the
call succeeds and, unless C<reachable> is 0, reports no unreachable
element on layer 0 (C<unreachable>), and with C<all_layers> none on the
layers above either (C<unreachable_upper>).  Returns the row as a hash ref
(pages, elements, heap_tids, deleted, entry_level, max_level, unreachable,
unreachable_upper), or undef if the call failed (its error is shown).
Options: heapallindexed (1), reachable (1), all_layers (0), name, dbname.

=cut

sub hnsw_verify_check
{
	my ($node, $index, %o) = @_;
	my $db = $o{dbname} // 'postgres';
	my $hai = ($o{heapallindexed} // 1) ? 'true' : 'false';
	my $reachable = $o{reachable} // 1;
	my $all_layers = $o{all_layers} // 0;
	my $name = $o{name} // "hnsw_verify($index)";
	my @cols = @HNSW_VERIFY_COLUMNS;

	my ($ret, $out, $err) = $node->psql($db,
		'SELECT ' . join(', ', @cols) . " FROM hnsw_verify('$index', $hai)");
	if ($ret != 0 || $out eq '')
	{
		fail("$name: hnsw_verify succeeds");
		diag("hnsw_verify('$index', $hai) failed: $err");
		return undef;
	}
	my %r;
	@r{@cols} = split /\|/, $out;
	my $figures = join(', ', map { "$_ $r{$_}" } @cols);
	if ($all_layers)
	{
		is("$r{unreachable} $r{unreachable_upper}", '0 0',
			"$name: hnsw_verify succeeds and finds every live element reachable on every layer (unreachable, unreachable_upper)"
		) or diag($figures);
	}
	elsif ($reachable)
	{
		is($r{unreachable}, 0,
			"$name: hnsw_verify succeeds and finds every live element reachable")
		  or diag($figures);
	}
	else
	{
		pass("$name: hnsw_verify succeeds");
	}
	note("$name: $figures");
	return \%r;
}

=pod

=item hnsw_invariant($node, $table, $index, %opts)

The invariant of a living index, after any churn or VACUUM: every row
the index holds is found by its own vector, hnsw_verify finds nothing
wrong, and (after VACUUM) every live element is reachable from the entry
point on every layer.  Makes these tests:

=over

=item * the plan of the self-search uses $index (sequential scans are off);

=item * "rows missing" is 0: for every row of $table that the index should
hold (a non-NULL vector, not a zero vector under cosine, within a partial
index's predicate and C<where>), C<ORDER BY col op own vector LIMIT n>
through the index returns the row, where n is the larger of C<k> and the
number of rows with a vector equal to the row's (equal vectors are at
distance 0 from each other, so with many duplicates LIMIT k could not hold
them all).  One search per distinct vector serves all the rows that share
it; all in one statement, at C<hnsw.ef_search = ef_search>;

=item * hnsw_verify_check($index, heapallindexed): no error, and with
C<reachable> no element unreachable on layer 0, with C<after_vacuum> none
on any layer.

=back

Options: k (10), ef_search (100), tolerance (0: the fraction of the rows a
search at ef_search may miss, each of which a search at wide_ef (1000)
must then find, churned or not), after_vacuum (0; asserts unreachable
and unreachable_upper are 0), reachable (the value of after_vacuum;
asserts unreachable is 0), heapallindexed (1), id (the row id column,
'id'), column and op (the indexed column and the distance operator: by
default the index's column and its opclass's operator; column must name
a column, so expression indexes are not supported), where (which rows to
check, as SQL over the table's columns), name, dbname.  Returns a hash ref:
rows (rows checked), missing (array ref of the ids not found, in
increasing order), verify (hnsw_verify_check's row); missing and rows
are undef if the self-search failed, verify if hnsw_verify did (the
failure is a failed test, shown, and the file goes on).

=cut

sub hnsw_invariant
{
	my ($node, $table, $index, %o) = @_;
	my $k = $o{k} // 10;
	my $ef = $o{ef_search} // 100;
	my $after_vacuum = $o{after_vacuum} // 0;
	my $reachable = $o{reachable} // $after_vacuum;
	my $id = $o{id} // 'id';
	my $db = $o{dbname} // 'postgres';
	my $name = $o{name} // "invariant of $index";

	# The indexed column, the operator of its opclass, a partial index's
	# predicate.
	my ($col, $opclass, $pred) = split /\|/, $node->safe_psql(
		$db, qq{
SELECT coalesce(a.attname::text, ''), oc.opcname, coalesce(pg_get_expr(i.indpred, i.indrelid), '')
FROM pg_index i
JOIN pg_opclass oc ON oc.oid = i.indclass[0]
LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indexrelid = '$index'::regclass}), -1;
	$col = $o{column} // ($col ne '' ? $col
		: die "hnsw_invariant: $index is an expression index");
	my $op = $o{op} // $HNSW_OPCLASS{$opclass}
	  // die "hnsw_invariant: no operator known for opclass $opclass";

	# The rows the index should hold, grouped by vector; one search per
	# vector, LIMIT the larger of k and the group's size, must return
	# every row of the group.
	my @cond = ("a.$col IS NOT NULL");
	# (the norm function of the opclass's type)
	push @cond, ($opclass =~ /^vector_/ ? 'vector_norm' : 'l2_norm')
	  . "(a.$col) > 0" if $op eq '<=>';
	push @cond, "($pred)" if $pred ne '';
	push @cond, "($o{where})" if defined $o{where};
	my $inner_pred = $pred ne '' ? "WHERE ($pred)" : '';
	my $sql = qq{WITH g AS (
  SELECT a.$col AS v, array_agg(a.$id) AS ids
  FROM $table a WHERE } . join(' AND ', @cond) . qq{
  GROUP BY a.$col
), s AS (
  SELECT cardinality(g.ids) AS n,
         ARRAY(SELECT x FROM unnest(g.ids) x
               WHERE x <> ALL (ARRAY(
                 SELECT b.$id FROM $table b $inner_pred
                 ORDER BY b.$col $op g.v LIMIT greatest($k, cardinality(g.ids))))) AS missing
  FROM g
)
SELECT coalesce(sum(n), 0), coalesce(sum(cardinality(missing)), 0),
       coalesce(array_to_string(ARRAY(SELECT x FROM s, unnest(s.missing) x ORDER BY x), ' '), '')
FROM s};

	# A failing search is a failed test, not the end of the file: the
	# checks that follow still tell something.
	my $settings = _settings(ef_search => $ef);
	my ($ret, $plan, $err) = $node->psql($db, $settings . "EXPLAIN (COSTS OFF) $sql");
	like($plan, qr/Index Scan using \Q$index\E on/,
		"$name: the self-search plan uses the index")
	  or diag($plan . $err);
	($ret, my $out, $err) = $node->psql($db, $settings . $sql);
	my ($rows, $nmissing, $ids) = $ret == 0 ? split(/\|/, $out, -1) : (undef, undef, '');
	my $missing = defined $nmissing ? [ split / /, $ids ] : undef;
	if (defined $nmissing)
	{
		# tolerance: the most rows a search at ef_search may miss (a
		# fraction of the rows), each of which a search at wide_ef must find
		my $tolerance = int(($o{tolerance} // 0) * $rows);
		my $wide = $o{wide_ef} // 1000;

		cmp_ok($nmissing, '<=', $tolerance,
			"$name: every row is found by its own vector (k $k, ef_search $ef"
			  . ($tolerance ? ", at most $tolerance missed" : '') . ')')
		  or diag("rows missing: $nmissing of $rows: "
			  . join(' ', @$missing[0 .. ($#$missing < 19 ? $#$missing : 19)]));
		note("$name: $rows rows checked, $nmissing missing");

		# After VACUUM layer 0 is strongly connected: a relaxed iterative
		# scan from any vector walks to every row.  Checked from the rows
		# missed (a scan trapped in a closed part of the graph misses them
		# at any ef_search) and from the first row.
		if ($after_vacuum && $pred eq '' && !defined $o{where})
		{
			my @from = (@$missing[0 .. ($#$missing < 9 ? $#$missing : 9)]);
			push @from, $node->safe_psql($db,
				"SELECT min($id) FROM $table a WHERE " . join(' AND ', @cond));
			my $trapped = 0;
			foreach my $x (@from)
			{
				next if !defined $x || $x eq '';
				my $n = $node->safe_psql($db, qq{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SET hnsw.iterative_scan = relaxed_order; SET hnsw.max_scan_tuples = 2147483647;
SET work_mem = '1GB'; SET hnsw.ef_search = 100;
SELECT count(*) FROM (SELECT a.$id FROM $table a
  ORDER BY a.$col $op (SELECT m.$col FROM $table m WHERE m.$id = $x) LIMIT $rows) s});
				$trapped++ if $n != $rows;
				diag("$name: a relaxed iterative scan from the vector of row $x returned $n of $rows rows")
				  if $n != $rows;
			}
			is($trapped, 0,
				"$name: a relaxed iterative scan reaches every row, from each missed row's vector and from the first row's");
		}
		if ($tolerance > 0)
		{
			# the same search, for the vectors of the rows missed
			my $in = @$missing ? join(',', @$missing) : 'NULL';
			my $wsql = $sql;
			$wsql =~ s/GROUP BY a\.\Q$col\E/AND a.$col IN (SELECT m.$col FROM $table m WHERE m.$id IN ($in))\n  GROUP BY a.$col/;
			($ret, my $wout, $err) = $node->psql($db, _settings(ef_search => $wide) . $wsql);
			my (undef, $nwide, $wids) = $ret == 0 ? split(/\|/, $wout, -1) : (undef, undef, '');
			# Churned graphs too, vacuumed or not
			is($nwide, 0,
				"$name: the rows missed are found at ef_search $wide")
			  or diag("rows missing at ef_search $wide: " . ($nwide // "error: $err") . ": $wids");
			$missing = [ split / /, $wids // '' ];
		}
	}
	else
	{
		fail("$name: every row is found by its own vector (k $k, ef_search $ef)");
		diag("the self-search failed: $err");
	}

	my $v = hnsw_verify_check(
		$node, $index,
		heapallindexed => $o{heapallindexed} // 1,
		reachable => $reachable,
		all_layers => $after_vacuum,
		name => $name,
		dbname => $db);
	return { rows => $rows, missing => $missing, verify => $v };
}

=pod

=item hnsw_hold($node, %opts)

=item hnsw_wait_until_held($node, %opts)

=item hnsw_release($hold)

Wait points (C<hnsw.test_wait_point>, C<HnswWaitPoint> in src/hnsw.c): a
session that sets the setting to a point's name waits, when it gets
there, for the advisory lock C<pg_advisory_lock(1213090647)> (taken in
share mode and released at once).  hnsw_hold opens a background session
(PostgreSQL::Test::BackgroundPsql) that takes that lock and keeps it, and
returns it; hnsw_wait_until_held polls pg_locks until C<count> backends
(1) wait for the lock, and returns their pids in increasing order (it dies
when they do not within C<timeout> seconds, the framework's default: a race
test that cannot reach its point cannot test anything); hnsw_release
unlocks and closes the session, letting the waiting backends go on
(within the framework's timeout of a background session,
C<$PostgreSQL::Test::Utils::timeout_default> seconds from hnsw_hold).
Options: dbname ('postgres'; advisory locks belong to a database, so the
holder must use the waiting session's), and, for hnsw_wait_until_held,
count, timeout.  A race test:

  my $hold = hnsw_hold($node);
  my $vac = $node->background_psql('postgres');
  $vac->query_until(qr/go/, "SET hnsw.test_wait_point = 'some-point';\n"
      . "\\echo go\nVACUUM t;\n");
  my ($pid) = hnsw_wait_until_held($node);  # VACUUM is at the point
  $node->safe_psql('postgres', 'INSERT ...'); # the other side of the race
  hnsw_release($hold);                      # VACUUM goes on
  $vac->quit;

=cut

# The wait points' lock, as pg_advisory_lock(bigint) and pg_locks name it
# (HNSW_WAIT_LOCK_KEY in src/hnsw.h).
my $HNSW_WAIT_LOCK_KEY = 1213090647;

sub hnsw_hold
{
	my ($node, %o) = @_;
	my $db = $o{dbname} // 'postgres';
	my $session = $node->background_psql($db);
	$session->query_safe("SELECT pg_advisory_lock($HNSW_WAIT_LOCK_KEY)");
	return { session => $session, dbname => $db };
}

sub hnsw_wait_until_held
{
	my ($node, %o) = @_;
	my $db = $o{dbname} // 'postgres';
	my $count = $o{count} // 1;
	my $timeout = $o{timeout} // $PostgreSQL::Test::Utils::timeout_default;
	my $sql = qq{SELECT string_agg(pid::text, ' ' ORDER BY pid) FROM pg_locks
WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = 0 AND objid = $HNSW_WAIT_LOCK_KEY AND objsubid = 1 AND NOT granted};
	my $deadline = time() + $timeout;
	for (;;)
	{
		my @pids = split / /, $node->safe_psql($db, $sql);
		return @pids if @pids >= $count;
		die "hnsw_wait_until_held: "
		  . scalar(@pids)
		  . " of $count backends wait at a wait point after $timeout s"
		  if time() > $deadline;
		select(undef, undef, undef, 0.05);
	}
}

sub hnsw_release
{
	my ($hold) = @_;
	$hold->{session}->query_safe("SELECT pg_advisory_unlock($HNSW_WAIT_LOCK_KEY)");
	$hold->{session}->quit;
	return;
}

=pod

=item hnsw_pgbench_start($node, $opts, $files, %run)

Starts pgbench against $node in the background (through IPC::Run) and
returns a handle for hnsw_pgbench_finish.  $opts is a string of options
split on spaces; $files a hash ref { name[@weight] => script }, written
once into the node's base directory (a name must be new) and passed in
the order of their names: C<< @{ $handle->{scripts} } >> lists the names
(without weights) in that order, so that a script's number in pgbench's
per-transaction log is its index there.  Options of
%run: dbname ('postgres').

=item hnsw_pgbench_finish($run)

Waits for a pgbench started by hnsw_pgbench_start to end; returns
(exit status, stdout, stderr).

=item hnsw_pgbench_check($run, $name, %opts)

Waits for a pgbench started by hnsw_pgbench_start to end and tests that
it went through: exit status 0, at least C<min> transactions processed
(1), none failed, no client aborted, nothing on stderr that says error,
abort or fail.  The tests are named "$name: ...".  Returns (figures as
hnsw_pgbench_figures gives them, stdout, stderr).

=item hnsw_pgbench_figures($stdout)

Parses pgbench's report: a hash ref with processed (transactions
actually processed), failed (failed transactions) and aborted (1 if the
report says the run was aborted), each undef if the line is missing.

=cut

sub hnsw_pgbench_start
{
	my ($node, $opts, $files, %run) = @_;
	my $db = $run{dbname} // 'postgres';
	my @cmd = ('pgbench', '-h', $node->host, '-p', $node->port,
		split(/\s+/, $opts));
	for my $fn (sort keys %{ $files // {} })
	{
		my $path = $node->basedir . '/' . $fn;
		(my $plain = $path) =~ s/\@\d+$//;
		die "hnsw_pgbench_start: $plain exists" if -e $plain;
		PostgreSQL::Test::Utils::append_to_file($plain, $files->{$fn});
		push @cmd, '-f', $path;
	}
	push @cmd, $db;
	my %r = (out => '', err => '', cmd => "@cmd",
		scripts => [ map { s/\@\d+$//r } sort keys %{ $files // {} } ]);
	$r{h} = IPC::Run::start(\@cmd, '<', \undef, '>', \$r{out}, '2>', \$r{err});
	return \%r;
}

sub hnsw_pgbench_finish
{
	my ($r) = @_;
	$r->{h}->finish;
	return ($r->{h}->result(0), $r->{out}, $r->{err});
}

sub hnsw_pgbench_check
{
	my ($r, $name, %o) = @_;
	my $min = $o{min} // 1;
	my ($rc, $out, $err) = hnsw_pgbench_finish($r);
	my $f = hnsw_pgbench_figures($out);

	is($rc, 0, "$name: exit status 0") or diag($out . $err);
	cmp_ok($f->{processed} // 0, '>=', $min, "$name: at least $min transactions done");
	is($f->{failed}, 0, "$name: no failed transaction");
	# (pgbench says so on stderr)
	is($f->{aborted} || ($err =~ /Run was aborted|aborted in command/ ? 1 : 0),
		0, "$name: no client aborted");
	unlike($err, qr/error|abort|fail/i, "$name: nothing on stderr but notices")
	  or diag($err);
	return ($f, $out, $err);
}

sub hnsw_pgbench_figures
{
	my ($out) = @_;
	my %f;
	($f{processed}) = $out =~ /number of transactions actually processed: (\d+)/;
	($f{failed}) = $out =~ /number of failed transactions: (\d+)/;
	$f{aborted} = $out =~ /Run was aborted/ ? 1 : 0;
	return \%f;
}

=pod

=item hnsw_topk_dist($node, $table, $queries, $op, %opts)

As hnsw_topk, but every result is a pair [ id, distance ], the distance
computed by SQL ($op between the row's and the query's vectors, as
float8 text, which reads back exactly), so that the order a scan
returned can be checked: a hash ref { query id => [ [ id, distance ],
... ] }.  The settings are those of C<settings> (SQL run first,
verbatim) when it is given, else hnsw_topk's (exact, ef_search):
C<< settings => '' >> runs at the server's defaults.  Options: k (10),
exact, ef_search, settings, index (the plan must use it; checked unless
exact, as a test named after C<name>), where (may name the query as q),
name, dbname.

=cut

sub hnsw_topk_dist
{
	my ($node, $table, $queries, $op, %o) = @_;
	my $k = $o{k} // 10;
	my $db = $o{dbname} // 'postgres';
	my $where = defined $o{where} ? "WHERE $o{where}" : '';
	my $settings = $o{settings} // _settings(%o);

	# One element per result, id and distance side by side, in the order
	# the scan returned them.
	my $sql = qq{SELECT q.id, ARRAY(SELECT t.id::text || ':' || (t.v $op q.v)::text
                        FROM $table t $where
                        ORDER BY t.v $op q.v LIMIT $k)
  FROM $queries q ORDER BY q.id};

	my $plan = $node->safe_psql($db, $settings . "\nEXPLAIN (COSTS OFF) $sql");
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

	my $out = $node->safe_psql($db, $settings . "\n" . $sql);
	my %res;
	for my $line (split /\n/, $out)
	{
		my ($qid, $arr) = split /\|/, $line, 2;
		$arr =~ s/^\{|\}$//g;
		$res{$qid} = [ map { [ split /:/, $_, 2 ] } split /,/, $arr ];
	}
	return \%res;
}

=pod

=item hnsw_ids($res)

The ids of a hnsw_topk_dist result, as hnsw_topk returns them (for
hnsw_recall): { query id => [ ids ] }.

=item hnsw_out_of_order($res)

The query ids of a hnsw_topk_dist result whose distances are not
non-decreasing, in increasing order, as an array ref.

=cut

sub hnsw_ids
{
	my ($res) = @_;
	return { map { $_ => [ map { $_->[0] } @{ $res->{$_} } ] } keys %$res };
}

sub hnsw_out_of_order
{
	my ($res) = @_;
	my @bad;
	for my $qid (sort { $a <=> $b } keys %$res)
	{
		my $r = $res->{$qid};
		for my $i (1 .. $#$r)
		{
			if ($r->[$i][1] < $r->[ $i - 1 ][1])
			{
				push @bad, $qid;
				last;
			}
		}
	}
	return \@bad;
}

=pod

=item hnsw_server_errors($node, $from)

The lines of $node's server log from byte offset $from on that report an
ERROR, FATAL or PANIC, as an array ref.

=cut

sub hnsw_server_errors
{
	my ($node, $from) = @_;
	my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile, $from);
	return [ $log =~ /^.*\b(?:ERROR|FATAL|PANIC):.*$/mg ];
}

=pod

=item hnsw_recall_dist($approx, $exact)

Recall@k of two hnsw_topk_dist results that allows for ties: a result of
$approx counts if its distance is at most the k-th distance of $exact
(k being how many $exact has for the query), so that among rows at equal
distances (bit strings under Hamming distance have many) any may stand
for any.  The mean over the queries of min(hits, k) / k.

=cut

sub hnsw_recall_dist
{
	my ($approx, $exact) = @_;
	my ($sum, $n) = (0, 0);
	for my $qid (keys %$exact)
	{
		my $want = $exact->{$qid};
		next unless @$want;
		my $bound = $want->[-1][1];
		my $hits = grep { $_->[1] <= $bound } @{ $approx->{$qid} // [] };
		$hits = @$want if $hits > @$want;
		$sum += $hits / scalar(@$want);
		$n++;
	}
	die 'hnsw_recall_dist: no queries' if $n == 0;
	return $sum / $n;
}

push @EXPORT, qw(hnsw_topk_dist hnsw_ids hnsw_out_of_order hnsw_server_errors
  hnsw_recall_dist);

=pod

=item hnsw_serial_ids($node, $table, $start, %opts)

Gives the id column of $table a sequence of its own, C<${table}_id>,
starting at $start, so that rows inserted without an id (by pgbench)
get new ones.  Options: dbname ('postgres').

=item hnsw_insert_script(%opts)

The text of a pgbench script that inserts one row into C<table> ('c'),
drawn with C<hnsw_point(x, 0.3)> around the centre of a random one of
C<clusters> (30) clusters, from a seed that pgbench draws, so that a
seeded run inserts the same rows.  With C<value> (of hnsw_families) the
row is that vector as the family's type.

=item hnsw_recall_at($node, $table, $queries, $op, %opts)

Recall@k (hnsw_recall) of a search through C<index> at C<ef_search>
against the exact answers, both computed now (by hnsw_topk, whose plan
checks are tests named after C<name>).  Returns the recall, and in list
context the exact answers after it.  Options: those of hnsw_topk.

=cut

=pod

=item hnsw_families($node, $dim, %opts)

One opclass of each type family the hnsw index serves, for the tests
that run their checks over each (standby, crash): a list of hash refs,
each with family (vector, halfvec, bit, sparsevec), opclass, op (its
operator), type (of a column holding the clustered vectors of $dim
dimensions as that type) and value (a sub: given the SQL of a vector, the
SQL of the value of the type made from it, which uses that SQL once).
halfvec and sparsevec hold the vectors themselves (sparsevec densely),
bit a thermometer code of them, five bits per coordinate (whether it is
above -0.6, -0.3, 0, 0.3, 0.6), so that the Hamming distance of two codes
follows the L1 distance of the vectors and two rows of a cluster seldom
share a code (as the 16 bits of binary_quantize over 16 dimensions
would).  Creates the function of that code, C<hnsw_bits(vector) RETURNS
bit>, in $node (once: not in hnsw_setup_data, which also serves
databases of version 0.1.0, without binary_quantize).  Options: dbname
('postgres').

=cut

sub hnsw_families
{
	my ($node, $dim, %o) = @_;
	my $bits = 5 * $dim;
	$node->safe_psql(
		$o{dbname} // 'postgres', qq{
CREATE OR REPLACE FUNCTION hnsw_bits(v vector) RETURNS bit
LANGUAGE sql IMMUTABLE AS \$\$
  SELECT (binary_quantize(v + a) || binary_quantize(v + b) || binary_quantize(v)
          || binary_quantize(v - b) || binary_quantize(v - a))::bit($bits)
  FROM (SELECT array_fill(0.6::real, ARRAY[vector_dims(v)])::vector AS a,
               array_fill(0.3::real, ARRAY[vector_dims(v)])::vector AS b) c
\$\$;
});
	my @f = (
		{
			family => 'vector',
			opclass => 'vector_l2_ops',
			type => "vector($dim)",
			value => sub { $_[0] }
		},
		{
			family => 'halfvec',
			opclass => 'halfvec_l2_ops',
			type => "halfvec($dim)",
			value => sub { "($_[0])::halfvec($dim)" }
		},
		{
			family => 'bit',
			opclass => 'bit_hamming_ops',
			type => 'bit(' . 5 * $dim . ')',
			value => sub { "hnsw_bits($_[0])" }
		},
		{
			family => 'sparsevec',
			opclass => 'sparsevec_l2_ops',
			type => "sparsevec($dim)",
			value => sub { "($_[0])::sparsevec($dim)" }
		},);
	$_->{op} = $HNSW_OPCLASS{ $_->{opclass} } for @f;
	return @f;
}

sub hnsw_serial_ids
{
	my ($node, $table, $start, %o) = @_;
	$node->safe_psql(
		$o{dbname} // 'postgres', qq{
CREATE SEQUENCE ${table}_id START $start;
ALTER TABLE $table ALTER id SET DEFAULT nextval('${table}_id');
});
	return;
}

sub hnsw_insert_script
{
	my (%o) = @_;
	my $table = $o{table} // 'c';
	my $clusters = $o{clusters} // 30;
	my $point = 'hnsw_point(x, 0.3)';
	$point = $o{value}->($point) if defined $o{value};
	return qq{
\\set seed random(0, 999999999)
\\set c random(1, $clusters)
BEGIN;
SELECT setseed(:seed / 1000000000.0);
INSERT INTO $table (v) SELECT $point FROM hnsw_centres WHERE c = :c;
COMMIT;
};
}

sub hnsw_recall_at
{
	my ($node, $table, $queries, $op, %o) = @_;
	my %exact_opts = %o;
	delete @exact_opts{qw(index ef_search)};
	my $exact = hnsw_topk($node, $table, $queries, $op, %exact_opts,
		exact => 1);
	my $recall =
	  hnsw_recall(hnsw_topk($node, $table, $queries, $op, %o), $exact);
	return wantarray ? ($recall, $exact) : $recall;
}

push @EXPORT, qw(hnsw_serial_ids hnsw_insert_script hnsw_recall_at hnsw_families);

1;

=pod

=back

=cut
