#!/usr/bin/env bash
# A throw-away PostgreSQL server on 127.0.0.1 for the tests that need one (tests/test_postgres.py).
#
#   eval "$(.ci/postgres.sh start)"         # prints the exports below, nothing else on stdout
#   .ci/postgres.sh stop "$IVYBT_TEST_POSTGRES_DIR"
#
# `start` installs Debian's postgresql package when no server binaries are found, runs initdb
# into a new temporary folder, starts the server on a free port of 127.0.0.1 only (as the
# `postgres` user when run as root: the server refuses to run as root), creates the role
# `ivybt` with a random password (allowed to create databases, so each test gets its own) and
# the database `ivybt`, and prints
#   export IVYBT_TEST_POSTGRES_URL=postgresql://ivybt:<password>@127.0.0.1:<port>/ivybt
#   export IVYBT_TEST_POSTGRES_DIR=<the temporary folder>
# `stop DIR` stops that server and removes the folder; `available` exits 0 when the server
# binaries are installed (the tests start a server of their own only then). Progress goes to
# stderr.
set -euo pipefail

log() { echo ".ci/postgres.sh: $*" >&2; }

server_bin() {
    local found
    if found=$(command -v pg_ctl 2>/dev/null) && [ -x "$(dirname "$(readlink -f "$found")")/postgres" ]; then
        dirname "$(readlink -f "$found")"
        return
    fi
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$found" ] && [ -x "$found/pg_ctl" ]; then
        echo "$found"
    fi
}

# Run a server binary as the owner of the data folder (never as root).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin
    bin=$(server_bin)
    if [ -z "$bin" ]; then
        log "no PostgreSQL server found; installing Debian's postgresql package"
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq >&2
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        bin=$(server_bin)
        [ -n "$bin" ] || { log "postgresql installed but pg_ctl not found"; exit 1; }
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi

    local dir port password
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ivybt-postgres.XXXXXX")
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    cd "$dir"  # the postgres user may not be allowed into the caller's folder
    trap 'stop "$dir"' EXIT  # a failed start leaves no server and no folder behind

    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE ROLE ivybt LOGIN CREATEDB PASSWORD '$password'" \
        -c "CREATE DATABASE ivybt OWNER ivybt" >&2
    log "PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir"
    echo "export IVYBT_TEST_POSTGRES_URL=postgresql://ivybt:$password@127.0.0.1:$port/ivybt"
    echo "export IVYBT_TEST_POSTGRES_DIR=$dir"
    trap - EXIT
}

stop() {
    local dir=${1:-}
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then
        return 0
    fi
    local bin
    bin=$(server_bin)
    if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
        (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2) || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    available) [ -n "$(server_bin)" ] ;;
    *)
        echo "usage: $0 start | stop DIR | available" >&2
        exit 2
        ;;
esac
