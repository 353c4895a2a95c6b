# Fuzzed input for the input functions of vector, halfvec and sparsevec in
# a real server: text and binary input must accept an input or reject it
# with a clean ERROR, never crash the server.  (halfvec and sparsevec: see
# their section below.)
#
# Inputs (fixed seed) are valid vectors and the edge cases (16000 and 16001
# dimensions, NaN, infinities, overflow, denormals, hex floats, white space,
# unicode, long elements, bad binary headers), then mutated: bit flips,
# deletions, insertions, truncation, duplication, junk, lost or extra
# brackets, empty elements, header fields replaced, bytes appended, random
# bytes.
#   - text: each literal is read by `text::vector` (typmod -1) or by a typed
#     literal `'...'::vector(n)` (typmod n) inside a PL/pgSQL block that
#     catches the error;
#   - binary: each input is one field of a COPY ... (FORMAT binary) file,
#     copied into a vector, vector(1) or vector(3) column (vector_recv gets
#     the column's typmod), again one block per input.
# Checks:
#   - every rejection is an ERROR of SQLSTATE class 22 (data exception) or
#     54 (program limit exceeded);
#   - accepted and rejected agree with a reference reading written here in
#     Perl (text: brackets, then comma-separated numbers that strtof reads
#     whole, finite in float4; binary: int16 dim in 1..16000, int16 0,
#     exactly dim finite float4; and the typmod), and an accepted input has
#     the reference's dimension count;
#   - accepted vectors round-trip: through text, and vector_send gives back
#     exactly the bytes vector_recv read;
#   - the server is still up, and its log has no crash ("terminated by
#     signal", PANIC, reinitializing).
# The figures (inputs, accepted, rejected, SQLSTATEs, time) are printed with
# note.  test/fuzz/run is the long run (libFuzzer, no server).
#
# More inputs or another seed:
#   VECTOR_FUZZ_INPUTS=100000 VECTOR_FUZZ_SEED=7 test/run test/t/040_vector_fuzz.pl
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $INPUTS = $ENV{VECTOR_FUZZ_INPUTS} // 12000;
my $SEED = $ENV{VECTOR_FUZZ_SEED} // 40;
my $MAX_DIM = 16000;

# Two thirds text, one third binary.
my $N_TEXT = int($INPUTS * 2 / 3);
my $N_BIN = $INPUTS - $N_TEXT;

srand($SEED);
note("seed $SEED: $N_TEXT text inputs, $N_BIN binary inputs");

sub rint { return int(rand($_[0])); }
sub pick { return $_[ rint(scalar @_) ]; }

# A dimension count: mostly small, sometimes large, now and then at the limit.
sub gen_dim
{
	my $k = rand();
	return 1 + rint(8) if $k < 0.70;
	return 9 + rint(300) if $k < 0.92;
	return 309 + rint(1700) if $k < 0.995;
	return pick($MAX_DIM - 1, $MAX_DIM, $MAX_DIM, $MAX_DIM + 1);
}

# ------------------------------------------------------------------ text

my @SPECIAL_NUMBERS = (
	'0', '1', '-1', '0.5', '-0', '+3', '.5', '5.', '007', '1E+2',
	'1e38', '3.4028235e38', '-3.4028235e38', '1.17549435e-38', '1.4e-45',
	'1e-50', '1e-99999', '0x1p-3', '0x1.fffffep+127', '0X.8P1', '1e39',
	'-1e39', '3.4028236e38', '1e99999', '0x1p128', 'nan', 'NaN', 'inf',
	'-Infinity', 'infinity', '1' x 60, '0.' . ('0' x 60) . '1');

sub gen_plain_number
{
	my $x = (rand() - 0.5) * 10**(rint(20) - 10);
	return sprintf(pick('%.9g', '%g', '%e', '%.3f', '%.17g', '%d', '%.2E'), $x);
}

# Big vectors draw from a pool: formatting 16000 numbers each time is slow.
my @NUMBER_POOL = map { gen_plain_number() } 1 .. 4096;

