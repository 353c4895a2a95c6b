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
#      reltuples.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $WAIT_KEY = 1213090647;    # HNSW_WAIT_LOCK_KEY

my $node = PostgreSQL::Test::Cluster->new('vacuum_races');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION tinyhnsw');

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
	my ($s) = @_;
	$s->{h}->pump until ${ $s->{out} } =~ /vacuumed/;
	my $err = finish($s);
	is($err, '', 'VACUUM ends without an error');
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

# ---------------------------------------------------------------- 1.
# An element whose own heap TIDs went in an earlier VACUUM while its chain
# stayed live; its chain's rows are deleted; a row with the same vector is
# inserted while the next VACUUM stands after pass 1.
$node->safe_psql(
	'postgres', q{
CREATE TABLE dup (id int PRIMARY KEY, emb vector(3));
SELECT setseed(0.1);
INSERT INTO dup SELECT i, ARRAY[random(), random(), random()]::vector FROM generate_series(1, 300) i;
INSERT INTO dup SELECT 1000 + i, '[5,5,5]' FROM generate_series(1, 20) i;
CREATE INDEX dup_idx ON dup USING hnsw (emb vector_l2_ops);
DELETE FROM dup WHERE id BETWEEN 1001 AND 1009;
VACUUM dup;
DELETE FROM dup WHERE id BETWEEN 1010 AND 1020;
});
my $holder = hold();
my $vac = start_vacuum('vacuum_after_remove', 'dup');
wait_until_waiting('VACUUM after pass 1');
$node->safe_psql('postgres', "INSERT INTO dup VALUES (2000, '[5,5,5]')");
release($holder);
end_vacuum($vac);
my $found = $node->safe_psql(
	'postgres', q{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM dup ORDER BY emb <-> '[5,5,5]' LIMIT 1) s});
is($found, '2000',
	'1: the row inserted during VACUUM into an emptied element is found');
$node->safe_psql('postgres', 'VACUUM dup');
is(missing_by_index('dup', '<->'), '0',
	'1: after another VACUUM, every row is found by its own vector');
is($node->psql('postgres', "SELECT 1 FROM hnsw_verify('dup_idx', true)"),
	0, '1: hnsw_verify(dup_idx, true) finds every row in the index');

# ---------------------------------------------------------------- 2.
# Every row deleted; 100 rows inserted while VACUUM stands after pass 1,
# which has flagged every element.
$node->safe_psql(
	'postgres', q{
CREATE TABLE reload (id int PRIMARY KEY, emb vector(3));
SELECT setseed(0.2);
INSERT INTO reload SELECT i, ARRAY[random(), random(), random()]::vector FROM generate_series(1, 500) i;
CREATE INDEX reload_idx ON reload USING hnsw (emb vector_l2_ops);
DELETE FROM reload;
});
$holder = hold();
$vac = start_vacuum('vacuum_after_remove', 'reload');
wait_until_waiting('VACUUM after pass 1');
$node->safe_psql(
	'postgres', q{
SELECT setseed(0.3);
DO $$ BEGIN FOR i IN 1..100 LOOP
	INSERT INTO reload VALUES (1000 + i, ARRAY[random(), random(), random()]::vector);
END LOOP; END $$;
});
release($holder);
end_vacuum($vac);
is(missing_by_index('reload', '<->'), '0',
	'2: every row inserted during VACUUM is found by its own vector');
$node->safe_psql('postgres',
	"INSERT INTO reload VALUES (5000, '[0.5,0.5,0.5]'); VACUUM reload");
is(missing_by_index('reload', '<->'), '0',
	'2: and after one more insert and VACUUM');
is( $node->safe_psql(
		'postgres',
		"SELECT entry_level >= 0 AND unreachable = 0 FROM hnsw_verify('reload_idx', true)"),
	't',
	'2: the index has an entry point and every element is reachable');

# ---------------------------------------------------------------- 3.
# VACUUM stands where its last pass would sleep (a cost-based pause); an
# insert must not wait for it.
$node->safe_psql(
	'postgres', q{
CREATE TABLE slow (id int PRIMARY KEY, emb vector(3));
SELECT setseed(0.4);
INSERT INTO slow SELECT i, ARRAY[random(), random(), random()]::vector FROM generate_series(1, 2000) i;
CREATE INDEX slow_idx ON slow USING hnsw (emb vector_l2_ops);
DELETE FROM slow WHERE id % 2 = 0;
});
$holder = hold();
$vac = start_vacuum('vacuum_free_batch', 'slow');
wait_until_waiting('VACUUM between batches of its last pass');
my ($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '5s'; INSERT INTO slow VALUES (5000, '[0.1,0.2,0.3]')");
is($ret, 0, '3: an insert does not wait for a pausing VACUUM')
  or diag($err);
release($holder);
end_vacuum($vac);
is(missing_by_index('slow', '<->'), '0',
	'3: every row is found by its own vector after that VACUUM');

# ---------------------------------------------------------------- 4.
# A full duplicate tuple whose next link names itself.
$node->safe_psql(
	'postgres', q{
CREATE TABLE loop (id int PRIMARY KEY, emb vector(3));
INSERT INTO loop SELECT i, ARRAY[i, i, i]::vector FROM generate_series(1, 50) i;
INSERT INTO loop SELECT 100 + i, '[7,7,7]' FROM generate_series(1, 73) i;
CREATE INDEX loop_idx ON loop USING hnsw (emb vector_l2_ops);
CHECKPOINT;
});
my $file = $node->data_dir . '/'
  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('loop_idx')");
$node->stop;
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
is($damaged, 1, '4: a duplicate tuple was made to name itself');
$node->start;
($ret, $out, $err) = $node->psql(
	'postgres',
	"SET statement_timeout = '60s'; INSERT INTO loop VALUES (500, '[7,7,7]')",
	timeout => 120);
isnt($ret, 0, '4: the insert into a looping chain fails');
like(
	$err,
	qr/index "loop_idx" has a damaged duplicate chain/,
	'4: ... reporting the damaged chain, not a timeout');
is($node->safe_psql('postgres', 'SELECT 1'), '1', '4: the server is up');

# ---------------------------------------------------------------- 5.
# Not a race: a VACUUM with nothing to remove (cleanup only) counts the
# heap TIDs of duplicate chains in the index's reltuples (it counted only
# the elements' own: 109 of 600).
$node->safe_psql(
	'postgres', q{
CREATE TABLE dups (id int, emb vector(3)) WITH (autovacuum_enabled = off);
INSERT INTO dups SELECT i, ARRAY[i % 12, 1, 1]::vector FROM generate_series(1, 600) i;
CREATE INDEX dups_idx ON dups USING hnsw (emb vector_l2_ops);
VACUUM dups;
});
is($node->safe_psql('postgres', q{SELECT reltuples FROM pg_class WHERE relname = 'dups_idx'}),
	'600', '5: a cleanup-only VACUUM counts duplicate chains in reltuples');

$node->stop;
done_testing();
