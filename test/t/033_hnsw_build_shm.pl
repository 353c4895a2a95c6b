# A parallel build whose shared memory segment /dev/shm cannot hold (a
# container's small /dev/shm) builds serially with a NOTICE instead of
# failing with "could not resize shared memory segment ... No space left on
# device" (dsm_create's ERROR).
#
# The server runs with an 8MB tmpfs over /dev/shm, in a mount namespace of
# its own: `unshare --user --map-root-user --mount` lets an unprivileged
# user mount the tmpfs, and a nested `unshare --user --map-user` runs the
# server as that user again (PostgreSQL refuses to run as root, even a
# namespace's).  Nothing outside the server sees the small /dev/shm.  Where
# user namespaces are not available, the test is skipped.
#   - A parallel build of 10 rows (a segment of about 3MB) still runs in
#     parallel: the check refuses only what does not fit.
#   - A parallel build of 20,000 rows of 16 dimensions (a graph area of
#     about 18MB) gets the NOTICE, builds serially, and the index holds
#     every row, each found by its own vector.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use HnswTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($uid, $gid) = ($<, $( + 0);
my @in_small_shm = (
	'unshare', '--user', '--map-root-user', '--mount', 'sh', '-c',
	'mount -t tmpfs -o size=8m tmpfs /dev/shm && '
	  . "exec unshare --user --map-user=$uid --map-group=$gid \"\$@\"",
	'sh');

if (system(@in_small_shm, 'sh', '-c',
		'test "$(id -u)" != 0 && df -k /dev/shm | grep -q " 8192 "') != 0)
{
	plan skip_all =>
	  'cannot mount a small /dev/shm in a user namespace here (unshare)';
}

my $node = PostgreSQL::Test::Cluster->new('shm');
$node->init;
$node->append_conf('postgresql.conf', qq{
dynamic_shared_memory_type = posix
max_parallel_maintenance_workers = 2
max_parallel_workers_per_gather = 0
autovacuum = off
});
# as PostgreSQL::Test::Cluster::start does, inside the namespaces
PostgreSQL::Test::Utils::system_or_bail(@in_small_shm, 'pg_ctl', '-w', '-D',
	$node->data_dir, '-l', $node->logfile, '-o', '--cluster-name=shm',
	'start');
$node->_update_pid(1);

hnsw_setup_data($node, dim => 16, clusters => 20, seed => 0.37);

# Build an index in parallel; returns (exit code, stderr)
sub build
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', qq{
SET client_min_messages = debug1;
SET maintenance_work_mem = '256MB';
SET max_parallel_maintenance_workers = 1;
$sql
});
	return ($ret, $err);
}

hnsw_load($node, 'small', n => 10, seed => 0.19);
$node->safe_psql('postgres',
	'ANALYZE small; ALTER TABLE small SET (parallel_workers = 1)');
my ($ret, $err) = build('CREATE INDEX small_idx ON small USING hnsw (v)');
is($ret, 0, 'small parallel build succeeds') or diag($err);
like($err, qr/hnsw build of "small_idx" with 1 parallel workers/,
	'small parallel build: a worker took part');
unlike($err, qr/does not fit into free shared memory/,
	'small parallel build: no NOTICE');

hnsw_load($node, 'big', n => 20000, seed => 0.41);
$node->safe_psql('postgres',
	'ANALYZE big; ALTER TABLE big SET (parallel_workers = 1)');
($ret, $err) = build('CREATE INDEX big_idx ON big USING hnsw (v)');
is($ret, 0, 'parallel build larger than /dev/shm succeeds') or diag($err);
like($err,
	qr/NOTICE:  hnsw graph does not fit into free shared memory, building without parallel workers\nDETAIL:  The build needs a segment of \d+ bytes; the file system at \/dev\/shm has \d+ bytes free\./,
	'NOTICE that the build goes without workers');
unlike($err, qr/hnsw build of "big_idx" with \d+ parallel workers/,
	'the build ran serially');
is($node->safe_psql('postgres',
		"SELECT reltuples FROM pg_class WHERE relname = 'big_idx'"),
	'20000', 'the index holds every row');
my $missed = hnsw_not_self_first($node, 'big', '<->', index => 'big_idx',
	ef_search => 400, name => 'serial fallback');
is(scalar(@$missed), 0, 'every row is found by its own vector')
  or diag("not found: @$missed[0 .. ($#$missed < 9 ? $#$missed : 9)]");

$node->stop;
done_testing();
