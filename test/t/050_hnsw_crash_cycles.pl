# Crash cycles: an hnsw index must come back whole from an immediate stop
# in the middle of concurrent inserts, of CREATE INDEX (CONCURRENTLY or
# not) and of VACUUM, again and again on the same cluster, each recovery
# starting from what the previous ones left.
#
# Cycles (one server crash each):
#   1-3. 4 pgbench clients insert 5 rows per transaction; the server is
#        stopped ('immediate') once enough rows are in (cycle 2 with a
#        CHECKPOINT in the middle, so that recovery starts from a
#        checkpoint taken during the inserts).  pgbench logs every
#        transaction it saw committed; each of those rows must be back, each
#        transaction whole, nothing from transactions never started.
#   4.   CREATE INDEX CONCURRENTLY in maintenance_work_mem = 1MB (so that
#        it spills and goes on with WAL-logged inserts), crashed half way:
#        the index is left invalid; REINDEX makes it valid and clean, and
#        it replaces the index under test.
#   5.   CREATE INDEX crashed half way: the index is gone; CREATE INDEX
#        again works and is clean, and replaces the index under test.
#   6.   40% of the rows deleted, VACUUM crashed in its index pass: the
#        live rows are all found through the half-vacuumed index; VACUUM
#        again; clean; its freed slots take new rows.
#   7.   inserts, deletes and VACUUM from pgbench, crashed.
# After every cycle: the heap's row count is the reference; a full
# iterative scan of the index returns exactly those rows; every row is
# found by a search with its own vector (at ef_search 100, or else 1000);
# hnsw_verify(heapallindexed) succeeds; then VACUUM, after which
# hnsw_verify must also find every element reachable and count one heap
# TID per row.
#
# 16 dimensions: see 021_hnsw_concurrent.pl.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use HnswTest;

my $CLIENTS = 4;
my $ROWS_PER_TX = 5;

my $node = PostgreSQL::Test::Cluster->new('crash_cycles');
$node->init;
# No checkpoint but ours, no autovacuum: recovery replays everything since
# the last explicit checkpoint, and VACUUM runs only when we say.
$node->append_conf(
	'postgresql.conf', q{
wal_level = replica
checkpoint_timeout = '1h'
max_wal_size = '1GB'
autovacuum = off
log_statement = 'none'
jit = off
});
$node->start;

hnsw_setup_data($node, dim => 16, clusters => 30, seed => 0.25);
hnsw_load($node, 't', n => 3000, seed => 0.5);
$node->safe_psql('postgres',
	'CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops); CHECKPOINT');

my $cycles = 0;          # crashes survived (every check of the cycle passed)
my $rows_checked = 0;    # rows found by their own vector, summed over checks
my @figures;

sub count_t
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM t');
}

# Wait until $cond (an SQL boolean) holds; die after $timeout seconds.
sub wait_for
{
	my ($cond, $timeout, $what) = @_;
	my $end = time() + $timeout;
	while (time() < $end)
	{
		return 1 if $node->safe_psql('postgres', "SELECT $cond") eq 't';
		usleep(100_000);
	}
	die "timed out waiting for $what";
}

# psql running $sqls (one -c each, so each is its own transaction) in the
# background.
sub bg_psql
{
	my (@sqls) = @_;
	my %r = (out => '', err => '');
	$r{h} = IPC::Run::start(
		[
			'psql', '-X', '-h', $node->host, '-p', $node->port,
			'-d', 'postgres', map { ('-c', $_) } @sqls
		],
		'<', \undef, '>', \$r{out}, '2>', \$r{err});
	return \%r;
}

sub crash_and_restart
{
	my ($what) = @_;
	$node->stop('immediate');
	$node->start;
	note("crashed during $what, restarted");
	return;
}

