# Smoke test: the extension installs into a fresh cluster and its vector type
# reads and prints a literal. If this fails, nothing else can pass.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

# psql rather than safe_psql: an error should fail this check, with psql's
# message shown, rather than end the whole file.
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION tinyhnsw');
is($ret, 0, 'CREATE EXTENSION tinyhnsw') or diag($stderr);

($ret, $stdout, $stderr) =
  $node->psql('postgres', q{SELECT '[1,2,3]'::vector});
is($ret, 0, 'vector literal is accepted') or diag($stderr);
is($stdout, '[1,2,3]', 'vector literal round-trips');

$node->stop;

done_testing();
