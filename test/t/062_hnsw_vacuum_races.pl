# VACUUM racing inserts, each race held at a chosen point.
#
# PostgreSQL 15 has no injection points; the hnsw code has named wait points
# instead (hnsw.test_wait_point, src/hnsw.c): the session that sets one waits
# there for an advisory lock that this test holds, so the test acts while
# VACUUM stands exactly there, and then lets it go.  Each section is a defect
# of issue 12 that lost rows or made inserts wait:
#   1. a row inserted while VACUUM runs, into an element whose duplicate chain
#      VACUUM had just emptied (the element's flag was never written, and
#      pass 4 freed the element with the new row in it);
#   2. every row deleted, new rows inserted while VACUUM runs: they found no
#      live neighbor, and VACUUM left the index without an entry point;
#   3. VACUUM's last pass held the update lock across its cost-based sleeps,
#      so inserts waited out a throttled VACUUM;
#   4. a duplicate chain that loops (a damaged index): an insert walked it
#      for ever, holding a content lock, and could not be cancelled;
#   5. (no race) a cleanup-only VACUUM left duplicate chains out of
#      reltuples;
#   6. (vector only) rows inserted while VACUUM runs reuse the slots it
#      freed, and an element that only the deleted ones led to was lost to
#      every search until the cleanup, after the heap is vacuumed.
#
# Each section for one opclass of each type family (hnsw_families: vector,
# halfvec, bit, sparsevec): an insert finds the element of an equal vector
# (whose duplicate chain it joins) through its type's comparison, and the
# elements VACUUM frees and repairs are of its type's format.  The vectors
# have 8 dimensions, drawn uniform in [-1, 1] (rand_vec), and the constant
# ones are all coordinates alike (fill): bit's code of a vector (hnsw_bits)
# tells apart 6 values of a coordinate, so that 8 of them keep random rows
# apart from each other and from the constants.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use HnswTest;

my $WAIT_KEY = 1213090647;    # HNSW_WAIT_LOCK_KEY
my $DIM = 8;

my $node = PostgreSQL::Test::Cluster->new('vacuum_races');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION tinyhnsw;
CREATE FUNCTION rand_vec() RETURNS vector LANGUAGE sql VOLATILE AS
  'SELECT array_agg(random() * 2 - 1 ORDER BY d)::vector FROM generate_series(1, $DIM) d'");
my @families = hnsw_families($node, $DIM);

# The SQL of a vector whose coordinates are all $x.
sub fill
{
	my ($x) = @_;
	return "array_fill(${x}::real, ARRAY[$DIM])::vector";
}

# A psql session in the background, fed statements one at a time.
sub session
{
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return { h => $h, in => \$in, out => \$out, err => \$err };
}

# Send SQL to a session and wait until it has printed the marker after it.
sub run_in
{
	my ($s, $sql) = @_;
	my $marker = 'done' . int(rand(1e9));
	${ $s->{in} } .= "$sql;\nSELECT '$marker';\n";
	$s->{h}->pump until ${ $s->{out} } =~ /$marker/;
}

# Send SQL to a session without waiting for it.
sub send_to
{
	my ($s, $sql) = @_;
	${ $s->{in} } .= "$sql;\n";
	$s->{h}->pump_nb;
}

sub finish
{
	my ($s) = @_;
	${ $s->{in} } .= "\\q\n";
	$s->{h}->finish;
	return ${ $s->{err} };
}

# Hold the wait lock; returns the holding session.
sub hold
{
	my $s = session();
	run_in($s, "SELECT pg_advisory_lock($WAIT_KEY)");
	return $s;
}

# Wait until some backend waits at a wait point (for the lock we hold).
sub wait_until_waiting
{
	my ($what) = @_;
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $WAIT_KEY"
		),
		"$what is held at its wait point");
}

sub release
{
	my ($s) = @_;
	run_in($s, "SELECT pg_advisory_unlock($WAIT_KEY)");
	finish($s);
}

