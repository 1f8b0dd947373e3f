#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. installs what is missing (Debian packages, a Python venv with grpcio and pytest);
#   2. checks Sources/CRMProto is what scripts/generate-proto.sh makes from proto/;
#   3. starts a throwaway PostgreSQL cluster (as an unprivileged user when run as root);
#   4. runs `swift test` against it;
#   5. starts crmd against it and runs the Python grpcio interop tests in tests/interop;
#   6. stops everything it started, also when a step fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*" >&2; }

# --- 1. dependencies --------------------------------------------------------------------------
need=()
for package in libpq-dev postgresql postgresql-contrib protobuf-compiler libprotobuf-dev python3-venv; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

venv="$root/.build/venv"
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c 'import grpc, grpc_tools, grpc_reflection, grpc_health, grpc_status' 2>/dev/null; then
  step "creating the Python venv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q grpcio grpcio-tools grpcio-reflection grpcio-health-checking grpcio-status pytest
fi

# --- 3. a throwaway cluster ------------------------------------------------------------------
work=$(mktemp -d /tmp/crm-test.XXXXXX)
chmod 755 "$work"
pg_user=""
if [ "$(id -u)" = 0 ]; then
  pg_user=postgres
  id -u postgres >/dev/null 2>&1 || pg_user=nobody
fi
as_pg() {
  if [ -n "$pg_user" ]; then setpriv --reuid="$pg_user" --regid="$pg_user" --init-groups -- "$@"; else "$@"; fi
}
crmd_pid=""
cleanup() {
  status=$?
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

step "starting a throwaway PostgreSQL cluster in $work/pg"
mkdir -p "$work/pg"
[ -n "$pg_user" ] && chown "$pg_user:$pg_user" "$work/pg"
as_pg "$pg_bin/initdb" -D "$work/pg" -U crm --auth=trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1
as_pg "$pg_bin/pg_ctl" start -w -D "$work/pg" -l "$work/pg/server.log" \
  -o "-c listen_addresses='' -k $work/pg -c max_connections=200 -c fsync=off -c synchronous_commit=off" >/dev/null
export CRM_TEST_DATABASE_URL="host=$work/pg dbname=crm_test user=crm"
export CRM_TEST_PG_BIN="$pg_bin"
"$pg_bin/psql" -h "$work/pg" -U crm -d postgres -qc "CREATE DATABASE crm_test" -c "CREATE DATABASE crm_interop"

# --- 2. generated code is current --------------------------------------------------------------
step "checking Sources/CRMProto against proto/"
scripts/generate-proto.sh "$work/generated" 2>"$work/generate.log" || { cat "$work/generate.log" >&2; exit 1; }
if ! diff -r "$work/generated" Sources/CRMProto >"$work/generated.diff"; then
  head -n 40 "$work/generated.diff" >&2
  echo "Sources/CRMProto is stale or hand-edited: run scripts/generate-proto.sh and commit the result." >&2
  exit 1
fi

# --- 4. swift test ----------------------------------------------------------------------------
step "swift test"
swift build --build-tests
swift test --skip-build

# --- 5. interop: crmd + Python grpcio ---------------------------------------------------------
step "starting crmd for the interop tests"
swift build --product crmd
: >"$work/crmd.out"
CRM_DATABASE_URL="host=$work/pg dbname=crm_interop user=crm" CRM_TOKEN_FILE="$work/admin-token" CRM_AUTH_CACHE_SECONDS=0 \
  "$(swift build --show-bin-path)/crmd" --port 0 --data-dir "$work/crmd" >"$work/crmd.out" 2>"$work/crmd.log" </dev/null &
crmd_pid=$!
address=""
for _ in $(seq 1 300); do
  address=$(sed -n 's/^crmd listening on \([^ ]*\) .*/\1/p' "$work/crmd.out" | head -n 1)
  [ -n "$address" ] && break
  kill -0 "$crmd_pid" 2>/dev/null || { cat "$work/crmd.log" >&2; echo "crmd exited early" >&2; exit 1; }
  sleep 0.1
done
[ -n "$address" ] || { cat "$work/crmd.log" >&2; echo "crmd did not start listening" >&2; exit 1; }

step "interop tests (Python grpcio) against crmd at $address"
mkdir -p "$work/stubs"
"$venv/bin/python" -m grpc_tools.protoc -Iproto --python_out="$work/stubs" --pyi_out="$work/stubs" \
  --grpc_python_out="$work/stubs" $(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
CRM_ADDRESS="$address" CRM_TOKEN="$(cat "$work/admin-token")" PYTHONPATH="$work/stubs" \
  "$venv/bin/pytest" -q -p no:cacheprovider tests/interop