# The checks after every crash.
sub check_index
{
	my ($name) = @_;
	my $ok = 1;
	my $live = count_t();

	# Every row through the index: a full iterative scan.
	my $through_index = $node->safe_psql(
		'postgres', qq{
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET hnsw.ef_search = 1000;
SET hnsw.iterative_scan = relaxed_order;
SET hnsw.max_scan_tuples = 1000000;
SET work_mem = '256MB';
SELECT count(*) || ' ' || count(DISTINCT id) || ' ' ||
       (SELECT count(*) FROM t) FROM (
  SELECT id FROM t ORDER BY v <-> (SELECT v FROM t ORDER BY id LIMIT 1)
  LIMIT $live + 1000) s;
});
	$ok &= is($through_index, "$live $live $live",
		"$name: a full scan of the index returns each of the $live rows once");

	my $lost = hnsw_unreachable($node, 't', '<->', ef_search => 100,
		index => 't_v_idx', name => $name);
	$ok &= is(scalar(@$lost), 0,
		"$name: every one of the $live rows is found by a search with its own vector")
	  || diag("not found even at ef_search 1000: @$lost[0 .. ($#$lost < 19 ? $#$lost : 19)]");
	$rows_checked += $live;

	# Before VACUUM, elements of transactions the crash aborted may be
	# unlinked: only after VACUUM must every element be reachable.
	my $v = hnsw_verify_check($node, 't_v_idx', reachable => 0,
		name => "$name, before VACUUM");
	$ok &= defined $v;
	$ok &= cmp_ok($v->{heap_tids} // -1, '>=', $live,
		"$name: the index holds a heap TID for each row");

	# INDEX_CLEANUP ON: with few dead rows VACUUM would skip the index.
	my ($ret, $out, $err) = $node->psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t');
	$ok &= is($ret, 0, "$name: VACUUM") || diag($err);
	$v = hnsw_verify_check($node, 't_v_idx', name => "$name, after VACUUM");
	$ok &= defined $v;
	$ok &= is($v->{heap_tids} // -1, $live,
		"$name: after VACUUM the index holds one heap TID per row");
	push @figures, sprintf('%s: %d rows', $name, $live);
	return $ok;
}

#------------------------------------------------------------------------
# 1-3, 7: pgbench crashed.
#------------------------------------------------------------------------

# Each transaction inserts ids base + client * 10^6 + n * 10 + (0..4),
# n counting the client's transactions from 1; a random cluster per
# transaction, from pgbench's seeded generator.
my $insert_script = qq{
\\set n :n + 1
\\set id :base + :client_id * 1000000 + :n * 10
\\set seed random(0, 999999999)
\\set c random(1, 30)
BEGIN;
SELECT setseed(:seed / 1000000000.0);
INSERT INTO t (id, v)
  SELECT :id + j, hnsw_point(x, 0.3)
  FROM hnsw_centres, generate_series(0, @{[ $ROWS_PER_TX - 1 ]}) j WHERE c = :c;
COMMIT;
};

# Per client, how many transactions of script number $script pgbench saw
# committed, from its log (one line per transaction: client_id,
# transaction_no, latency, script_no, ...).
sub committed_per_client
{
	my ($prefix, $script) = @_;
	my %k;
	my $bad = 0;
	for my $f (glob("$prefix.*"))
	{
		for my $line (split /\n/, slurp_file($f))
		{
			my @f = split / /, $line;
			if ($f[2] !~ /^\d+$/)    # 'failed' or 'skipped'
			{
				$bad++;
				next;
			}
			$k{ $f[0] }++ if $f[3] == $script;
		}
	}
	return (\%k, $bad);
}