# VACUUM in a session of its own, stopping at a wait point.
sub start_vacuum
{
	my ($point, $table, $extra) = @_;
	my $s = session();
	send_to($s,
		"SET hnsw.test_wait_point = '$point'; "
		  . ($extra // '')
		  . "VACUUM $table; SELECT 'vacuumed'");
	return $s;
}

sub end_vacuum
{
	my ($s, $name) = @_;
	$s->{h}->pump until ${ $s->{out} } =~ /vacuumed/;
	my $err = finish($s);
	is($err, '', "$name: VACUUM ends without an error");
}

# Rows of a table (id, emb) that an index scan for their own vector misses.
sub missing_by_index
{
	my ($table, $op, $where) = @_;
	$where //= 'true';
	return $node->safe_psql(
		'postgres', qq{
SET enable_seqscan = off; SET enable_bitmapscan = off; SET hnsw.ef_search = 100;
SELECT count(*) FROM $table a WHERE $where AND a.id NOT IN (
	SELECT b.id FROM $table b ORDER BY b.emb $op a.emb LIMIT 200)});
}

for my $f (@families)
{
	my ($family, $op, $type, $opclass, $value) =
	  @$f{qw(family op type opclass value)};
	# The random rows of sections 1, 2 and 3: fewer for the other
	# families, to keep the file's time (each race is the same).
	my $n = $family eq 'vector' ? 1 : 0.25;
	my ($n1, $n2, $n3) = (300 * $n, 500 * $n, 2000 * $n);

	# ------------------------------------------------------------ 1.
	# An element whose own heap TIDs went in an earlier VACUUM while its
	# chain stayed live; its chain's rows are deleted; a row with the same
	# vector is inserted while the next VACUUM stands after pass 1.
	my $five = $value->(fill(5));
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE dup_$family (id int PRIMARY KEY, emb $type);
SELECT setseed(0.1);
INSERT INTO dup_$family SELECT i, } . $value->('rand_vec()') . qq{ FROM generate_series(1, $n1) i;
INSERT INTO dup_$family SELECT 1000 + i, $five FROM generate_series(1, 20) i;
CREATE INDEX dup_${family}_idx ON dup_$family USING hnsw (emb $opclass);
DELETE FROM dup_$family WHERE id BETWEEN 1001 AND 1009;
VACUUM dup_$family;
DELETE FROM dup_$family WHERE id BETWEEN 1010 AND 1020;
});
	my $holder = hold();
	my $vac = start_vacuum('vacuum_after_remove', "dup_$family");
	wait_until_waiting("$family: 1: VACUUM after pass 1");
	$node->safe_psql('postgres', "INSERT INTO dup_$family VALUES (2000, $five)");
	release($holder);
	end_vacuum($vac, "$family: 1");
	my $found = $node->safe_psql(
		'postgres', qq{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM dup_$family ORDER BY emb $op $five LIMIT 1) s});
	is($found, '2000',
		"$family: 1: the row inserted during VACUUM into an emptied element is found");
	$node->safe_psql('postgres', "VACUUM dup_$family");
	is(missing_by_index("dup_$family", $op), '0',
		"$family: 1: after another VACUUM, every row is found by its own vector");
	is($node->psql('postgres', "SELECT 1 FROM hnsw_verify('dup_${family}_idx', true)"),
		0, "$family: 1: hnsw_verify(dup_${family}_idx, true) finds every row in the index");

	# ------------------------------------------------------------ 2.
	# Every row deleted; 100 rows inserted while VACUUM stands after pass
	# 1, which has flagged every element.
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE reload_$family (id int PRIMARY KEY, emb $type);
SELECT setseed(0.2);
INSERT INTO reload_$family SELECT i, } . $value->('rand_vec()') . qq{ FROM generate_series(1, $n2) i;
CREATE INDEX reload_${family}_idx ON reload_$family USING hnsw (emb $opclass);
DELETE FROM reload_$family;
});
	$holder = hold();
	$vac = start_vacuum('vacuum_after_remove', "reload_$family");
	wait_until_waiting("$family: 2: VACUUM after pass 1");
	$node->safe_psql(
		'postgres', qq{
SELECT setseed(0.3);
DO \$\$ BEGIN FOR i IN 1..100 LOOP
	INSERT INTO reload_$family VALUES (1000 + i, } . $value->('rand_vec()') . qq{);
END LOOP; END \$\$;
});
	release($holder);
	end_vacuum($vac, "$family: 2");
	is(missing_by_index("reload_$family", $op), '0',
		"$family: 2: every row inserted during VACUUM is found by its own vector");
	$node->safe_psql('postgres',
		"INSERT INTO reload_$family VALUES (5000, " . $value->(fill(0.5)) . "); VACUUM reload_$family");
	is(missing_by_index("reload_$family", $op), '0',
		"$family: 2: and after one more insert and VACUUM");
	is( $node->safe_psql(
			'postgres',
			"SELECT entry_level >= 0 AND unreachable = 0 FROM hnsw_verify('reload_${family}_idx', true)"),
		't',
		"$family: 2: the index has an entry point and every element is reachable");

	# ------------------------------------------------------------ 3.
	# VACUUM stands where its last pass would sleep (a cost-based pause);
	# an insert must not wait for it.
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE slow_$family (id int PRIMARY KEY, emb $type);
SELECT setseed(0.4);
INSERT INTO slow_$family SELECT i, } . $value->('rand_vec()') . qq{ FROM generate_series(1, $n3) i;
CREATE INDEX slow_${family}_idx ON slow_$family USING hnsw (emb $opclass);
DELETE FROM slow_$family WHERE id % 2 = 0;
});
	$holder = hold();
	$vac = start_vacuum('vacuum_free_batch', "slow_$family");
	wait_until_waiting("$family: 3: VACUUM between batches of its last pass");
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET lock_timeout = '5s'; INSERT INTO slow_$family VALUES (5000, "
		  . $value->(fill(0.2)) . ')');
	is($ret, 0, "$family: 3: an insert does not wait for a pausing VACUUM")
	  or diag($err);
	release($holder);
	end_vacuum($vac, "$family: 3");
	is(missing_by_index("slow_$family", $op), '0',
		"$family: 3: every row is found by its own vector after that VACUUM");
}

