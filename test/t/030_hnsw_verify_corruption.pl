# hnsw_verify against damaged indexes, and the scan and insert paths too.
#
# An index of 2,000 vectors (with some rows deleted, vacuumed and replaced,
# so that there are deleted, freed and reused elements, and rows sharing a
# vector, so that there are duplicate chains) is copied while the
# server is down; then, trial after trial, a copy with a few bytes
# overwritten (fixed seed) replaces it, the server starts, and:
#   - hnsw_verify(index, true) must report an error for damage that always
#     breaks an invariant (line pointers, page header fields, element headers,
#     neighbor and duplicate tuple TIDs, heap TIDs, duplicate tuples, the
#     metapage's identity); for damage
#     that may leave a valid index (a vector's floats, a neighbor slot that
#     still names an element, random bytes, hint fields) it may return
#     normally, and how often it notices is counted;
#   - index scans and inserts on the damaged index must either succeed or
#     fail with an ERROR: never crash the server, never run forever
#     (statement_timeout 10s; a timeout counts as a failure).
# The figures are printed at the end.  Pages are read from disk after each
# start, and the cluster runs without data checksums, so the damage reaches
# our code rather than being stopped by a checksum failure.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# More trials, another seed: HNSW_VERIFY_TRIALS=100 HNSW_VERIFY_SEED=7 test/run ...
my $TRIALS_PER_KIND = $ENV{HNSW_VERIFY_TRIALS} // 12;
my $SEED = $ENV{HNSW_VERIFY_SEED} // 5489;
my $BLCKSZ = 8192;
my $DIM = 16;

# The disk format (src/hnswpage.h), as byte offsets.
my $SPECIAL = $BLCKSZ - 8;    # HnswPageOpaqueData: flags, page_id
my %ELEM = (heaptids => 4, neighbortid => 58, duptid => 64, vec => 72);
my $META_SIZE = 100;          # HnswMetaPageData; m ends at byte 14

srand($SEED);
note("seed $SEED, $TRIALS_PER_KIND trials per kind of damage");

my $node = PostgreSQL::Test::Cluster->new('verify_corruption');
$node->init;
# a crash is counted and the trials go on (the framework turns this off)
$node->append_conf('postgresql.conf',
	"autovacuum = off\nrestart_after_crash = on\n");
$node->start;

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION tinyhnsw;
CREATE TABLE t (id int PRIMARY KEY, emb vector($DIM));
SELECT setseed(0.42);
INSERT INTO t SELECT i, (SELECT array_agg(random()) FROM generate_series(1, $DIM) WHERE i > 0)::vector
FROM generate_series(1, 2000) i;
CREATE INDEX t_idx ON t USING hnsw (emb);
DELETE FROM t WHERE id % 20 = 0;
VACUUM t;
INSERT INTO t SELECT 2000 + i, (SELECT array_agg(random()) FROM generate_series(1, $DIM) WHERE i > 0)::vector
FROM generate_series(1, 50) i;
INSERT INTO t SELECT 3000 + i, (SELECT emb FROM t WHERE id = 1 + i % 3) FROM generate_series(1, 300) i;
CHECKPOINT;
});

my $baseline = $node->safe_psql('postgres',
	q{SELECT pages || ' pages, ' || elements || ' elements, ' || heap_tids || ' heap TIDs, ' ||
			 deleted || ' deleted, entry level ' || entry_level || ', ' || unreachable || ' unreachable, ' ||
			 unreachable_upper || ' unreachable above layer 0'
	  FROM hnsw_verify('t_idx', true)});
note("the sound index: $baseline");
ok($baseline =~ /^\d+ pages, \d+ elements, 2250 heap TIDs/,
	'the sound index passes hnsw_verify with heapallindexed');

my $path = $node->data_dir . '/'
  . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t_idx')});
$node->stop;
my $pristine = slurp_file($path);
my $nblocks = length($pristine) / $BLCKSZ;
note("index file $path, $nblocks blocks");

