#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. installs what is missing (Debian packages, a Python venv with grpcio and pytest);
#   2. checks Sources/CRMProto is what scripts/generate-proto.sh makes from proto/, lints proto/ with Buf
#      and checks it against the previous commit's for breaking changes;
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
if ! "$venv/bin/python" -c 'import grpc, grpc_tools, grpc_reflection, grpc_health, grpc_status, pytest, standardwebhooks' 2>/dev/null \
  || [ ! -x "$venv/bin/buf" ]; then
  step "creating the Python venv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q grpcio grpcio-tools grpcio-reflection grpcio-health-checking grpcio-status pytest \
    standardwebhooks buf-bin
fi

# --- 2. generated code is current --------------------------------------------------------------
step "checking Sources/CRMProto against proto/"
scripts/generate-proto.sh "$work/generated" 2>"$work/generate.log" || { cat "$work/generate.log" >&2; exit 1; }
if ! diff -r "$work/generated" Sources/CRMProto >"$work/generated.diff"; then
  head -n 40 "$work/generated.diff" >&2
  echo "Sources/CRMProto is stale or hand-edited: run scripts/generate-proto.sh and commit the result." >&2
  exit 1
fi

# --- 2b. the API's conventions ---------------------------------------------------------------
# Buf's standard lint rules (proto/buf.yaml), and no wire or JSON incompatibility with the previous
# commit's proto/ unless that commit says so in proto/BREAKING.md.
step "buf lint; buf breaking against the previous commit"
(cd proto && "$venv/bin/buf" lint)
if git rev-parse -q --verify HEAD~1 >/dev/null 2>&1; then
  if ! (cd proto && "$venv/bin/buf" breaking --against "$root/.git#ref=HEAD~1,subdir=proto") >"$work/breaking.txt" 2>&1; then
    cat "$work/breaking.txt" >&2
    if git diff --quiet HEAD~1 -- proto/BREAKING.md; then
      echo "proto/ is incompatible with the previous commit's: if that is deliberate, say why in proto/BREAKING.md in the same commit." >&2
      exit 1
    fi
    echo "(deliberate: proto/BREAKING.md says why)" >&2
  fi
else
  echo "no previous commit here (a shallow clone?): buf breaking skipped" >&2
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

step "reflection serves every method of proto/crm/v1 (buf curl --reflect --list-methods)"
for file in proto/crm/v1/*.proto; do
  awk '/^service /{service=$2} /^ *rpc /{method=$2; sub(/\(.*/, "", method); print "crm.v1." service "/" method}' "$file"
done | sort >"$work/methods.want"
"$venv/bin/buf" curl --protocol grpc --http2-prior-knowledge --list-methods \
  --reflect-header "authorization: Bearer $crmd_token" "http://$crmd_address" | sort >"$work/methods.served"
if [ ! -s "$work/methods.want" ] || ! comm -23 "$work/methods.want" "$work/methods.served" | diff /dev/null - >&2; then
  echo "reflection does not describe the methods above (or proto/crm/v1 declares none)" >&2
  exit 1
fi

step "interop tests (Python grpcio) against crmd at $crmd_address"
mkdir -p "$work/stubs"
"$venv/bin/python" -m grpc_tools.protoc -Iproto --python_out="$work/stubs" --pyi_out="$work/stubs" \
  --grpc_python_out="$work/stubs" $(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" PYTHONPATH="$work/stubs" \
  "$venv/bin/pytest" -q -p no:cacheprovider tests/interop