# ---------------------------------------------------------------- 4.
# A full duplicate tuple whose next link names itself, in each family's
# index (all damaged in one stop of the server).
for my $f (@families)
{
	my ($family, $type, $opclass, $value) = @$f{qw(family type opclass value)};
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE loop_$family (id int PRIMARY KEY, emb $type);
SELECT setseed(0.5);
INSERT INTO loop_$family SELECT i, } . $value->('rand_vec()') . qq{ FROM generate_series(1, 50) i;
INSERT INTO loop_$family SELECT 100 + i, } . $value->(fill(7)) . qq{ FROM generate_series(1, 73) i;
CREATE INDEX loop_${family}_idx ON loop_$family USING hnsw (emb $opclass);
});
	$f->{loop_file} = $node->data_dir . '/'
	  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('loop_${family}_idx')");
}
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop;
for my $f (@families)
{
	my $file = $f->{loop_file};
	open(my $fh, '+<:raw', $file) or die "open $file: $!";
	my $nblocks = (-s $file) / 8192;
	my $damaged = 0;
	for my $blk (1 .. $nblocks - 1)
	{
		my $page;
		sysseek($fh, $blk * 8192, 0);
		sysread($fh, $page, 8192) == 8192 or die "read block $blk";
		# HnswPageOpaqueData.flags at the special space: HNSW_PAGE_DUPLICATES
		next unless unpack('v', substr($page, 8192 - 8, 2)) & 1;
		my $lp = unpack('V', substr($page, 24, 4));    # item 1's line pointer
		my $off = $lp & 0x7fff;
		# HnswDuplicateTupleData: type, unused, ntids (uint16), next (6 bytes)
		die 'not a full duplicate tuple'
		  unless ord(substr($page, $off, 1)) == 3
		  && unpack('v', substr($page, $off + 2, 2)) == 64;
		substr($page, $off + 4, 6) = pack('vvv', $blk >> 16, $blk & 0xffff, 1);
		sysseek($fh, $blk * 8192, 0);
		syswrite($fh, $page) == 8192 or die "write block $blk";
		$damaged++;
		last;
	}
	close($fh);
	is($damaged, 1, "$f->{family}: 4: a duplicate tuple was made to name itself");
}
$node->start;
for my $f (@families)
{
	my $family = $f->{family};
	my ($ret, $out, $err) = $node->psql(
		'postgres',
		"SET statement_timeout = '60s'; INSERT INTO loop_$family VALUES (500, "
		  . $f->{value}->(fill(7)) . ')',
		timeout => 120);
	isnt($ret, 0, "$family: 4: the insert into a looping chain fails");
	like(
		$err,
		qr/index "loop_${family}_idx" has a damaged duplicate chain/,
		"$family: 4: ... reporting the damaged chain, not a timeout");
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "$family: 4: the server is up");
}