sub gen_number
{
	my ($plain) = @_;
	return $NUMBER_POOL[ rint(scalar @NUMBER_POOL) ] if $plain;
	return pick(@SPECIAL_NUMBERS) if rand() < 0.15;
	return gen_plain_number();
}

sub gen_ws
{
	return '' if rand() < 0.75;
	return join('', map { pick(' ', ' ', "\t", "\n", "\r", "\x0b", "\x0c") } 1 .. 1 + rint(3));
}

sub gen_text_valid
{
	my $dim = gen_dim();
	# big vectors get plain numbers, or nearly every one would be rejected
	my $plain = $dim > 300 && rand() < 0.9;
	my @elems = map { gen_number($plain) } 1 .. $dim;
	my $text = gen_ws() . '[' . gen_ws();
	if (rand() < 0.8)
	{
		$text .= join(',', @elems);
	}
	else
	{
		$text .= join('', map { gen_ws() . $_ . gen_ws() . ',' } @elems);
		chop $text;
	}
	return $text . gen_ws() . ']' . gen_ws();
}

my @INSERTS = (
	'[', ']', ',', ' ', "\t", "\n", "\r", "\x0b", "\x0c", '-', '+', '.', 'e',
	'E', 'x', 'p', '0', '1', '9', 'n', 'a', 'i', 'f', "\x{e9}", "\x{ff11}",
	"\x{a0}", "\x{feff}", "\x{2028}", "\x{1F600}", '"', '\\', "'", '{', '}',
	'(', ')', ';', '%s', '%n');