sub pgbench_crash
{
	my ($cycle, $extra_rows, %o) = @_;
	my $name = "cycle $cycle ($o{what})";
	my $base = $cycle * 10_000_000;
	my $prefix = $node->basedir . "/log_c$cycle";
	my $before = count_t();

	my $run = hnsw_pgbench_start(
		$node,
		"--no-vacuum --client=$CLIENTS --jobs=2 --time=120 --random-seed=$cycle"
		  . " --log --log-prefix=$prefix -D n=0 -D base=$base",
		{ "050_insert_c$cycle\@" . ($o{insert_weight} // 1) => $insert_script,
		  %{ $o{more_scripts} // {} } });

	if ($o{checkpoint})
	{
		wait_for("count(*) >= $before + $extra_rows / 2 FROM t", 60,
			"$name: half the rows");
		$node->safe_psql('postgres', 'CHECKPOINT');
		note("$name: CHECKPOINT with the inserts half done");
	}
	wait_for("count(*) >= $before + $extra_rows FROM t", 60,
		"$name: $extra_rows rows");
	crash_and_restart($name);
	my ($rc, $out, $err) = hnsw_pgbench_finish($run);
	isnt($rc, 0, "$name: pgbench was still running at the crash")
	  or diag($out);
	unlike($err, qr/ERROR/, "$name: no SQL error before the crash")
	  or diag($err);

	my ($script) = grep { $run->{scripts}[$_] eq "050_insert_c$cycle" }
	  0 .. $#{ $run->{scripts} };
	my ($k, $bad) = committed_per_client($prefix, $script);
	is($bad, 0, "$name: no failed transaction in pgbench's log");
	my $acked = 0;
	$acked += $_ for values %$k;
	my $ok = cmp_ok($acked, '>', 0, "$name: pgbench logged committed transactions");

	# Every acknowledged transaction is back, whole; of the transactions
	# not acknowledged, at most each client's next one committed.
	my @missing;
	my @extra;
	for my $c (0 .. $CLIENTS - 1)
	{
		my $kc = $k->{$c} // 0;
		my $lo = $base + $c * 1_000_000;
		my ($have, $beyond) = split /\|/,
		  $node->safe_psql(
			'postgres',
			"SELECT count(*) FILTER (WHERE id < $lo + ($kc + 1) * 10),
                    count(*) FILTER (WHERE id >= $lo + ($kc + 2) * 10)
             FROM t WHERE id >= $lo AND id < $lo + 1000000");
		push @missing, "client $c: $have of " . ($kc * $ROWS_PER_TX)
		  if $have != $kc * $ROWS_PER_TX;
		push @extra, "client $c: $beyond" if $beyond != 0;
	}
	$ok &= is(scalar(@missing), 0,
		"$name: every row of the $acked transactions pgbench saw committed is back")
	  || diag(join('; ', @missing));
	$ok &= is(scalar(@extra), 0,
		"$name: no rows of transactions after each client's last acknowledged one but one")
	  || diag(join('; ', @extra));
	$ok &= is(
		$node->safe_psql(
			'postgres',
			"SELECT count(*) FROM (SELECT id / 10 FROM t
               WHERE id >= $base AND id < $base + 10000000
               GROUP BY id / 10 HAVING count(*) <> $ROWS_PER_TX) s"),
		0,
		"$name: every transaction is back whole or not at all");
	my $in_cycle = $node->safe_psql('postgres',
		"SELECT count(*) FROM t WHERE id >= $base AND id < $base + 10000000");
	note("$name: $acked transactions acknowledged, $in_cycle rows back");
	push @figures, "$name: $acked transactions acknowledged, $in_cycle rows back";

	$ok &= check_index($name);
	$cycles++ if $ok;
	return;
}

pgbench_crash(1, 1500, what => 'inserts');
pgbench_crash(2, 2000, what => 'inserts across a checkpoint', checkpoint => 1);
pgbench_crash(3, 1000, what => 'inserts');

#------------------------------------------------------------------------
# 4-5: crashes during index builds.
#------------------------------------------------------------------------

# Wait until the index build on t has read $frac of the table.  (By the
# table: a plain CREATE INDEX does not show the index it builds.)
sub wait_for_build
{
	my ($frac, $what) = @_;
	wait_for(
		qq{EXISTS (SELECT 1 FROM pg_stat_progress_create_index
                 WHERE relid = 't'::regclass AND tuples_total > 0
                   AND tuples_done >= tuples_total * $frac)},
		60, $what);
	return $node->safe_psql(
		'postgres', q{
SELECT phase || ', ' || tuples_done || ' of ' || tuples_total
FROM pg_stat_progress_create_index WHERE relid = 't'::regclass});
}

# The new index replaces t_v_idx.
sub swap_index
{
	my ($new) = @_;
	$node->safe_psql('postgres',
		"DROP INDEX t_v_idx; ALTER INDEX $new RENAME TO t_v_idx");
	return;
}

{
	my $name = 'cycle 4 (CREATE INDEX CONCURRENTLY, spilled)';
	my $ok = 1;
	my $bg = bg_psql(
		q{SET maintenance_work_mem = '1MB'},
		q{CREATE INDEX CONCURRENTLY t_v_cic ON t USING hnsw (v vector_l2_ops)});
	my $at = wait_for_build(0.5, "$name: half built");
	note("$name: crash at $at");
	crash_and_restart($name);
	$bg->{h}->finish;
	like($bg->{err}, qr/NOTICE:  hnsw graph no longer fits/,
		"$name: the build had spilled to pages before the crash");

	$ok &= is(
		$node->safe_psql(
			'postgres',
			q{SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_cic'::regclass}),
		'f',
		"$name: the index is left invalid");
	my ($ret, $out, $err) = $node->psql('postgres', 'REINDEX INDEX t_v_cic');
	$ok &= is($ret, 0, "$name: REINDEX of the invalid index") || diag($err);
	$ok &= is(
		$node->safe_psql(
			'postgres',
			q{SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_cic'::regclass}),
		't',
		"$name: the index is valid after REINDEX");
	$ok &= defined hnsw_verify_check($node, 't_v_cic',
		name => "$name, after REINDEX");
	swap_index('t_v_cic');
	$ok &= check_index($name);
	$cycles++ if $ok;
}

{
	# ef_construction 256: a build slow enough to be caught half way.
	my $name = 'cycle 5 (CREATE INDEX, in memory)';
	my $ok = 1;
	my $create = 'CREATE INDEX t_v_new ON t USING hnsw (v vector_l2_ops)'
	  . ' WITH (ef_construction = 256)';
	my $bg = bg_psql($create);
	my $at = wait_for_build(0.5, "$name: half built");
	note("$name: crash at $at");
	crash_and_restart($name);
	$bg->{h}->finish;

	$ok &= is($node->safe_psql('postgres', q{SELECT to_regclass('t_v_new')}),
		'', "$name: the index is gone");
	my ($ret, $out, $err) = $node->psql('postgres', $create);
	$ok &= is($ret, 0, "$name: CREATE INDEX again") || diag($err);
	$ok &= defined hnsw_verify_check($node, 't_v_new',
		name => "$name, built again");
	swap_index('t_v_new');
	$ok &= check_index($name);
	$cycles++ if $ok;
}

#------------------------------------------------------------------------
# 6: a crash during VACUUM's index pass.
#------------------------------------------------------------------------
{
	my $name = 'cycle 6 (VACUUM)';
	my $ok = 1;
	$node->safe_psql('postgres', 'DELETE FROM t WHERE id % 5 IN (1, 3)');
	my $live = count_t();
	my $bg = bg_psql('VACUUM (VERBOSE) t');
	wait_for(
		q{EXISTS (SELECT 1 FROM pg_stat_progress_vacuum
                 WHERE relid = 't'::regclass AND phase = 'vacuuming indexes')},
		120, "$name: the index pass");
	usleep(300_000);
	my $phase = $node->safe_psql('postgres',
		q{SELECT phase FROM pg_stat_progress_vacuum WHERE relid = 't'::regclass});
	note("$name: crash in phase '$phase'");
	is($phase, 'vacuuming indexes',
		"$name: VACUUM was still in its index pass at the crash");
	crash_and_restart($name);
	$bg->{h}->finish;
	$ok &= is(count_t(), $live, "$name: the $live live rows are back");

	# Before VACUUM runs again, through the index as the crash left it.
	my $lost = hnsw_unreachable($node, 't', '<->', ef_search => 100,
		index => 't_v_idx', name => "$name, half vacuumed");
	$ok &= is(scalar(@$lost), 0,
		"$name: in the half-vacuumed index, every live row is found by its own vector")
	  || diag("not found even at ef_search 1000: @$lost[0 .. ($#$lost < 19 ? $#$lost : 19)]");
	$rows_checked += $live;
	$ok &= defined hnsw_verify_check($node, 't_v_idx', reachable => 0,
		name => "$name, half vacuumed");

	$ok &= check_index($name);

	# The slots VACUUM freed (those its compaction left) take new rows:
	# of 1,000 inserts, as many as there are free slots of their level
	# reuse one, and the rest stay free only for want of a row of their
	# level (a few upper-level slots).
	my $v0 = hnsw_verify_check($node, 't_v_idx', name => "$name, before the inserts");
	hnsw_load($node, 't', n => 1000, seed => 0.9, first_id => 90_000_001,
		create => 0);
	my $v1 = hnsw_verify_check($node, 't_v_idx', reachable => 0,
		name => "$name, after the inserts");
	$ok &= defined $v0 && defined $v1;
	my ($free0, $free1) = ($v0->{deleted} // 0, $v1->{deleted} // 0);
	note("$name: $free0 free slots before 1000 inserts, $free1 after; "
		  . ($v1->{elements} - $v0->{elements}) . ' element tuples added');
	$ok &= cmp_ok($free1, '<=', ($free0 > 1000 ? $free0 - 1000 : 0) + 5,
		"$name: inserts after the crash and VACUUM reuse the freed slots");
	$lost = hnsw_unreachable($node, 't', '<->', ef_search => 100,
		index => 't_v_idx', name => "$name, new rows",
		where => 'a.id > 90000000');
	$ok &= is(scalar(@$lost), 0,
		"$name: rows inserted into freed slots are found by their own vector")
	  || diag("not found even at ef_search 1000: @$lost");
	$cycles++ if $ok;
}

#------------------------------------------------------------------------
# 7: inserts, deletes and VACUUM at once, crashed.
#------------------------------------------------------------------------
pgbench_crash(
	7, 1000,
	what => 'inserts, deletes and VACUUM',
	insert_weight => 10,
	more_scripts => {
		# only rows of earlier cycles: this cycle's must all stay
		'050_delete_c7@4' => q{
\set id random(1, 40000000)
DELETE FROM t WHERE id = (SELECT min(id) FROM t WHERE id >= :id AND id < 40000000);
},
		'050_vacuum_c7@1' => q{
VACUUM t;
},
	});

diag(join("\n", @figures));
diag("crash cycles survived: $cycles of 7; rows checked through the index: $rows_checked");
is($cycles, 7, 'every crash cycle passed its checks');

$node->stop;

done_testing();
