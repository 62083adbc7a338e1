#!/usr/bin/env bash
# A throwaway PostgreSQL server for trying the bot's Postgres store (DATABASE_URL) on a Debian/Ubuntu
# machine: installs the `postgresql` package when the server is missing (the package may also start its
# own system cluster on port 5432; this one is separate), starts a cluster on 127.0.0.1 (as the postgres
# user when run as root: Postgres refuses to run as root), creates the database `amibot` and prints the
# DATABASE_URL line to use and how to stop the server. No password: it listens on loopback only.
#
#   scripts/postgres-local.sh                  # a free port, a new folder under ${TMPDIR:-/tmp}
#   scripts/postgres-local.sh 5433 /tmp/pg     # this port, this folder (a cluster already in it is reused)
set -euo pipefail

port="${1:-}"
dir="${2:-}"
say() { echo "postgres-local: $*" >&2; }
as_postgres() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# The newest /usr/lib/postgresql/N/bin, else pg_config's, else PATH's.
find_bin() {
  local bin
  for bin in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5nr); do
    [[ -x $bin/initdb ]] && echo "$bin" && return
  done
  bin="$(pg_config --bindir 2>/dev/null || true)"
  [[ -n $bin && -x $bin/initdb ]] && echo "$bin" && return
  bin="$(command -v initdb || true)"
  [[ -n $bin ]] && dirname "$bin"
}

bin="$(find_bin || true)"
if [[ -z $bin ]]; then
  say "PostgreSQL server not found: installing the postgresql package"
  sudo=""
  [[ $EUID -eq 0 ]] || sudo="sudo"
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
  bin="$(find_bin || true)"
  [[ -n $bin ]] || { say "still no initdb after installing postgresql"; exit 1; }
fi

if [[ -z $port ]]; then
  # A port nothing answers on (bash's /dev/tcp connects, or fails when the port is free).
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
fi
[[ -n $dir ]] || dir="$(mktemp -d "${TMPDIR:-/tmp}/ami-bot-postgres-XXXXXX")"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [[ $EUID -eq 0 ]]; then
  chown postgres: "$dir"
  chmod 700 "$dir"
  as_postgres test -w "$dir" || { say "the postgres user cannot reach $dir: use a folder under /tmp"; exit 1; }
fi
# initdb and pg_ctl fail in a working directory the postgres user may not enter.
cd "$dir"

if [[ ! -f $dir/data/PG_VERSION ]]; then
  as_postgres "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
    --no-instructions >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
fi
settings="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$dir'"
settings+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
as_postgres "$bin/pg_ctl" -D "$dir/data" -w -t 30 -l "$dir/postgres.log" -o "$settings" start >/dev/null ||
  { tail -n 30 "$dir/postgres.log" >&2; exit 1; }

server="postgres://postgres@127.0.0.1:$port"
if [[ -z "$("$bin/psql" -X "$server/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = 'amibot'")" ]]; then
  "$bin/psql" -X "$server/postgres" -qc "CREATE DATABASE amibot"
fi

stop="$bin/pg_ctl -D $dir/data -m immediate stop && rm -rf $dir"
[[ $EUID -eq 0 ]] && stop="runuser -u postgres -- $stop"
say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, files in $dir"
say "tests against this server: AMI_TEST_DATABASE_URL=$server/postgres npm test"
say "stop it: $stop"
echo "DATABASE_URL=$server/amibot"
