#!/usr/bin/env sh
# Run a command (make test: pytest) with a PostgreSQL its tests must use, never skip.
#
# The PostgreSQL at $PG_URL (default postgresql://postgres@127.0.0.1:5432/test) if it
# answers; otherwise a throw-away cluster of Debian's postgresql package: initdb into a
# temporary directory, started with pg_ctl on a free loopback port, a database "test",
# stopped and deleted when the command ends. Either way the command sees
# BB_REQUIRE_POSTGRES=1 and BB_TEST_POSTGRES_URL.
#
# Usage: scripts/with-test-postgres.sh PYTHON COMMAND [ARGS...]
#   PYTHON: an interpreter with psycopg (the project's venv) to ask and to find a free port.
set -eu
python="$1"
shift
url="${PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"

answers() {
    "$python" -c "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=2).close()" \
        "$1" 2>/dev/null
}

if answers "$url"; then
    echo "PostgreSQL found at $url: its tests must run"
    BB_REQUIRE_POSTGRES=1 BB_TEST_POSTGRES_URL="$url" exec "$@"
fi

bin=""
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && bin="$dir" && break
done
if [ -z "$bin" ]; then
    echo "no PostgreSQL at $url and no initdb/pg_ctl: ./scripts/install-test-packages.sh" \
         "installs Debian's postgresql package" >&2
    exit 1
fi

# PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user
# (made by Debian's package) or nobody.
as_owner() { "$@"; }
owner=""
if [ "$(id -u)" = "0" ]; then
    owner=postgres
    id -u "$owner" >/dev/null 2>&1 || owner=nobody
    as_owner() { runuser -u "$owner" -- "$@"; }
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/bb-test-postgres.XXXXXX")"
[ -n "$owner" ] && chown "$owner" "$dir"
chmod 700 "$dir"
port="$("$python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"

stop() {
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" \
    >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
"$python" -c "import sys, psycopg; psycopg.connect(sys.argv[1], autocommit=True).execute('CREATE DATABASE test')" \
    "postgresql://postgres@127.0.0.1:$port/postgres"

url="postgresql://postgres@127.0.0.1:$port/test"
echo "no PostgreSQL answered at ${PG_URL:-127.0.0.1:5432}: started a throw-away one at $url"
status=0
BB_REQUIRE_POSTGRES=1 BB_TEST_POSTGRES_URL="$url" "$@" || status=$?
exit "$status"
