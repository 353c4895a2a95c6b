# The benchmark (test/bench/bench.py) end to end, at its --quick sizes,
# against a server of this test's own: it must finish, write its JSON, and
# report for every ef_search the recall an index working as designed gets,
# with the query vector bound in binary (the default) and as a text literal.
# Speed is not asserted; this guards the benchmark's code, which no other
# test runs.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('bench');
$node->init;
$node->start;

my $out = PostgreSQL::Test::Utils::tempdir;

# bench.py uses the server that PGHOST, PGPORT and PGDATABASE name
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGDATABASE} = 'postgres';

# Run bench.py; returns its report (the JSON it wrote), or undef
sub bench
{
	my ($format, $datasets) = @_;
	my $dir = "$out/$format";
	my ($stdout, $stderr) = ('', '');

	mkdir $dir or die "mkdir $dir: $!";
	my $ok = IPC::Run::run(
		[
			'/usr/bin/python3', 'test/bench/bench.py',
			'--quick', '--dataset', $datasets,
			'--queries', '100', '--ef', '10,40,160',
			'--query-format', $format, '--no-hnswlib',
			'--no-plot', '--cache-dir', '',
			'--maintenance-work-mem', '256MB', '--out', $dir
		],
		'<', \undef, '>', \$stdout, '2>', \$stderr);
	ok($ok, "bench.py --query-format $format exits 0")
	  or diag("stdout:\n$stdout\nstderr:\n$stderr");
	like($stdout, qr/benchmark finished in/, "bench.py ($format) reports its end");

	my @json = glob("$dir/bench-*.json");
	is(scalar @json, 1, "bench.py ($format) writes one JSON file")
	  or return undef;
	open my $fh, '<', $json[0] or die "$json[0]: $!";
	local $/;
	my $report = decode_json(<$fh>);
	close $fh;
	return $report;
}

sub check_report
{
	my ($report, $format, @names) = @_;

	is($report->{parameters}{query_format}, $format, "JSON records format $format");
	is_deeply([ map { $_->{dataset}{name} } @{ $report->{datasets} } ],
		\@names, "JSON has every dataset ($format)");
	foreach my $entry (@{ $report->{datasets} })
	{
		my $name = $entry->{dataset}{name};
		my $runs = $entry->{tinyhnsw}{runs};

		is($entry->{dataset}{queries}, 100, "$name: 100 queries");
		ok($entry->{tinyhnsw}{index_bytes} > 0, "$name: index size reported");
		foreach my $ef (10, 40, 160)
		{
			my $run = $runs->{$ef};

			ok(defined $run->{qps} && $run->{qps} > 0,
				"$name ($format): ef $ef measured");
			# a query that got fewer than k rows, or a row twice, is a bug
			ok(!$run->{short} && !$run->{duplicates},
				"$name ($format): ef $ef returns k distinct rows each");
		}
		# the quick sets are small: a large ef finds nearly everything
		cmp_ok($runs->{160}{recall}, '>=', 0.95,
			"$name ($format): recall\@10 at ef 160");
		cmp_ok($runs->{160}{recall}, '>=', $runs->{10}{recall} - 0.02,
			"$name ($format): recall does not fall as ef grows");
	}
	return;
}

my $report = bench('binary', 'gaussian,cosine');
check_report($report, 'binary', 'gaussian', 'cosine') if $report;

$report = bench('text', 'cosine');
check_report($report, 'text', 'cosine') if $report;

$node->stop;

done_testing();
