#!/usr/bin/env bash
# Benchmarks crmd against the physical limit on this machine, in one run:
#   crm-bench (real gRPC) for GetAccount and CreateAccount on a tenant seeded with 100k accounts, and
#   pgbench running the same SQL at the same concurrency against the same database.
# Prints a Markdown table with the ratios; the figures in BENCHMARKS.md come from here.
#
#   scripts/bench.sh                     # defaults below
#   CONCURRENCY=16 DURATION=20 ACCOUNTS=100000 scripts/bench.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

concurrency=${CONCURRENCY:-16}
duration=${DURATION:-20}
warmup=${WARMUP:-3}
accounts=${ACCOUNTS:-100000}
pool=${POOL_SIZE:-8}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm-bench >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=256MB
psql_as_owner postgres -c "CREATE DATABASE crm_bench"
start_crmd "$bin/crmd" crm_bench --pool-size "$pool" --log-level warning

step "seeding $accounts accounts"
tenant=$(psql_as_owner crm_bench -At -c "SELECT id FROM tenants WHERE is_system")
owner=$(psql_as_owner crm_bench -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")
psql_as_owner crm_bench -c "
  INSERT INTO accounts (tenant_id, id, owner_id, name, website, domain, industry, phone, tags, billing_address, created_by, updated_by)
  SELECT '$tenant', ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, '$owner',
         'Company ' || n, 'https://company' || n || '.example', 'company' || n || '.example', 'Industry ' || (n % 40),
         '+1415555' || lpad((n % 10000)::text, 4, '0'), ARRAY['seed', 'tier' || (n % 5)],
         '{\"region_code\": \"US\", \"locality\": \"San Francisco\"}'::jsonb, '$owner', '$owner'
  FROM generate_series(1, $accounts) AS n" -c "VACUUM ANALYZE accounts"

run_pgbench() {
  PGOPTIONS="-c role=crm_app" "$pg_bin/pgbench" -h "$pg_socket" -U crm -n -M prepared -c "$concurrency" -j 2 \
    -T "$duration" -D tenant="$tenant" -D owner="$owner" -D accounts="$accounts" -f "$1" crm_bench 2>&1
}

step "Health.Check (the floor): crm-bench, then pgbench (c=$concurrency, ${duration}s)"
health_crmd=$("$bin/crm-bench" --address "$crmd_address" --token none --scenario health \
  --concurrency "$concurrency" --duration "$duration" --warmup "$warmup" --json)
health_pg=$(run_pgbench scripts/bench/health_check.sql)

step "GetAccount: crm-bench, then pgbench (c=$concurrency, ${duration}s)"
get_crmd=$(CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --scenario get \
  --concurrency "$concurrency" --duration "$duration" --warmup "$warmup" --sample 100000 --json)
get_pg=$(run_pgbench scripts/bench/get_account.sql)

step "CreateAccount: crm-bench, then pgbench (c=$concurrency, ${duration}s)"
create_crmd=$(CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --scenario create \
  --concurrency "$concurrency" --duration "$duration" --warmup "$warmup" --json)
create_pg=$(run_pgbench scripts/bench/create_account.sql)

crmd_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$crmd_pid/status")

python3 - "$get_crmd" "$get_pg" "$create_crmd" "$create_pg" "$concurrency" "$duration" "$accounts" "$pool" "$crmd_rss_kb" \
  "$health_crmd" "$health_pg" <<'PY'
import json, re, sys
get_crmd, get_pg, create_crmd, create_pg = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
concurrency, duration, accounts, pool, rss = sys.argv[5:10]
health_crmd, health_pg = json.loads(sys.argv[10]), sys.argv[11]
def pg(text):
    tps = float(re.search(r"tps = ([0-9.]+) \(without initial", text).group(1))
    latency = float(re.search(r"latency average = ([0-9.]+) ms", text).group(1))
    return tps, latency
rows = []
for name, crmd, pgtext in (("Health.Check (floor)", health_crmd, health_pg), ("GetAccount", get_crmd, get_pg), ("CreateAccount", create_crmd, create_pg)):
    tps, latency = pg(pgtext)
    rows.append(f"| {name} | {crmd['rps']:.0f} | {crmd['p50_ms']:.2f} | {crmd['p90_ms']:.2f} | {crmd['p99_ms']:.2f} | {crmd['errors']} | {tps:.0f} | {latency:.2f} | {crmd['rps'] / tps:.2f}× |")
print(f"\nconcurrency {concurrency}, {duration} s measured, {accounts} seeded accounts, crmd pool {pool}, crmd peak RSS {int(rss) // 1024} MB\n")
print("| RPC | crmd RPS | p50 ms | p90 ms | p99 ms | errors | pgbench TPS (same SQL) | pgbench avg ms | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
print(f"\nGetAccount reaches {get_crmd['rps'] / health_crmd['rps']:.0%} of the Health.Check floor on the same server.")
PY
