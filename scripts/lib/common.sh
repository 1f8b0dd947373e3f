# Shared by scripts/test.sh and scripts/bench.sh: installing what is missing, a throwaway PostgreSQL
# cluster, and crmd started against it. Source it; every function cleans up through `cleanup`.

export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*" >&2; }

# ensure_packages PACKAGE… — apt-get installs the ones that are missing.
ensure_packages() {
  local need=() package
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
  done
  if [ ${#need[@]} -gt 0 ]; then
    step "installing ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  export CRM_TEST_PG_BIN="$pg_bin"
}

# The unprivileged user PostgreSQL runs as when we are root (it refuses to run as root).
pg_user=""
if [ "$(id -u)" = 0 ]; then
  pg_user=postgres
  id -u postgres >/dev/null 2>&1 || pg_user=nobody
fi
as_pg() {
  if [ -n "$pg_user" ]; then setpriv --reuid="$pg_user" --regid="$pg_user" --init-groups -- "$@"; else "$@"; fi
}

work=$(mktemp -d /tmp/crm-run.XXXXXX)
chmod 755 "$work"
crmd_pid=""

cleanup() {
  local status=$?
  if [ "$status" != 0 ] && [ -s "$work/crmd.log" ]; then
    echo "--- last lines of crmd's log ---" >&2
    tail -n 30 "$work/crmd.log" >&2
  fi
  if [ -n "$crmd_pid" ] && kill -0 "$crmd_pid" 2>/dev/null; then
    kill -INT "$crmd_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$crmd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$crmd_pid" 2>/dev/null || true
  fi
  if [ -f "$work/pg/postmaster.pid" ]; then as_pg "$pg_bin/pg_ctl" stop -D "$work/pg" -m immediate -w >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT INT TERM

# start_cluster [EXTRA_POSTGRES_OPTIONS] — a throwaway cluster on a Unix socket in $work/pg, with
# wal_level = logical (the change feed decodes the WAL).
start_cluster() {
  step "starting a throwaway PostgreSQL cluster in $work/pg"
  mkdir -p "$work/pg"
  [ -n "$pg_user" ] && chown "$pg_user:$pg_user" "$work/pg"
  as_pg "$pg_bin/initdb" -D "$work/pg" -U crm --auth=trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1
  as_pg "$pg_bin/pg_ctl" start -w -D "$work/pg" -l "$work/pg/server.log" \
    -o "-c listen_addresses='' -k $work/pg -c max_connections=200 -c wal_level=logical $*" >/dev/null
  pg_socket="$work/pg"
}

# psql_as_owner DATABASE ARGS… — psql over the socket as the cluster's superuser.
psql_as_owner() {
  local database=$1
  shift
  "$pg_bin/psql" -h "$pg_socket" -U crm -d "$database" -v ON_ERROR_STOP=1 -q "$@"
}

# stop_crmd — stops the crmd start_crmd started (SIGINT, then SIGKILL after 5 s).
stop_crmd() {
  [ -n "$crmd_pid" ] || return 0
  kill -INT "$crmd_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$crmd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$crmd_pid" 2>/dev/null || true
  wait "$crmd_pid" 2>/dev/null || true
  crmd_pid=""
}

# start_crmd BINARY DATABASE [CRMD_OPTIONS…] — starts crmd on a free port; sets $crmd_address and
# $crmd_token.
start_crmd() {
  local binary=$1 database=$2
  shift 2
  : >"$work/crmd.out"
  CRM_DATABASE_URL="host=$pg_socket dbname=$database user=crm" CRM_TOKEN_FILE="$work/admin-token" \
    "$binary" --port 0 --data-dir "$work/crmd" "$@" >"$work/crmd.out" 2>"$work/crmd.log" </dev/null &
  crmd_pid=$!
  crmd_address=""
  for _ in $(seq 1 300); do
    crmd_address=$(sed -n 's/^crmd listening on \([^ ]*\) .*/\1/p' "$work/crmd.out" | head -n 1)
    [ -n "$crmd_address" ] && break
    kill -0 "$crmd_pid" 2>/dev/null || { cat "$work/crmd.log" >&2; echo "crmd exited early" >&2; return 1; }
    sleep 0.1
  done
  [ -n "$crmd_address" ] || { cat "$work/crmd.log" >&2; echo "crmd did not start listening" >&2; return 1; }
  crmd_token=$(cat "$work/admin-token")
}
