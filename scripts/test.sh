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
source scripts/lib/common.sh

# --- 1. dependencies --------------------------------------------------------------------------
ensure_packages libpq-dev postgresql postgresql-contrib protobuf-compiler libprotobuf-dev python3-venv
venv="$root/.build/venv"
if ! "$venv/bin/python" -c 'import grpc, grpc_tools, grpc_reflection, grpc_health, grpc_status, pytest, standardwebhooks' 2>/dev/null; then
  step "creating the Python venv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q grpcio grpcio-tools grpcio-reflection grpcio-health-checking grpcio-status pytest \
    standardwebhooks
fi

# --- 2. generated code is current --------------------------------------------------------------
step "checking Sources/CRMProto against proto/"
scripts/generate-proto.sh "$work/generated" 2>"$work/generate.log" || { cat "$work/generate.log" >&2; exit 1; }
if ! diff -r "$work/generated" Sources/CRMProto >"$work/generated.diff"; then
  head -n 40 "$work/generated.diff" >&2
  echo "Sources/CRMProto is stale or hand-edited: run scripts/generate-proto.sh and commit the result." >&2
  exit 1
fi

# --- 3. a throwaway cluster ------------------------------------------------------------------
start_cluster -c fsync=off -c synchronous_commit=off
psql_as_owner postgres -c "CREATE DATABASE crm_test" -c "CREATE DATABASE crm_interop"
export CRM_TEST_DATABASE_URL="host=$pg_socket dbname=crm_test user=crm"

# --- 4. swift test ----------------------------------------------------------------------------
step "swift test"
swift build --build-tests
swift test --skip-build

# --- 5. interop: crmd + Python grpcio ---------------------------------------------------------
step "starting crmd for the interop tests"
swift build --product crmd
# The webhook interop test's receiver listens on loopback.
CRM_AUTH_CACHE_SECONDS=0 start_crmd "$(swift build --show-bin-path)/crmd" crm_interop --webhook-allow-private-addresses

step "interop tests (Python grpcio) against crmd at $crmd_address"
mkdir -p "$work/stubs"
"$venv/bin/python" -m grpc_tools.protoc -Iproto --python_out="$work/stubs" --pyi_out="$work/stubs" \
  --grpc_python_out="$work/stubs" $(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" PYTHONPATH="$work/stubs" \
  "$venv/bin/pytest" -q -p no:cacheprovider tests/interop
