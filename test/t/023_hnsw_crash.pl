# Crash recovery of hnsw indexes: after a checkpoint, build an index (and
# one whose build outgrows maintenance_work_mem), insert rows through it in
# several transactions, leave one transaction of inserts open, and stop the
# server with 'immediate'.  Recovery must give back an index in which every
# committed row is found, that answers every query as before the crash, and
# that takes inserts.  Once with wal_level = minimal (the builds are then
# synced rather than logged) and once with wal_level = replica.
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

for my $wal_level ('minimal', 'replica')
{
	my $node = PostgreSQL::Test::Cluster->new("crash_$wal_level");
	$node->init;
	# No checkpoint but ours: recovery has to replay everything below.
	$node->append_conf('postgresql.conf',
		"wal_level = $wal_level\ncheckpoint_timeout = '1h'\nmax_wal_size = '1GB'\n");
	$node->start;

	hnsw_setup_data($node, dim => $dim, clusters => 30, seed => 0.25);
	hnsw_load($node, 'q', n => 50, seed => 0.75, stride => 7);

	# The indexed tables: vector's t (indexed in memory) and s (its build
	# outgrows maintenance_work_mem), then one of each other family.  n:
	# the rows of the first load, after which come 4 committed loads of
	# n/8 rows, an open transaction of n/8 more, and after recovery n*3/40
	# inserts; seed: the first load's.  Each has its queries (q's vectors,
	# as its type).
	my ($vector, @others) = hnsw_families($node, $dim);
	my @cases = (
		{ %$vector, table => 't', n => 4000, seed => 0.5 },
		{
			%$vector,
			table => 's',
			opclass => 'vector_l1_ops',
			op => '<+>',
			n => 4000,
			seed => 0.6,
			spill => 1
		},
		map {
			+{
				%{ $others[$_] },
				table => "t_$others[$_]{family}",
				n => 640,
				seed => 0.3 + $_ / 10
			}
		} 0 .. $#others);
	for my $c (@cases)
	{
		$c->{index} = "$c->{table}_v_idx";
		$c->{queries} = "q_$c->{table}";
		$c->{committed} = $c->{n} * 3 / 2;
		hnsw_load($node, $c->{table}, n => $c->{n}, seed => $c->{seed},
			type => $c->{type}, value => $c->{value});
		$node->safe_psql('postgres',
			"CREATE TABLE $c->{queries} AS SELECT id, "
			  . $c->{value}->('v')
			  . ' AS v FROM q');
	}
	$node->safe_psql('postgres', 'CHECKPOINT');

	for my $c (@cases)
	{
		my ($ret, $out, $err) = $node->psql('postgres',
			($c->{spill} ? "SET maintenance_work_mem = '1MB';\n" : '')
			  . "CREATE INDEX $c->{index} ON $c->{table} USING hnsw (v $c->{opclass});"
		);
		is($ret, 0, "$wal_level: build of $c->{index}") or diag($err);
		if ($c->{spill})
		{
			like($err, qr/hnsw graph no longer fits into maintenance_work_mem/,
				"$wal_level: the build of $c->{index} outgrew maintenance_work_mem");
		}
		else
		{
			unlike($err, qr/hnsw graph no longer fits into maintenance_work_mem/,
				"$wal_level: the build of $c->{index} was made in memory");
		}
	}

	# Committed inserts after the builds, in several transactions.
	for my $i (0 .. 3)
	{
		for my $c (@cases)
		{
			my $step = $c->{n} / 8;
			hnsw_load($node, $c->{table}, n => $step,
				seed => $c->{seed} + 0.01 + $i / 100,
				first_id => $c->{n} + 1 + $step * $i, create => 0,
				value => $c->{value});
		}
	}

	my %before;
	for my $c (@cases)
	{
		my ($table, $op, $index, $queries) = @$c{qw(table op index queries)};
		$before{$table} = hnsw_topk($node, $table, $queries, $op, k => $K,
			ef_search => 100, index => $index,
			name => "$wal_level, $index before the crash");
		is(scalar(grep { @{ $before{$table}{$_} } == $K } keys %{ $before{$table} }),
			50, "$wal_level, $index: before the crash, $K results for each of 50 queries");
		my $lost = hnsw_unreachable($node, $table, $op, ef_search => 100,
			index => $index, name => "$wal_level, $index before the crash");
		is(scalar(@$lost), 0,
			"$wal_level, $index: before the crash, every row is found by a search with its own vector"
		) or diag("not found even at ef_search 1000: @$lost[0 .. ($#$lost < 19 ? $#$lost : 19)]");
	}

	# A transaction still open at the crash: its rows are in the index
	# (and maybe on disk) but must never come back.
	my $open = $node->background_psql('postgres', on_error_stop => 1);
	$open->query_safe(
		"BEGIN;\n"
		  . join(
			'',
			map {
				"INSERT INTO $_->{table} (id, v) SELECT i, "
				  . $_->{value}->('hnsw_point(x, 0.3)')
				  . " FROM generate_series(9001, 9000 + $_->{n} / 8) i"
				  . " JOIN hnsw_centres ON c = 1 + i % 30;\n"
			} @cases));

	$node->stop('immediate');
	# psql lost its server; it exits on its own at end of input.
	eval { $open->quit; };
	$node->start;

	for my $c (@cases)
	{
		my ($table, $op, $index, $queries) = @$c{qw(table op index queries)};
		my $name = "$wal_level, $index";

		is($node->safe_psql('postgres', "SELECT count(*) FROM $table"),
			$c->{committed}, "$name: the committed rows, and only those, are back");

		# (reachable => 0: see 021_hnsw_concurrent.pl.)
		hnsw_verify_check($node, $index, name => "$name after the crash",
			reachable => 0);

		my $after = hnsw_topk($node, $table, $queries, $op, k => $K,
			ef_search => 100, index => $index,
			name => "$name after the crash");
		is_deeply($after, $before{$table},
			"$name: every query returns the same ids as before the crash");

		my $lost = hnsw_unreachable($node, $table, $op, ef_search => 100,
			index => $index, name => "$name after the crash");
		is(scalar(@$lost), 0,
			"$name: every committed row is found by a search with its own vector"
		) or diag("not found even at ef_search 1000: @$lost[0 .. ($#$lost < 19 ? $#$lost : 19)]");

		# The aborted rows' heap TIDs leave the index with VACUUM; what
		# stays is one TID per committed row.
		$node->safe_psql('postgres', "VACUUM (INDEX_CLEANUP ON) $table");
		is( $node->safe_psql(
				'postgres',
				"SELECT reltuples::bigint FROM pg_class WHERE relname = '$index'"),
			$c->{committed},
			"$name: after VACUUM the index holds one heap TID per row");

		# It takes inserts again, after the VACUUM: these look for free
		# slots over pages that the crash may have left all zeros (the
		# open transaction's new pages whose WAL never reached disk).
		hnsw_load($node, $table, n => $c->{n} * 3 / 40, seed => 0.9,
			first_id => 10001, create => 0, value => $c->{value});
		$lost = hnsw_unreachable($node, $table, $op, ef_search => 100,
			index => $index, name => "$name, inserts after recovery",
			where => 'a.id > 10000');
		is(scalar(@$lost), 0,
			"$name: rows inserted after recovery and VACUUM are found through the index")
		  or diag("not found even at ef_search 1000: @$lost");
	}

	$node->stop;
}

# Whether the crash above leaves all-zero pages depends on how much of the
# open transaction's WAL reached disk (seen: 0 to 17 pages).  Here one is
# appended by hand, the server stopped, so that VACUUM and the free-slot
# search of inserts meet one every time.  (Before b4f27fb, inserts failed
# with: index "z_v_idx" contains unexpected page at block N.)
my $node = PostgreSQL::Test::Cluster->new('zero_page');
$node->init;
$node->start;
hnsw_setup_data($node, dim => 16, clusters => 30, seed => 0.25);
hnsw_load($node, 'z', n => 2000, seed => 0.5);
$node->safe_psql(
	'postgres', q{
CREATE INDEX z_v_idx ON z USING hnsw (v vector_l2_ops);
DELETE FROM z WHERE id % 2 = 0;
});
my $file = $node->data_dir . '/'
  . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('z_v_idx')});
my $blocks = $node->safe_psql('postgres',
	q{SELECT pg_relation_size('z_v_idx') / 8192});
$node->stop;
open(my $fh, '>>', $file) or die "open $file: $!";
binmode $fh;
print $fh "\0" x 8192;
close $fh or die "close $file: $!";
$node->start;
note("z_v_idx: $blocks blocks, then an all-zero block $blocks");

my ($ret, $out, $err) = $node->psql('postgres', 'VACUUM z');
is($ret, 0, 'zero page: VACUUM succeeds') or diag($err);
# 2,000 inserts use up the 1,000 freed slots and search on past them.
($ret, $out, $err) = $node->psql(
	'postgres', q{
INSERT INTO z (id, v)
  SELECT i, hnsw_point(x, 0.3)
  FROM generate_series(2001, 4000) i JOIN hnsw_centres ON c = 1 + i % 30;
});
is($ret, 0, 'zero page: inserts after VACUUM succeed') or diag($err);
my $lost = hnsw_unreachable($node, 'z', '<->', ef_search => 100,
	index => 'z_v_idx', name => 'zero page');
is(scalar(@$lost), 0, 'zero page: every row is found by its own vector')
  or diag("not found even at ef_search 1000: @$lost");
$node->stop;

done_testing();
