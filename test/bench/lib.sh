# test/bench/lib.sh: the shell side shared by ./demo and test/bench/run.
#
# Sourced, not run. It provides:
#   bench_install_packages PKG...   apt-get install the ones not installed
#                                   (apt-get update once, only if one is missing)
#   bench_build_extension           make && make install in the checkout
#   bench_use_server                decides: the server named by PGHOST/PGPORT/
#                                   PGDATABASE (sets BENCH_EXTERNAL=1), or none
#   bench_start_cluster NAME K=V... initdb + start a throw-away cluster (as
#                                   postgres, in a mktemp directory, unix socket
#                                   only, a free port) with the given settings,
#                                   and export PGHOST/PGPORT/PGUSER/PGDATABASE
#   bench_work_dir NAME             make the mktemp directory (once) that holds
#                                   every throw-away cluster and the sockets
#   bench_add_cluster DIR LISTEN K=V...
#                                   initdb + start one more cluster there, in
#                                   DIR, on a free port (set in BENCH_PORT),
#                                   listening on LISTEN ('' for the unix socket
#                                   only, or e.g. 127.0.0.1), log in DIR.log
#   bench_run CMD...                run CMD so that INT/TERM reach it at once
#   bench_cleanup                   stop the program bench_run started, stop
#                                   every cluster of the directory, remove it
#   bench_traps                     EXIT/INT/TERM traps that call bench_cleanup
#                                   (bench_start_cluster installs them too)

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
export PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}
export LC_ALL=C.UTF-8
unset LANGUAGE

BENCH_PYTHON=/usr/bin/python3
BENCH_WORK=""        # the throw-away cluster's temporary directory
BENCH_DATA=""        # its data directory
BENCH_CHILD=""       # pid of the program bench_run started
BENCH_EXTERNAL=0     # 1: use the server named by PG* variables
BENCH_PORT=""        # the port of the cluster bench_add_cluster started last

bench_say() { echo "--- $*" >&2; }
bench_die() { echo "error: $*" >&2; exit 1; }

bench_install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != "installed" ]; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || bench_die "missing packages (${missing[*]}); run as root to install them"
    bench_say "installing ${missing[*]}"
    apt-get update -qq || bench_die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || bench_die "apt-get install ${missing[*]} failed"
}

# $1: the checkout. make's output goes to stderr so that stdout holds only
# the program's report.
bench_build_extension() {
    local src=$1
    if [ "$(id -u)" -ne 0 ]; then
        if [ "$BENCH_EXTERNAL" -eq 1 ]; then
            bench_say "not root: skipping make install (the server must have tinyhnsw installed)"
            return 0
        fi
        bench_die "run as root (it installs packages and the extension)"
    fi
    bench_say "building and installing the extension (make && make install)"
    make -C "$src" -s -j"$(nproc)" >&2 || bench_die "make failed"
    make -C "$src" -s install >&2 || bench_die "make install failed"
}

bench_use_server() {
    if [ -n "${PGHOST:-}" ] || [ -n "${PGPORT:-}" ] || [ -n "${PGDATABASE:-}" ]; then
        BENCH_EXTERNAL=1
    fi
}

# A port nothing uses: no TCP listener and no socket file of that number in
# the usual places. Never 5432, and clear of test/run's range (54320+) and of
# the developers' clusters (5490-5499).
bench_free_port() {
    local port
    for ((port = 54500; port < 54600; port++)); do
        if command -v ss >/dev/null && ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$port\$"; then
            continue
        fi
        if [ -e "/tmp/.s.PGSQL.$port" ] || [ -e "/var/run/postgresql/.s.PGSQL.$port" ]; then
            continue
        fi
        # our own clusters' sockets (a unix-socket-only cluster has no
        # TCP listener for the checks above to see)
        if [ -n "$BENCH_WORK" ] && [ -e "$BENCH_WORK/sock/.s.PGSQL.$port" ]; then
            continue
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            continue
        fi
        echo "$port"
        return 0
    done
    return 1
}

