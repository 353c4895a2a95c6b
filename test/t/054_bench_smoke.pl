# The benchmark (test/bench/bench.py) end to end, at its --quick sizes,
# against a server of this test's own: it must finish, write its JSON, and
# report for every ef_search the recall an index working as designed gets,
# with the query vector bound in binary (the default) and as a text literal;
# and cosine3072's halfvec expression index and binary quantization with
# re-ranking; and test/bench/filters.py on one set. Speed is not asserted;
# this guards the benchmarks' code, which no other test runs.
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
	my ($format, $datasets, @extra) = @_;
	my $dir = "$out/$format-$datasets";
	my ($stdout, $stderr) = ('', '');

	mkdir $dir or die "mkdir $dir: $!";
	my $ok = IPC::Run::run(
		[
			'/usr/bin/python3', 'test/bench/bench.py',
			'--quick', '--dataset', $datasets,
			'--queries', '100', '--ef', '10,40,160',
			'--query-format', $format, '--no-hnswlib',
			'--no-plot', '--cache-dir', '',
			'--maintenance-work-mem', '256MB', '--out', $dir, @extra
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

# cosine3072, 3,000 x 3,072: the vectors are in TOAST and the table's main
# fork is small, yet the planner must take our indexes (the distance
# functions' cost support), without --force-index
$report = bench('binary', 'cosine3072', '--bq-candidates', '20,100',
	'--bq-ef', '40,100');
if ($report)
{
	check_report($report, 'binary', 'cosine3072');
	my $entry = $report->{datasets}[0];
	is($entry->{tinyhnsw}{index_kind}, 'halfvec', 'cosine3072: halfvec expression index');
	is($entry->{tinyhnsw}{runs}{40}{plan}, 'index scan', 'cosine3072: the plan uses it');
	my $bq = $entry->{tinyhnsw_bq};
	ok($bq && $bq->{index_bytes} > 0, 'cosine3072: binary quantization index size reported');
	# ef 40 is below 100 candidates: skipped, not run short
	is_deeply($bq->{candidates}{100}{ef_search}, [100], 'bq: ef below the candidates skipped');
	foreach my $c (20, 100)
	{
		my $run = $bq->{candidates}{$c}{runs}{100};
		ok(defined $run->{qps} && $run->{qps} > 0, "bq $c candidates: ef 100 measured");
		is($run->{plan}, 'index scan', "bq $c candidates: the plan uses the bit index");
		ok(!$run->{short} && !$run->{duplicates}, "bq $c candidates: k distinct rows each");
	}
	# more candidates re-ranked find at least as much
	cmp_ok($bq->{candidates}{100}{runs}{100}{recall}, '>=', 0.9, 'bq: recall\@10 with 100 candidates');
	cmp_ok($bq->{candidates}{100}{runs}{100}{recall}, '>=',
		$bq->{candidates}{20}{runs}{100}{recall} - 0.02, 'bq: recall does not fall with more candidates');
}

# test/bench/filters.py at its --quick size on one set: it must finish and
# print a row per filter; the planner must take the sequential scan for the
# filter keeping 1 row in 100 and the index for none (hnswcostestimate),
# and the index plan must find what the sequential scan does.
{
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(
		[
			'/usr/bin/python3', 'test/bench/filters.py',
			'--quick', '--dataset', 'gaussian',
			'--queries', '10', '--passes', '1'
		],
		'<', \undef, '>', \$stdout, '2>', \$stderr);
	ok($ok, 'filters.py exits 0') or diag("stdout:\n$stdout\nstderr:\n$stderr");
	my %row;
	while ($stdout =~ /^(c = 44|c < 1|c < 3|c < 10|c < 30|\(none\))\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(index|seq)\s+(index|seq)\s+(\S+)\s+([0-9.]+)$/mg)
	{
		$row{$1} = { chosen => $7, recall => $10 };
	}
	is(scalar(keys %row), 6, 'filters.py: a row for each of its 6 filters')
	  or diag($stdout);
	is($row{'c = 44'}{chosen}, 'seq', 'filters.py: c = 44 (1%) planned as a sequential scan');
	is($row{'(none)'}{chosen}, 'index', 'filters.py: no filter planned as the index scan');
	foreach my $f (sort keys %row)
	{
		cmp_ok($row{$f}{recall}, '>=', 0.8,
			"filters.py: $f, the index plan finds what the sequential scan does (recall\@10)");
	}
}

$node->stop;

done_testing();