# ---------------------------------------------------------------- 5.
# Not a race: a VACUUM with nothing to remove (cleanup only) counts the
# heap TIDs of duplicate chains in the index's reltuples (it counted only
# the elements' own: 109 of 600).  12 distinct vectors, 50 rows each: the
# first 4 coordinates are the bits of i % 12 (as 0.8 or -0.8), so that
# each family's type keeps them apart.
for my $f (@families)
{
	my ($family, $type, $opclass, $value) = @$f{qw(family type opclass value)};
	my $v = qq{(SELECT array_agg(CASE WHEN d <= 4 AND ((i % 12) >> (d - 1)) & 1 = 1
                               THEN 0.8 ELSE -0.8 END ORDER BY d)
     FROM generate_series(1, $DIM) d)::vector};
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE dups_$family (id int, emb $type) WITH (autovacuum_enabled = off);
INSERT INTO dups_$family SELECT i, } . $value->($v) . qq{ FROM generate_series(1, 600) i;
CREATE INDEX dups_${family}_idx ON dups_$family USING hnsw (emb $opclass);
VACUUM dups_$family;
});
	is($node->safe_psql('postgres', "SELECT count(DISTINCT emb) FROM dups_$family"),
		'12', "$family: 5: the table holds 12 distinct vectors");
	is( $node->safe_psql(
			'postgres',
			"SELECT reltuples FROM pg_class WHERE relname = 'dups_${family}_idx'"),
		'600',
		"$family: 5: a cleanup-only VACUUM counts duplicate chains in reltuples");
}

#------------------------------------------------------------------------
# 6. An element that only deleted elements led to, while VACUUM runs.
# Pass 4 frees the deleted elements, and inserts reuse their slots at once:
# the links through them go, and what only they reached was lost to every
# search until the cleanup linked it, which comes after the heap is
# vacuumed (or never, if the VACUUM stops before).  With m 4, 3,000
# uniform rows of 8 dimensions, every second row deleted, and 1,500 rows
# inserted while VACUUM waits before its cleanup, row 99 was missed by a
# search for its own vector even at ef_search 1000, at the same levels
# every run (hnsw.test_seed); found after the cleanup.  VACUUM now links
# what the live elements do not reach before it frees (hnswvacuum.c).
#------------------------------------------------------------------------
my $rows8 = sub {
	my ($from, $n) = @_;
	return qq{SELECT $from + i AS id,
  ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, $DIM) WHERE i > 0)::vector($DIM) AS v
FROM generate_series(1, $n) i};
};
$node->safe_psql(
	'postgres', qq{
SELECT setseed(0.3);
CREATE TABLE reach AS } . $rows8->(0, 3000) . qq{;
SET hnsw.test_seed = 7;
CREATE INDEX reach_idx ON reach USING hnsw (v vector_l2_ops)
  WITH (m = 4, ef_construction = 16);
DELETE FROM reach WHERE id % 2 = 0;
});
my $missed_sql = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
SET hnsw.ef_search = 1000;
SELECT count(*) || ':' || coalesce(string_agg(a.id::text, ' '), '') FROM reach a
WHERE a.id <> ALL (ARRAY(SELECT b.id FROM reach b ORDER BY b.v <-> a.v LIMIT 1))};
{
	my $h = hold();
	my $v = start_vacuum('vacuum_before_cleanup', 'reach');
	wait_until_waiting('6: VACUUM, before its cleanup,');
	$node->safe_psql('postgres',
		'SELECT setseed(0.15); INSERT INTO reach ' . $rows8->(3000, 1500));
	is($node->safe_psql('postgres', $missed_sql), '0:',
		'6: while VACUUM waits before its cleanup, with its freed slots reused, every row is found by its own vector at ef_search 1000 (count: ids)');
	release($h);
	end_vacuum($v, '6');
}
is($node->safe_psql('postgres', $missed_sql), '0:',
	'6: and after the VACUUM (count: ids)');

$node->stop;
done_testing();