bench_as_pg() { runuser -u postgres -- "$@"; }

bench_cleanup() {
    if [ -n "$BENCH_CHILD" ]; then
        kill -TERM "$BENCH_CHILD" 2>/dev/null || true
        wait "$BENCH_CHILD" 2>/dev/null || true
        BENCH_CHILD=""
    fi
    if [ -n "$BENCH_WORK" ] && [ -d "$BENCH_WORK" ]; then
        cd /
        local pidfile
        while IFS= read -r pidfile; do
            bench_as_pg "$PG_BINDIR/pg_ctl" stop -D "$(dirname "$pidfile")" -m immediate -w >/dev/null 2>&1 || true
        done < <(find "$BENCH_WORK" -maxdepth 2 -name postmaster.pid 2>/dev/null)
        rm -rf "$BENCH_WORK"
        BENCH_WORK=""
    fi
}

# Clean up on every exit, and on INT/TERM (which end the script).
bench_traps() {
    trap 'rc=$?; bench_cleanup; exit $rc' EXIT
    trap 'echo "interrupted" >&2; exit 130' INT
    trap 'echo "terminated" >&2; exit 143' TERM
}

# $1: a name for the directory. Makes it (once: later calls keep the first),
# owned by postgres, with the socket directory sock/, and installs the traps.
bench_work_dir() {
    [ -n "$BENCH_WORK" ] && return 0
    bench_traps
    BENCH_WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    chown postgres:postgres "$BENCH_WORK"
    # PostgreSQL's programs fail if their working directory is not theirs to see.
    cd "$BENCH_WORK"
    bench_as_pg mkdir -m 700 "$BENCH_WORK/sock"
}

# $1: the data directory's name in $BENCH_WORK; $2: listen_addresses; then
# name=value settings for postgresql.conf. Sets BENCH_PORT.
bench_add_cluster() {
    local data=$BENCH_WORK/$1 listen=$2 port setting
    shift 2
    bench_as_pg mkdir -m 700 "$data"
    port=$(bench_free_port) || bench_die "no free port in 54500-54599"
    bench_say "starting a throw-away cluster in $data (port $port, ${listen:-unix socket only})"
    bench_as_pg "$PG_BINDIR/initdb" -D "$data" -U postgres -A trust -E UTF8 \
        --no-locale --no-sync >"$data.initdb.log" 2>&1 \
        || { cat "$data.initdb.log" >&2; bench_die "initdb failed"; }
    {
        echo "listen_addresses = '$listen'"
        echo "port = $port"
        echo "unix_socket_directories = '$BENCH_WORK/sock'"
        for setting in "$@"; do
            echo "${setting%%=*} = '${setting#*=}'"
        done
    } >>"$data/postgresql.conf"
    bench_as_pg "$PG_BINDIR/pg_ctl" start -D "$data" -l "$data.log" -w >/dev/null \
        || { tail -n 30 "$data.log" >&2; bench_die "cluster start failed"; }
    BENCH_PORT=$port
}

# $1: a name for the directory; then name=value settings for postgresql.conf.
bench_start_cluster() {
    local name=$1
    shift
    bench_work_dir "$name"
    BENCH_DATA=$BENCH_WORK/data
    bench_add_cluster data '' "$@"
    export PGHOST=$BENCH_WORK/sock PGPORT=$BENCH_PORT PGUSER=postgres PGDATABASE=postgres
    # The server log, for the program to point at if something goes wrong.
    export BENCH_SERVER_LOG=$BENCH_WORK/data.log
}

# Run a command in the background and wait for it, so that a TERM sent to
# this script is acted on at once (bash defers traps while a foreground
# command runs). Background commands ignore SIGINT, so Ctrl-C reaches the
# program through the INT trap and bench_cleanup's TERM.
bench_run() {
    local rc=0
    "$@" &
    BENCH_CHILD=$!
    wait "$BENCH_CHILD" || rc=$?
    BENCH_CHILD=""
    return "$rc"
}