sub mutate_text
{
	my ($s) = @_;
	my $len = length($s);
	my $pos = $len ? rint($len) : 0;
	my $k = rint(12);
	if ($k == 0 && $len)
	{
		# flip one of the low 7 bits of a character (never to NUL)
		my $c = ord(substr($s, $pos, 1)) ^ (1 << rint(7));
		$c = 1 if $c == 0;
		substr($s, $pos, 1) = chr($c);
	}
	elsif ($k == 1 && $len) { substr($s, $pos, 1) = ''; }
	elsif ($k == 2) { substr($s, $pos, 0) = pick(@INSERTS); }
	elsif ($k == 3) { $s = substr($s, 0, $pos); }
	elsif ($k == 4 && $len)
	{
		my $piece = substr($s, $pos, 1 + rint(20));
		substr($s, rint($len + 1), 0) = $piece x (1 + rint(3));
	}
	elsif ($k == 5)
	{
		# one element becomes a special number or nothing
		my @parts = split(/,/, $s, -1);
		$parts[ rint(scalar @parts) ] = pick(@SPECIAL_NUMBERS, '', ' ')
		  if @parts;
		$s = join(',', @parts);
	}
	elsif ($k == 6) { $s .= pick('x', ']', ',', ' 1', '[]', "\x{e9}", ';'); }
	elsif ($k == 7) { $s =~ s/[\[\]]//; }
	elsif ($k == 8) { $s = '[' . $s . ']'; }
	elsif ($k == 9)
	{
		substr($s, $pos, 0) =
		  pick('9' x 5000, ' ' x 3000, ('0' x 2000) . '1', ',' x 50, '-' x 10);
	}
	elsif ($k == 10) { $s =~ s/,/,,/; }
	else { $s = pick('', ' ', '[', ']', '[]', '[ ]', '[,]', ','); }
	return $s;
}

sub gen_text
{
	my $s = gen_text_valid();
	my $n = rand() < 0.3 ? 0 : 1 + rint(3);
	$s = mutate_text($s) for 1 .. $n;
	return $s;
}

# The reference reading: the dimension count, or undef if invalid.
my $WS = qr/[ \t\n\r\x0b\x0c]/;

# Does the double $v round to a finite float4?  Halfway between FLT_MAX and
# 2^128 and above rounds to infinity.  (Perl's pack 'f' is no help: it
# turns anything above FLT_MAX into infinity.)
my $FLOAT4_LIMIT = 2**128 - 2**103;

sub float4_finite
{
	my ($v) = @_;
	return $v == $v && abs($v) < $FLOAT4_LIMIT;
}

# Is $t one whole number for strtof, finite and in range for float4?
sub ref_number
{
	my ($t) = @_;
	my $v;
	if ($t =~ /\A[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\z/a)
	{
		no warnings 'numeric';
		$v = 0 + $t;
	}
	elsif ($t =~ /\A([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?\z/a)
	{
		my ($sign, $int, $frac, $exp) = ($1, $2, $3 // '', $4 // 0);
		return 0 if $int eq '' && $frac eq '';
		my $m = 0;
		$m = $m * 16 + hex($_) for split //, $int . $frac;
		$v = $m * 2.0**($exp - 4 * length($frac));
		$v = -$v if $sign eq '-';
	}
	else
	{
		# not a number, or inf / nan, which are rejected too
		return 0;
	}
	return float4_finite($v);
}

sub ref_text
{
	my ($s, $typmod) = @_;
	return undef unless $s =~ /\A$WS*\[(.*)\]$WS*\z/s;
	my @parts = split(/,/, $1, -1);
	return undef if @parts < 1 || @parts > $MAX_DIM;
	for my $p (@parts)
	{
		$p =~ s/\A$WS+//;
		$p =~ s/$WS+\z//;
		return undef unless ref_number($p);
	}
	return undef if defined $typmod && $typmod != @parts;
	return scalar @parts;
}

# ------------------------------------------------------------------ binary

my @SPECIAL_BITS = (
	0x7fc00000, 0x7f800000, 0xff800000, 0x80000000, 0x00000001, 0x7f7fffff,
	0xff7fffff, 0x7f800001, 0xffffffff, 0x00800000, 0x00000000);

sub gen_element_bits
{
	my $k = rand();
	return pack('f>', (rand() - 0.5) * 10**(rint(20) - 10)) if $k < 0.85;
	return pack('N', rint(2**32)) if $k < 0.95;
	return pack('N', pick(@SPECIAL_BITS));
}

my @BITS_POOL = map { gen_element_bits() } 1 .. 4096;

sub gen_binary
{
	my $dim = gen_dim();
	my $b = pack('n n', $dim, 0)
	  . join('',
		map { $dim > 300 ? $BITS_POOL[ rint(scalar @BITS_POOL) ] : gen_element_bits() }
		  1 .. $dim);
	my $n = rand() < 0.3 ? 0 : 1 + rint(3);
	for (1 .. $n)
	{
		my $len = length($b);
		my $k = rint(8);
		if ($k == 0 && $len >= 2)
		{
			substr($b, 0, 2) = pack('n',
				pick(0, 0xffff, 1, $dim - 1, $dim + 1, $MAX_DIM, $MAX_DIM + 1,
					0x7fff, 0x8000, rint(0x10000)) & 0xffff);
		}
		elsif ($k == 1 && $len >= 4)
		{
			substr($b, 2, 2) = pack('n', pick(1, 0xffff, 0x8000, rint(0x10000)));
		}
		elsif ($k == 2) { $b = substr($b, 0, rint($len + 1)); }
		elsif ($k == 3) { $b .= join('', map { chr(rint(256)) } 1 .. 1 + rint(8)); }
		elsif ($k == 4 && $len)
		{
			my $pos = rint($len);
			substr($b, $pos, 1) = chr(ord(substr($b, $pos, 1)) ^ (1 << rint(8)));
		}
		elsif ($k == 5 && $len >= 8)
		{
			substr($b, 4 + 4 * rint(int(($len - 4) / 4)), 4) = pack('N', pick(@SPECIAL_BITS));
		}
		elsif ($k == 6) { $b = join('', map { chr(rint(256)) } 1 .. rint(65)); }
		elsif ($len >= 8)
		{
			# valid again: the header says exactly what the length holds
			my $d = int(($len - 4) / 4);
			$b = pack('n n', $d, 0) . substr($b, 4, 4 * $d) if $d <= $MAX_DIM;
		}
	}
	return $b;
}

sub ref_binary
{
	my ($b, $typmod) = @_;
	return undef if length($b) < 4;
	my ($dim, $unused) = unpack('n n', $b);
	$dim -= 0x10000 if $dim >= 0x8000;
	return undef if $dim < 1 || $dim > $MAX_DIM || $unused != 0;
	return undef if length($b) != 4 + 4 * $dim;
	for my $bits (unpack('N*', substr($b, 4)))
	{
		return undef if ($bits & 0x7f800000) == 0x7f800000;
	}
	return undef if defined $typmod && $typmod != $dim;
	return $dim;
}

# ------------------------------------------------------------------ inputs

my $dir = PostgreSQL::Test::Utils::tempdir();
my $t0 = time();

my (@text, @text_typmod, @bin, @bin_typmod);
open(my $tf, '>', "$dir/text.tsv") or die "text.tsv: $!";
for my $i (0 .. $N_TEXT - 1)
{
	my $s = gen_text();
	# a quarter get a typmod: the reference's count, or one that is off
	my $typmod;
	if (rand() < 0.25)
	{
		my $d = () = $s =~ /,/g;
		$typmod = pick(1, 3, $d + 1, $d + 1, $d + 2, $MAX_DIM);
		$typmod = 1 if $typmod < 1 || $typmod > $MAX_DIM;
	}
	push @text, $s;
	push @text_typmod, $typmod;
	my $utf8 = $s;
	utf8::encode($utf8);
	print $tf join("\t", $i, $typmod // '\N', unpack('H*', $utf8)), "\n";
}
close($tf);

# one COPY file per input, and a list of them with the table each goes to
my $COPY_HEADER = "PGCOPY\n\377\r\n\0" . pack('N N', 0, 0);
open(my $bl, '>', "$dir/binary.tsv") or die "binary.tsv: $!";
for my $i (0 .. $N_BIN - 1)
{
	my $b = gen_binary();
	my $typmod = rand() < 0.8 ? undef : pick(1, 3);
	push @bin, $b;
	push @bin_typmod, $typmod;
	open(my $bf, '>:raw', "$dir/bin_$i.copy") or die "bin_$i.copy: $!";
	print $bf $COPY_HEADER, pack('n N', 1, length($b)), $b, pack('n', 0xffff);
	close($bf);
	print $bl "$i\t", (defined $typmod ? "sink_$typmod" : 'sink'), "\n";
}
close($bl);
my $t_gen = time() - $t0;

# ------------------------------------------------------------------ server

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION tinyhnsw');

$node->safe_psql(
	'postgres', qq{
CREATE TABLE text_input (id int PRIMARY KEY, typmod int, hex text);
COPY text_input FROM '$dir/text.tsv';
CREATE TABLE bin_input (id int PRIMARY KEY, sink text);
COPY bin_input FROM '$dir/binary.tsv';
CREATE TABLE result (kind text, id int, sqlstate text, message text,
					 dims int, round_trip bool, sent text,
					 PRIMARY KEY (kind, id));
CREATE TABLE sink (v vector);
CREATE TABLE sink_1 (v vector(1));
CREATE TABLE sink_3 (v vector(3));
});

# Text: one block per literal, so that an error is caught and recorded.
my $t1 = time();
$node->safe_psql(
	'postgres', q{
DO $$
DECLARE
	r record;
	s text;
	v vector;
BEGIN
	FOR r IN SELECT * FROM text_input ORDER BY id LOOP
		s := convert_from(decode(r.hex, 'hex'), 'UTF8');
		BEGIN
			IF r.typmod IS NULL THEN
				v := s::vector;
			ELSE
				EXECUTE format('SELECT %L::vector(%s)', s, r.typmod) INTO v;
			END IF;
			INSERT INTO result VALUES ('text', r.id, NULL, NULL, vector_dims(v),
				vector_send(v::text::vector) = vector_send(v), NULL);
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO result VALUES ('text', r.id, SQLSTATE, SQLERRM);
		END;
	END LOOP;
END
$$;
});
my $t_text = time() - $t1;

# Binary: one COPY per input; the sink table's column gives the typmod.
my $t2 = time();
$node->safe_psql(
	'postgres', qq{
DO \$\$
DECLARE
	r record;
	v vector;
BEGIN
	FOR r IN SELECT * FROM bin_input ORDER BY id LOOP
		BEGIN
			EXECUTE format('COPY %I FROM %L (FORMAT binary)', r.sink,
						   '$dir/bin_' || r.id || '.copy');
			EXECUTE format('DELETE FROM %I RETURNING v', r.sink) INTO v;
			INSERT INTO result VALUES ('binary', r.id, NULL, NULL, vector_dims(v),
				vector_send(v::text::vector) = vector_send(v),
				encode(vector_send(v), 'hex'));
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO result VALUES ('binary', r.id, SQLSTATE, SQLERRM);
		END;
	END LOOP;
END
\$\$;
});
my $t_bin = time() - $t2;

# ------------------------------------------------------------------ checks

my %figures;
my @unclean;
my @disagree;
my @bad_round_trip;
my %states;

my $rows = $node->safe_psql('postgres',
	q{SELECT kind, id, coalesce(sqlstate, '-'), coalesce(dims, 0),
			 coalesce(round_trip::text, '-'), coalesce(sent, '-')
	  FROM result ORDER BY kind, id});
my %seen = (text => 0, binary => 0);
for my $line (split /\n/, $rows)
{
	my ($kind, $id, $state, $dims, $rt, $sent) = split /\|/, $line;
	$seen{$kind}++;
	my ($input, $typmod, $ref) =
	  $kind eq 'text'
	  ? ($text[$id], $text_typmod[$id], ref_text($text[$id], $text_typmod[$id]))
	  : ($bin[$id], $bin_typmod[$id], ref_binary($bin[$id], $bin_typmod[$id]));
	my $what = "$kind input $id (typmod " . ($typmod // -1) . ')';

	if ($state eq '-')
	{
		$figures{"$kind accepted"}++;
		push @disagree, "$what: accepted, the reference rejects it"
		  unless defined $ref;
		push @disagree, "$what: accepted with $dims dimensions, the reference reads $ref"
		  if defined $ref && $ref != $dims;
		push @bad_round_trip, "$what: does not read back its text output"
		  unless $rt eq 'true';
		push @bad_round_trip, "$what: vector_send does not give back the input"
		  if $kind eq 'binary' && $sent ne unpack('H*', $input);
	}
	else
	{
		$figures{"$kind rejected"}++;
		$states{$state}++;
		push @unclean, "$what: SQLSTATE $state" unless $state =~ /\A(22|54)/;
		push @disagree, "$what: rejected ($state), the reference reads $ref dimensions"
		  if defined $ref;
	}
}

sub shown
{
	my ($kind, $id) = @_;
	my $s = $kind eq 'text' ? $text[$id] : unpack('H*', $bin[$id]);
	$s = substr($s, 0, 200) . '...' if length($s) > 200;
	$s =~ s/([^\x20-\x7e])/sprintf('\\x{%x}', ord($1))/ge;
	return $s;
}

sub show_some
{
	my @list = @_;
	my $out = '';
	for my $item (@list[ 0 .. ($#list < 9 ? $#list : 9) ])
	{
		my ($kind, $id) = $item =~ /\A(\w+) input (\d+)/;
		$out .= "$item\n    input: " . shown($kind, $id) . "\n";
	}
	$out .= '... and ' . (@list - 10) . " more\n" if @list > 10;
	return $out;
}

is($seen{text}, $N_TEXT, "every text input has a result");
is($seen{binary}, $N_BIN, "every binary input has a result");
is(scalar @unclean, 0,
	'every rejection is a data exception (22) or a limit (54)')
  or diag(show_some(@unclean));
is(scalar @disagree, 0, 'accepted and rejected agree with the reference reading')
  or diag(show_some(@disagree));
is(scalar @bad_round_trip, 0, 'accepted vectors round-trip through text and binary')
  or diag(show_some(@bad_round_trip));

# ------------------------------------------------------------------ halfvec, sparsevec

# The same treatment for the types new in 0.2.0, with a quarter of the
# inputs each: text literals (vector literals for halfvec, whose elements
# may be out of float16's range; sparse literals for sparsevec) and binary
# fields, valid and then mutated as above.  Checks: clean errors only,
# binary acceptance agrees with a reference reading (halfvec: int16 dim in
# 1..16000, int16 0, dim finite float16; sparsevec: int32 dim in
# 1..1000000000, int32 nnz in 0..16000 and at most dim, int32 0, nnz
# increasing 0-based indices below dim, nnz finite non-zero float4), and
# accepted values round-trip through text and give back their binary input.
my $N_TYPE = int($INPUTS / 4) || 1;
my $SPARSE_MAX_DIM = 1000000000;

sub gen_sparse_text
{
	my $dim = pick(1, 2, 3, 10, 100, 30522, 16000, $SPARSE_MAX_DIM, 1 + rint(100000));
	my $nnz = rint($dim < 20 ? $dim + 1 : 20);
	my %seen;
	my @elems;
	for (1 .. $nnz)
	{
		my $i = 1 + rint($dim);
		next if $seen{$i}++ && rand() < 0.9;
		push @elems, gen_ws() . $i . gen_ws() . ':' . gen_ws()
		  . (rand() < 0.1 ? '0' : gen_number(0)) . gen_ws();
	}
	my $s = gen_ws() . '{' . join(',', @elems) . '}' . gen_ws() . '/' . gen_ws()
	  . (rand() < 0.05 ? pick(0, -1, $SPARSE_MAX_DIM + 1, '99999999999', '') : $dim) . gen_ws();
	my $n = rand() < 0.4 ? 0 : 1 + rint(3);
	$s = mutate_text($s) for 1 .. $n;
	return $s;
}

my @HALF_SPECIAL = (0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x7bff, 0xfbff, 0x0001, 0x8000, 0x0000);

sub gen_half_binary
{
	my $dim = gen_dim();
	my $b = pack('n n', $dim, 0)
	  . join('', map { pack('n', rand() < 0.95 ? rint(0x7c00) | (rint(2) << 15) : pick(@HALF_SPECIAL)) } 1 .. $dim);
	return mutate_binary($b, 2, 4);
}

sub gen_sparse_binary
{
	my $dim = pick(1, 3, 100, 16000, $SPARSE_MAX_DIM, 1 + rint(100000));
	my $nnz = rint($dim < 50 ? $dim + 1 : 50);
	my %idx;
	$idx{ rint($dim) } = 1 for 1 .. $nnz;
	my @idx = sort { $a <=> $b } keys %idx;
	my $b = pack('N N N', $dim, scalar @idx, 0) . pack('N*', @idx)
	  . join('', map { rand() < 0.95 ? pack('f>', (rand() - 0.5) * 100) : pack('N', pick(@SPECIAL_BITS)) } @idx);
	return mutate_binary($b, 4, 12);
}

# Header fields replaced, truncation, bytes appended, a bit flipped, an
# element replaced by a special one, random bytes.
sub mutate_binary
{
	my ($b, $width, $header) = @_;
	my $n = rand() < 0.4 ? 0 : 1 + rint(3);
	for (1 .. $n)
	{
		my $len = length($b);
		my $k = rint(6);
		if ($k == 0 && $len >= $header)
		{
			my $field = rint($header / $width);
			substr($b, $field * $width, $width) =
			  $width == 2
			  ? pack('n', pick(0, 1, 0xffff, 0x8000, $MAX_DIM, $MAX_DIM + 1, rint(0x10000)))
			  : pack('N', pick(0, 1, 0xffffffff, 0x80000000, 16001, $SPARSE_MAX_DIM + 1, rint(2**32)));
		}
		elsif ($k == 1) { $b = substr($b, 0, rint($len + 1)); }
		elsif ($k == 2) { $b .= join('', map { chr(rint(256)) } 1 .. 1 + rint(8)); }
		elsif ($k == 3 && $len)
		{
			my $pos = rint($len);
			substr($b, $pos, 1) = chr(ord(substr($b, $pos, 1)) ^ (1 << rint(8)));
		}
		elsif ($k == 4 && $len > $header + 4)
		{
			substr($b, $header + rint($len - $header - 4), 4) = pack('N', pick(@SPECIAL_BITS, 0, 0xffffffff));
		}
		else { $b = join('', map { chr(rint(256)) } 1 .. rint(65)); }
	}
	return $b;
}

sub ref_half_binary
{
	my ($b) = @_;
	return 0 if length($b) < 4;
	my ($dim, $unused) = unpack('n n', $b);
	$dim -= 0x10000 if $dim >= 0x8000;
	return 0 if $dim < 1 || $dim > $MAX_DIM || $unused != 0 || length($b) != 4 + 2 * $dim;
	for my $h (unpack('n*', substr($b, 4)))
	{
		return 0 if ($h & 0x7c00) == 0x7c00;
	}
	return 1;
}

sub ref_sparse_binary
{
	my ($b) = @_;
	return 0 if length($b) < 12;
	my ($dim, $nnz, $unused) = unpack('l> l> l>', $b);
	return 0 if $dim < 1 || $dim > $SPARSE_MAX_DIM || $nnz < 0 || $nnz > 16000 || $nnz > $dim;
	return 0 if $unused != 0 || length($b) != 12 + 8 * $nnz;
	my @idx = unpack("l>$nnz", substr($b, 12));
	my @val = unpack("N$nnz", substr($b, 12 + 4 * $nnz));
	for my $i (0 .. $nnz - 1)
	{
		return 0 if $idx[$i] < 0 || $idx[$i] >= $dim || ($i > 0 && $idx[$i] <= $idx[ $i - 1 ]);
		return 0 if ($val[$i] & 0x7f800000) == 0x7f800000 || ($val[$i] & 0x7fffffff) == 0;
	}
	return 1;
}

my $t3 = time();
my (%tinput, %tstates, @tunclean, @tdisagree, @tbad);
my %tfigures;
open(my $tt, '>', "$dir/types_text.tsv") or die "types_text.tsv: $!";
open(my $tb, '>', "$dir/types_binary.tsv") or die "types_binary.tsv: $!";
for my $type ('halfvec', 'sparsevec')
{
	for my $i (0 .. $N_TYPE - 1)
	{
		my $s = $type eq 'halfvec' ? gen_text() : gen_sparse_text();
		$tinput{"$type text $i"} = $s;
		my $utf8 = $s;
		utf8::encode($utf8);
		print $tt join("\t", $type, $i, unpack('H*', $utf8)), "\n";

		my $b = $type eq 'halfvec' ? gen_half_binary() : gen_sparse_binary();
		$tinput{"$type binary $i"} = $b;
		open(my $bf, '>:raw', "$dir/${type}_$i.copy") or die "${type}_$i.copy: $!";
		print $bf $COPY_HEADER, pack('n N', 1, length($b)), $b, pack('n', 0xffff);
		close($bf);
		print $tb "$type\t$i\n";
	}
}
close($tt);
close($tb);

$node->safe_psql(
	'postgres', qq{
CREATE TABLE types_text (type text, id int, hex text);
COPY types_text FROM '$dir/types_text.tsv';
CREATE TABLE types_binary (type text, id int);
COPY types_binary FROM '$dir/types_binary.tsv';
CREATE TABLE tresult (type text, kind text, id int, sqlstate text, round_trip bool, sent text);
CREATE TABLE sink_halfvec (v halfvec);
CREATE TABLE sink_sparsevec (v sparsevec);
DO \$\$
DECLARE
	r record;
	rt bool;
	sent text;
BEGIN
	FOR r IN SELECT * FROM types_text ORDER BY type, id LOOP
		BEGIN
			EXECUTE format('SELECT %1\$s_send(x::text::%1\$s) = %1\$s_send(x) FROM (SELECT %2\$L::%1\$s AS x) s',
						   r.type, convert_from(decode(r.hex, 'hex'), 'UTF8')) INTO rt;
			INSERT INTO tresult VALUES (r.type, 'text', r.id, NULL, rt);
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO tresult VALUES (r.type, 'text', r.id, SQLSTATE);
		END;
	END LOOP;
	FOR r IN SELECT * FROM types_binary ORDER BY type, id LOOP
		BEGIN
			EXECUTE format('COPY sink_%s FROM %L (FORMAT binary)', r.type,
						   '$dir/' || r.type || '_' || r.id || '.copy');
			EXECUTE format('SELECT %1\$s_send(v::text::%1\$s) = %1\$s_send(v), encode(%1\$s_send(v), ''hex'') FROM sink_%1\$s',
						   r.type) INTO rt, sent;
			EXECUTE format('DELETE FROM sink_%s', r.type);
			INSERT INTO tresult VALUES (r.type, 'binary', r.id, NULL, rt, sent);
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO tresult VALUES (r.type, 'binary', r.id, SQLSTATE);
		END;
	END LOOP;
END
\$\$;
});

for my $line (split /\n/,
	$node->safe_psql('postgres',
		q{SELECT type, kind, id, coalesce(sqlstate, '-'), coalesce(round_trip::text, '-'), coalesce(sent, '-') FROM tresult}))
{
	my ($type, $kind, $id, $state, $rt, $sent) = split /\|/, $line;
	my $key = "$type $kind $id";
	my $input = $tinput{$key};
	my $accepted = $state eq '-';
	$tfigures{"$key" =~ s/ \d+$//r . ($accepted ? ' accepted' : ' rejected')}++;
	if ($accepted)
	{
		push @tbad, "$key: does not read back its text output" unless $rt eq 'true';
		push @tbad, "$key: send does not give back the input"
		  if $kind eq 'binary' && $sent ne unpack('H*', $input);
	}
	else
	{
		$tstates{$state}++;
		push @tunclean, "$key: SQLSTATE $state" unless $state =~ /\A(22|54)/;
	}
	if ($kind eq 'binary')
	{
		my $ref = $type eq 'halfvec' ? ref_half_binary($input) : ref_sparse_binary($input);
		push @tdisagree, "$key: " . ($accepted ? 'accepted' : "rejected ($state)")
		  . ', the reference ' . ($ref ? 'accepts' : 'rejects') . ': ' . unpack('H*', substr($input, 0, 40))
		  if $ref != $accepted;
	}
}
my $tcount = $node->safe_psql('postgres', 'SELECT count(*) FROM tresult');
is($tcount, 4 * $N_TYPE, 'every halfvec and sparsevec input has a result');
is(scalar @tunclean, 0, 'halfvec and sparsevec: every rejection is a data exception or a limit')
  or diag(join("\n", @tunclean[ 0 .. ($#tunclean < 9 ? $#tunclean : 9) ]));
is(scalar @tdisagree, 0, 'halfvec and sparsevec binary: accepted and rejected agree with the reference')
  or diag(join("\n", @tdisagree[ 0 .. ($#tdisagree < 9 ? $#tdisagree : 9) ]));
is(scalar @tbad, 0, 'halfvec and sparsevec: accepted values round-trip')
  or diag(join("\n", @tbad[ 0 .. ($#tbad < 9 ? $#tbad : 9) ]));
note('halfvec and sparsevec: ' . join(', ', map { "$_ $tfigures{$_}" } sort keys %tfigures));
note('halfvec and sparsevec rejections by SQLSTATE: ' . join(' ', map { "$_=$tstates{$_}" } sort keys %tstates));
note(sprintf('halfvec and sparsevec time: %.1f s', time() - $t3));

# The server: still up, and no backend died on the way.
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server still answers');
my $log = slurp_file($node->logfile);
my @crashes = $log =~ /^.*(?:terminated by signal|PANIC:|server process .* was terminated|all server processes terminated|reinitializing).*$/mg;
is(scalar @crashes, 0, 'server log shows no crash') or diag(join("\n", @crashes));

note(sprintf('inputs: %d (text %d, binary %d)', $N_TEXT + $N_BIN, $N_TEXT, $N_BIN));
note(sprintf('accepted: text %d, binary %d; rejected: text %d, binary %d',
	map { $figures{$_} // 0 } 'text accepted', 'binary accepted', 'text rejected', 'binary rejected'));
note('rejections by SQLSTATE: ' . join(' ', map { "$_=$states{$_}" } sort keys %states));
note(sprintf('time: generate %.1f s, text %.1f s, binary %.1f s, total %.1f s',
	$t_gen, $t_text, $t_bin, time() - $t0));
note('crashes: ' . scalar @crashes);

$node->stop;
done_testing();