# The items of a page: line pointer position, tuple offset, length, type.
sub page_items
{
	my ($blk) = @_;
	my $page = substr($pristine, $blk * $BLCKSZ, $BLCKSZ);
	my $lower = unpack('v', substr($page, 12, 2));
	my @items;
	for (my $p = 24; $p < $lower; $p += 4)
	{
		my $w = unpack('V', substr($page, $p, 4));
		my $off = $w & 0x7fff;
		push @items,
		  {
			lp => $p,
			off => $off,
			len => $w >> 17,
			type => ord(substr($page, $off, 1)),
			page => $page
		  };
	}
	return @items;
}

my (@elements, @neighbors, @duplicates);
for my $blk (1 .. $nblocks - 1)
{
	for my $it (page_items($blk))
	{
		$it->{blk} = $blk;
		push @elements, $it if $it->{type} == 1;
		push @neighbors, $it if $it->{type} == 2;
		push @duplicates, $it if $it->{type} == 3;
	}
}
note(scalar(@elements) . ' element tuples, '
	  . scalar(@neighbors) . ' neighbor tuples, '
	  . scalar(@duplicates) . ' duplicate tuples');
die 'no duplicate tuples to damage' unless @duplicates;

# The offsets above must still be hnswpage.h's: every element's neighbor TID
# names a neighbor tuple, and the page's special space has our page id.
{
	my %type_at = map { ("$_->{blk},$_->{lp}" => $_->{type}) } @elements, @neighbors;
	for my $e (@elements)
	{
		my ($hi, $lo, $posid) =
		  unpack('vvv', substr($e->{page}, $e->{off} + $ELEM{neighbortid}, 6));
		my $blk = ($hi << 16) | $lo;
		my $lp = 24 + 4 * ($posid - 1);
		die "the element layout changed (neighbor TID at byte $ELEM{neighbortid}"
		  . " of the element at block $e->{blk} is ($blk,$posid)): update %ELEM"
		  unless ($type_at{"$blk,$lp"} // 0) == 2;
	}
	die "the special space moved: update \$SPECIAL"
	  unless unpack('v', substr($elements[0]{page}, $SPECIAL + 2, 2)) == 0xFF91;
}

sub pick { my @a = @_; return $a[ int(rand(@a)) ]; }

sub random_data_block { return 1 + int(rand($nblocks - 1)); }

# A byte value other than the one at a file position.
sub other_byte
{
	my ($pos) = @_;
	my $old = ord(substr($pristine, $pos, 1));
	my $new;
	do { $new = int(rand(256)); } while ($new == $old);
	return chr($new);
}

# Damage of each kind: [ [file position, bytes]... ], what, must be seen?
my %kinds = (
	# anything, anywhere in a data page
	random => sub {
		my $pos = random_data_block() * $BLCKSZ + int(rand($BLCKSZ - 4));
		my $n = 1 + int(rand(4));
		return ([ map { [ $pos + $_, other_byte($pos + $_) ] } 0 .. $n - 1 ],
			"$n bytes at block " . int($pos / $BLCKSZ) . ' byte ' . $pos % $BLCKSZ, 0);
	},
	# a used line pointer
	linepointer => sub {
		my $it = pick(@elements, @neighbors);
		my $pos = $it->{blk} * $BLCKSZ + $it->{lp} + int(rand(4));
		return ([ [ $pos, other_byte($pos) ] ],
			"line pointer at block $it->{blk} byte " . ($pos % $BLCKSZ), 1);
	},
	# pd_lower, pd_upper, pd_special, page size/version, special space
	pageheader => sub {
		my $blk = random_data_block();
		my $off = pick(12 .. 19, $SPECIAL .. $SPECIAL + 3);
		my $pos = $blk * $BLCKSZ + $off;
		return ([ [ $pos, other_byte($pos) ] ], "page header of block $blk byte $off", 1);
	},
	# type, level, flags, ntids of an element
	elemheader => sub {
		my $it = pick(@elements);
		my $f = int(rand(4));
		my $pos = $it->{blk} * $BLCKSZ + $it->{off} + $f;
		my $new = other_byte($pos);
		my $old = ord(substr($pristine, $pos, 1));
		# DELETED and FREE are both legal on an element without heap TIDs
		my $must = !($f == 2 && ($old & 3) && ord($new) >= 1 && ord($new) <= 3);
		return ([ [ $pos, $new ] ],
			"element header byte $f at block $it->{blk} offset $it->{off}", $must);
	},
	# the heap TID slots of an element (heapallindexed sees a changed one)
	heaptid => sub {
		my $it = pick(@elements);
		my $f = $ELEM{heaptids} + int(rand($ELEM{neighbortid} - $ELEM{heaptids}));
		my $pos = $it->{blk} * $BLCKSZ + $it->{off} + $f;
		return ([ [ $pos, other_byte($pos) ] ],
			"heap TID byte $f of element at block $it->{blk}", 1);
	},
	# an element's neighbor tuple TID or first duplicate tuple TID
	neighbortid => sub {
		my $it = pick(@elements);
		my $f = $ELEM{neighbortid} + int(rand($ELEM{vec} - 2 - $ELEM{neighbortid}));
		my $pos = $it->{blk} * $BLCKSZ + $it->{off} + $f;
		return ([ [ $pos, other_byte($pos) ] ],
			"neighbor/duplicate TID byte $f of element at block $it->{blk}", 1);
	},
	# a duplicate tuple: header, next, heap TIDs
	duptuple => sub {
		my $it = pick(@duplicates);
		my $f = int(rand($it->{len}));
		my $pos = $it->{blk} * $BLCKSZ + $it->{off} + $f;
		return ([ [ $pos, other_byte($pos) ] ],
			"duplicate tuple byte $f at block $it->{blk} offset $it->{off}", 1);
	},
	# nslots or a neighbor slot: random bytes, or a whole slot rewritten to
	# a plausible TID (a block of the index, a small offset)
	slot => sub {
		my $it = pick(@neighbors);
		my $nslots = unpack('v', substr($it->{page}, $it->{off} + 2, 2));
		my $base = $it->{blk} * $BLCKSZ + $it->{off};
		if (rand() < 0.5)
		{
			my $f = 2 + int(rand(2 + 6 * $nslots));
			return ([ [ $base + $f, other_byte($base + $f) ] ],
				"neighbor tuple byte $f at block $it->{blk}", 0);
		}
		my $s = int(rand($nslots));
		my $tid = pack('vvv', 0, random_data_block(), 1 + int(rand(40)));
		return ([ map { [ $base + 4 + 6 * $s + $_, substr($tid, $_, 1) ] } 0 .. 5 ],
			"neighbor slot $s at block $it->{blk} set to a plausible TID", 0);
	},
	# a vector's floats: invisible unless they stop being finite numbers
	vector => sub {
		my $it = pick(@elements);
		my $f = $ELEM{vec} + int(rand(4 * $DIM));
		my $pos = $it->{blk} * $BLCKSZ + $it->{off} + $f;
		return ([ [ $pos, other_byte($pos) ] ],
			"vector byte $f of element at block $it->{blk}", 0);
	},
	# the metapage: magic, version, dimensions, m must be seen; the entry
	# point, ef_construction, insert page, free hints and duplicate page may
	# still be valid
	metapage => sub {
		my $f = int(rand($META_SIZE));
		my $pos = 24 + $f;
		return ([ [ $pos, other_byte($pos) ] ], "metapage byte $f", $f < 14);
	},
);

my @queries = map {
	my $k = $_;
	'[' . join(',', map { sprintf('%.3f', (($k * 7 + $_ * 13) % 100) / 100) } 1 .. $DIM) . ']'
} 1 .. 3;

# Run SQL under statement_timeout; returns (outcome, first line of stderr)
# with outcome ok, error, timeout (statement_timeout fired), hang (not even
# that: psql given up on) or crash.
sub run_sql
{
	my ($sql) = @_;
	my ($stdout, $stderr, $timed_out);
	my $ret = $node->psql(
		'postgres', "SET statement_timeout = '10s'; $sql",
		stdout => \$stdout,
		stderr => \$stderr,
		timeout => 90,
		timed_out => \$timed_out);
	my ($line) = split /\n/, ($stderr // '');
	$line //= '';
	return ('hang', $line) if $timed_out;
	return ('timeout', $line) if $stderr =~ /statement timeout/;
	return ('crash', $line)
	  if $stderr =~ /server closed the connection|connection to server was lost|terminating connection because of crash|could not connect|the database system is/;
	return ('ok', $line) if $ret == 0;
	return ('error', $line);
}

my %fig;
my %messages;
my @failures;

# One trial: write the damage, start, verify, scan, insert, check the
# server, stop.  Returns the outcomes.
sub trial
{
	my ($kind, $damage, $what) = @_;
	my $copy = $pristine;
	substr($copy, $_->[0], 1) = $_->[1] for @$damage;
	open(my $fh, '>', $path) or die "cannot write $path: $!";
	binmode $fh;
	print $fh $copy;
	close $fh;

	my $logstart = -s $node->logfile;
	$node->start;
	my %out;
	my $msg;
	($out{verify}, $msg) = run_sql(q{SELECT * FROM hnsw_verify('t_idx', true)});
	if ($out{verify} eq 'error')
	{
		(my $shape = $msg) =~ s/\d+/N/g;
		$messages{$shape}++;
	}
	$out{scans} = 'ok';
	for my $q (@queries)
	{
		# a wide search meets more of the damage
		my ($o) = run_sql(
			"SET enable_seqscan = off; SET hnsw.ef_search = 400; SELECT id FROM t ORDER BY emb <-> '$q' LIMIT 10");
		$out{scans} = $o unless $o eq 'ok' || $out{scans} ne 'ok';
	}
	# rolled back: the heap stays as the pristine index knows it
	($out{inserts}) = run_sql(
		qq{BEGIN; INSERT INTO t SELECT 100000 + i, (SELECT array_agg(random()) FROM generate_series(1, $DIM) WHERE i > 0)::vector FROM generate_series(1, 20) i; ROLLBACK;}
	);

	my $hang = grep { $_ eq 'hang' } values %out;
	if ($hang)
	{
		$node->stop('immediate');
	}
	else
	{
		# a crashed backend takes the others with it; wait for the restart
		$node->poll_query_until('postgres', 'SELECT true')
		  or die 'the server did not come back';
		$node->safe_psql('postgres', 'SELECT 1');
		$node->stop('fast');
	}
	my $log = slurp_file($node->logfile, $logstart);
	$out{signal} = $log =~ /terminated by signal/ ? 1 : 0;
	return \%out;
}

for my $kind (sort keys %kinds)
{
	for my $i (1 .. $TRIALS_PER_KIND)
	{
		my ($damage, $what, $must) = $kinds{$kind}->();
		my $out = trial($kind, $damage, $what);
		my $f = ($fig{$kind} //= {});
		$f->{trials}++;
		$f->{must}++ if $must;
		$f->{ "verify_$out->{verify}" }++;
		$f->{ "scans_$out->{scans}" }++;
		$f->{ "inserts_$out->{inserts}" }++;
		$f->{signal}++ if $out->{signal};
		my $bytes = join(' ',
			map { sprintf('byte %d := 0x%02x', $_->[0], ord($_->[1])) } @$damage);
		push @failures, "$kind: $what ($bytes): hnsw_verify returned normally"
		  if $must && $out->{verify} ne 'error';
		for my $op (qw(verify scans inserts))
		{
			push @failures, "$kind: $what ($bytes): $op: $out->{$op}"
			  if $out->{$op} =~ /^(timeout|hang|crash)$/;
		}
		push @failures, "$kind: $what ($bytes): a backend was terminated by a signal"
		  if $out->{signal};
	}
}

# The figures.
my @cols = qw(trials must verify_error verify_ok scans_ok scans_error
  inserts_ok inserts_error signal);
diag(sprintf('%-12s' . ' %8s' x @cols, 'damage', @cols));
my %total;
for my $kind (sort keys %fig)
{
	diag(sprintf('%-12s' . ' %8d' x @cols, $kind, map { $fig{$kind}{$_} // 0 } @cols));
	$total{$_} += $fig{$kind}{$_} // 0 for @cols;
}
diag(sprintf('%-12s' . ' %8d' x @cols, 'all', map { $total{$_} } @cols));
diag("hnsw_verify's messages (digits as N):");
diag(sprintf('%5d  %s', $messages{$_}, $_))
  for sort { $messages{$b} <=> $messages{$a} } keys %messages;

is(scalar(@failures), 0,
	'damage that breaks an invariant is reported, and nothing crashes or hangs')
  or diag(join("\n", @failures));

# A neighbor slot naming block 0xFFFFFFFF (InvalidBlockNumber, that is
# P_NEW) with a valid offset.  hnsw_verify reports it; the scan and insert
# paths once crashed the backend with it, and must fail with an ERROR.
{
	my $tid = pack('vvv', 0xFFFF, 0xFFFF, 1);
	my @damage;
	for my $nt (@neighbors)
	{
		my $p = $nt->{blk} * $BLCKSZ + $nt->{off} + 4;
		push @damage, map { [ $p + $_, substr($tid, $_, 1) ] } 0 .. 5;
	}
	my $out = trial('invalidblock', \@damage,
		'slot 0 of every neighbor tuple := (4294967295,1)');
	is($out->{verify}, 'error',
		'hnsw_verify reports a neighbor slot naming block 4294967295');
	# read_buffer() (hnswpage.c) checks a link's block against the
	# index's size first: blkno + 1 used to overflow, and P_NEW extend it
	is($out->{scans}, 'error',
		'a scan meeting block 4294967295 fails with an ERROR');
	is($out->{inserts}, 'error',
		'an insert meeting block 4294967295 fails with an ERROR');
	is($out->{signal}, 0, 'no backend is terminated by a signal');
}

# A graph cut above layer 0 only: the entry point's lists on layers 1 and
# up emptied.  Nothing is damaged (an empty list is valid), layer 0 is as
# it was, and on each layer l >= 1 no walk from the entry point reaches any
# element but itself: hnsw_verify must count every other live element of
# level >= l, that is the sum of the live elements' levels less the entry
# level, in unreachable_upper.
{
	my ($eblk, $eoff, $elevel) = unpack('V v s<', substr($pristine, 24 + 16, 8));
	my $m = unpack('v', substr($pristine, 24 + 12, 2));
	my ($entry) = grep { $_->{blk} == $eblk && $_->{lp} == 24 + 4 * ($eoff - 1) } @elements;
	die "no element at the entry point ($eblk,$eoff)" unless $entry;
	my ($hi, $lo, $posid) =
	  unpack('vvv', substr($entry->{page}, $entry->{off} + $ELEM{neighbortid}, 6));
	my $nblk = ($hi << 16) | $lo;
	my ($nt) = grep { $_->{blk} == $nblk && $_->{lp} == 24 + 4 * ($posid - 1) } @neighbors;
	die "no neighbor tuple at ($nblk,$posid)" unless $nt;
	my $levels = 0;
	for my $e (@elements)
	{
		my ($level, $flags) = unpack('CC', substr($e->{page}, $e->{off} + 1, 2));
		$levels += $level if ($flags & 3) == 0;
	}
	my $invalid = pack('vvv', 0xFFFF, 0xFFFF, 0);
	my @damage;
	for my $s (2 * $m .. ($elevel + 2) * $m - 1)
	{
		my $p = $nt->{blk} * $BLCKSZ + $nt->{off} + 4 + 6 * $s;
		push @damage, map { [ $p + $_, substr($invalid, $_, 1) ] } 0 .. 5;
	}
	my $copy = $pristine;
	substr($copy, $_->[0], 1) = $_->[1] for @damage;
	open(my $fh, '>', $path) or die "cannot write $path: $!";
	binmode $fh;
	print $fh $copy;
	close $fh;
	$node->start;
	my $got = $node->safe_psql('postgres',
		q{SELECT unreachable || ' ' || unreachable_upper FROM hnsw_verify('t_idx', true)});
	$node->stop;
	cmp_ok($elevel, '>=', 1, 'the entry point has layers above 0');
	my ($unreach0) = $baseline =~ /, (\d+) unreachable,/;
	is($got, "$unreach0 " . ($levels - $elevel),
		'upper lists of the entry point emptied: every other element above layer 0 is counted unreachable there, layer 0 as before');
}

# Back to the sound index: still sound, nothing left behind.
open(my $fh, '>', $path) or die;
binmode $fh;
print $fh $pristine;
close $fh;
$node->start;
is( $node->safe_psql('postgres',
		q{SELECT heap_tids FROM hnsw_verify('t_idx', true)}),
	'2250',
	'the restored index passes hnsw_verify again');
$node->stop;

done_testing();
