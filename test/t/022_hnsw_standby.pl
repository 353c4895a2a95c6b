# hnsw indexes through WAL: a streaming standby replays the index builds
# (an in-memory build, logged page by page at its end, and a build that
# outgrew maintenance_work_mem and went on with logged inserts), the
# inserts and a VACUUM that follow, and must then answer every query with
# exactly the same ids as the primary, through the index.  After promotion
# (hnsw_verify cannot run during recovery) hnsw_verify must give the same
# figures as on the primary, and the replayed index must take inserts.  Last, an UNLOGGED table with an
# hnsw index is empty after an immediate restart, and usable.
#
# All of it for one opclass of each type family (hnsw_families: vector,
# halfvec, bit, sparsevec), whose elements and inserts are logged each in
# its own format; vector's also through a build that outgrows
# maintenance_work_mem.  The other types' tables are smaller, to
# keep the file's time.
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
my $dim = 16;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;

hnsw_setup_data($primary, dim => $dim, clusters => 30, seed => 0.25);
hnsw_load($primary, 'q', n => 50, seed => 0.75, stride => 7);

# The indexed tables: vector's t (indexed in memory) and s (its build
# outgrows maintenance_work_mem), then one of each other family.  n: the
# rows of the first load, after which come 2n/5 inserts, a delete of one
# row in 7, VACUUM and n/10 inserts; seed: the first load's, each later
# load's 0.01 more.  Each has its queries (q's vectors, as its type).
my ($vector, @others) = hnsw_families($primary, $dim);
my @cases = (
	{ %$vector, table => 't', n => 5000, seed => 0.5 },
	{
		%$vector,
		table => 's',
		opclass => 'vector_cosine_ops',
		op => '<=>',
		n => 5000,
		seed => 0.6,
		spill => 1
	},
	map {
		+{
			%{ $others[$_] },
			table => "t_$others[$_]{family}",
			n => 600,
			seed => 0.3 + $_ / 10
		}
	} 0 .. $#others);

for my $c (@cases)
{
	$c->{index} = "$c->{table}_v_idx";
	$c->{queries} = "q_$c->{table}";
	hnsw_load($primary, $c->{table}, n => $c->{n}, seed => $c->{seed},
		type => $c->{type}, value => $c->{value});
	$primary->safe_psql('postgres',
		"CREATE TABLE $c->{queries} AS SELECT id, "
		  . $c->{value}->('v')
		  . ' AS v FROM q');
}

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

# The builds happen after the backup, so the standby gets them from WAL.
for my $c (@cases)
{
	my ($ret, $out, $err) = $primary->psql('postgres',
		($c->{spill} ? "SET maintenance_work_mem = '1MB';\n" : '')
		  . "CREATE INDEX $c->{index} ON $c->{table} USING hnsw (v $c->{opclass});"
	);
	is($ret, 0, "build of $c->{index}") or diag($err);
	if ($c->{spill})
	{
		like(
			$err,
			qr/hnsw graph no longer fits into maintenance_work_mem/,
			"the build of $c->{index} outgrew maintenance_work_mem");
	}
	else
	{
		unlike(
			$err,
			qr/hnsw graph no longer fits into maintenance_work_mem/,
			"the build of $c->{index} was made in memory");
	}
}

# Inserts through the index after the builds, then deletes and a VACUUM.
# (One row in 7, spread over every cluster: a cluster deleted whole is
# another matter, see 025_hnsw_vacuum.pl.)
for my $c (@cases)
{
	hnsw_load($primary, $c->{table}, n => $c->{n} * 2 / 5,
		seed => $c->{seed} + 0.01, first_id => 5001, create => 0,
		value => $c->{value});
	$primary->safe_psql('postgres',
		"DELETE FROM $c->{table} WHERE id % 7 = 3; VACUUM $c->{table};");
	hnsw_load($primary, $c->{table}, n => $c->{n} / 10,
		seed => $c->{seed} + 0.02, first_id => 7001, create => 0,
		value => $c->{value});
}

$primary->wait_for_catchup($standby);

my %verified;
for my $c (@cases)
{
	my ($table, $op, $index, $queries) = @$c{qw(table op index queries)};

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
		my $p = hnsw_topk($primary, $table, $queries, $op, k => $K,
			ef_search => $ef, index => $index,
			name => "$index, ef_search $ef, on the primary");
		my $s = hnsw_topk($standby, $table, $queries, $op, k => $K,
			ef_search => $ef, index => $index,
			name => "$index, ef_search $ef, on the standby");
		is(scalar(grep { @{ $p->{$_} } == $K } keys %$p),
			50, "$index, ef_search $ef: $K results for each of 50 queries");
		is_deeply($s, $p,
			"$index, ef_search $ef: the standby returns the primary's ids, in order");
	}

	# (with distances: bit strings have many ties, any of which may
	# stand for another; see hnsw_recall_dist)
	my $exact = hnsw_topk_dist($primary, $table, $queries, $op, k => $K,
		exact => 1, name => "$table, exact");
	my $recall = hnsw_recall_dist(
		hnsw_topk_dist(
			$standby, $table, $queries, $op, k => $K, ef_search => 100,
			index => $index, name => "$index on the standby, recall"),
		$exact);
	note(sprintf('%s on the standby: recall@%d at ef_search 100 = %.4f',
			$index, $K, $recall));
	cmp_ok($recall, '>=', 0.99,
		"$index on the standby: recall\@$K at ef_search 100 >= 0.99");
}

