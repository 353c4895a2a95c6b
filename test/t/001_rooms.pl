# The house's walls (README, Design): page, buffer and WAL calls only in
# the page room (src/hnswpage.c); no page or buffer header in the
# algorithm (src/hnswgraph*); the type files know nothing of the index.
# A static check over the sources: it needs no server.
use strict;
use warnings;

use FindBin;
use Test::More;

my $src = "$FindBin::RealBin/../../src";
opendir(my $dh, $src) or die "opendir $src: $!";
my @files = sort grep { /\.[ch]$/ } readdir $dh;
closedir $dh;
cmp_ok(scalar(@files), '>', 10, 'the sources are there');

sub slurp
{
	my ($f) = @_;
	open(my $fh, '<', "$src/$f") or die "open $src/$f: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	# comments may name what the code must not call
	$text =~ s{/\*.*?\*/}{}gs;
	return $text;
}

my @page_calls = qw(PageAddItem GenericXLogStart GenericXLogRegisterBuffer
  GenericXLogFinish ReadBuffer ReadBufferExtended LockBuffer
  UnlockReleaseBuffer);
my $calls = join('|', @page_calls);
my @outside = grep {
	$_ ne 'hnswpage.c' && slurp($_) =~ /\b(?:$calls)\s*\(/
} @files;
is("@outside", '', 'page, buffer and WAL calls only in src/hnswpage.c');

my @algo_headers = grep {
	/^hnswgraph/ && slurp($_) =~ m{#include\s+"(?:storage/buf|storage/bufpage|access/generic_xlog|hnswpage\.h)}
} @files;
is("@algo_headers", '', 'the algorithm includes no page, buffer or WAL header');

my @page_header = grep {
	$_ ne 'hnswpage.c' && !/^hnswverify/
	  && slurp($_) =~ m{#include\s+"hnswpage\.h"}
} @files;
is("@page_header", '', 'hnswpage.h is included only by the page room and the verifier');

# One concern a file, and none over about 1,000 lines but the page room,
# which ../shared/ARCHITECTURE.md keeps one file (every page, buffer and
# WAL call in one place), in sections
my @long = grep {
	$_ ne 'hnswpage.c' && do {
	open(my $fh, '<', "$src/$_") or die "open $src/$_: $!";
	my $n = () = <$fh>;
	close $fh;
	$n > 1000;
	}
} @files;
is("@long", '', 'no source file but hnswpage.c is over 1,000 lines');

my @types_index = grep {
	/^(?:vector|halfvec|sparsevec|bitvec|vecutil|halfdistance|distance|float16|floatparse)\b/
	  && slurp($_) =~ /#include\s+"hnsw/
} @files;
is("@types_index", '', 'the type files include no index header');

done_testing();