# Promotion: the replayed index must take inserts and find them.
$standby->promote;
for my $c (@cases)
{
	my ($table, $op, $index) = @$c{qw(table op index)};
	my $v = hnsw_verify_check($standby, $index,
		name => "$index on the promoted standby", reachable => 0);
	is_deeply($v, $verified{$index},
		"$index: hnsw_verify gives the same figures on the promoted standby as on the primary");

	hnsw_load($standby, $table, n => $c->{n} / 10, seed => $c->{seed} + 0.03,
		first_id => 8001, create => 0, value => $c->{value});
	my $lost = hnsw_unreachable($standby, $table, $op, ef_search => 100,
		index => $index, name => "$index on the promoted standby",
		where => 'a.id > 8000');
	is(scalar(@$lost), 0,
		"$index: after promotion, every row inserted is found by a search with its own vector"
	) or diag("not found even at ef_search 1000: @$lost");
	$standby->safe_psql('postgres', "VACUUM (INDEX_CLEANUP ON) $table");
	is( $standby->safe_psql(
			'postgres',
			qq{SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname = '$index')
               = (SELECT count(*) FROM $table)}),
		't',
		"$index: after promotion, the index holds one heap TID per row");
}
$standby->stop;

# UNLOGGED: after a crash, the tables and their indexes are reset to
# empty.  One table of each family, of n rows, then n/2 inserts; a tenth
# as many rows for the other families as for vector.
my @unlogged =
  map { +{ %$_, table => "u_$_->{family}", n => $_->{family} eq 'vector' ? 1000 : 100 } }
  ($vector, @others);
for my $c (@unlogged)
{
	my ($table, $op) = @$c{qw(table op)};
	$c->{index} = "${table}_v_idx";
	hnsw_load($primary, $table, n => $c->{n}, seed => 0.7, unlogged => 1,
		type => $c->{type}, value => $c->{value});
	$primary->safe_psql('postgres',
		"CREATE INDEX $c->{index} ON $table USING hnsw (v $c->{opclass});"
		  . "CREATE TABLE q_$table AS SELECT id, " . $c->{value}->('v') . ' AS v FROM q');
	hnsw_load($primary, $table, n => $c->{n} / 2, seed => 0.71,
		first_id => $c->{n} + 1, create => 0, value => $c->{value});
	my $lost = hnsw_unreachable($primary, $table, $op, ef_search => 100,
		index => $c->{index}, name => "unlogged $c->{family}");
	is(scalar(@$lost), 0,
		"unlogged $c->{family}: every row is found by a search with its own vector")
	  or diag("not found even at ef_search 1000: @$lost");
}

$primary->stop('immediate');
$primary->start;

for my $c (@unlogged)
{
	my ($table, $op, $index) = @$c{qw(table op index)};
	my $name = "unlogged $c->{family}";
	is($primary->safe_psql('postgres', "SELECT count(*) FROM $table"),
		0, "$name: the table is empty after an immediate restart");
	is($primary->safe_psql('postgres', "SELECT pg_relation_size('$index')"),
		8192, "$name: the index is reset to its metapage");
	my $empty = hnsw_topk($primary, $table, "q_$table", $op, k => $K,
		ef_search => 100, index => $index, name => "$name, after the restart");
	is(scalar(grep { @{ $empty->{$_} } > 0 } keys %$empty),
		0, "$name: an index scan after the restart returns nothing");

	my $rows = $c->{n} * 3 / 10;
	hnsw_load($primary, $table, n => $rows, seed => 0.72, first_id => 1,
		create => 0, value => $c->{value});
	my $lost = hnsw_unreachable($primary, $table, $op, ef_search => 100,
		index => $index, name => "$name, after the restart");
	is(scalar(@$lost), 0,
		"$name: after the restart, every row inserted is found through the index")
	  or diag("not found even at ef_search 1000: @$lost");
	my $exact = hnsw_topk_dist($primary, $table, "q_$table", $op, k => $K,
		exact => 1, name => "$name, exact");
	my $recall = hnsw_recall_dist(
		hnsw_topk_dist(
			$primary, $table, "q_$table", $op, k => $K, ef_search => 100,
			index => $index, name => "$name, recall"),
		$exact);
	note(sprintf('%s, %d rows after the restart: recall@%d at ef_search 100 = %.4f',
			$name, $rows, $K, $recall));
	cmp_ok($recall, '>=', 0.99,
		"$name, after the restart: recall\@$K at ef_search 100 >= 0.99");
}

$primary->stop;

done_testing();
