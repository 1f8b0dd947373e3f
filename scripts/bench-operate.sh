#!/usr/bin/env bash
# Benchmarks the operate stage against the physical limit on this machine, in one run:
#   ConvertLead p50/p99 (crm-bench), MoveOpportunityStage RPS vs pgbench of the same SQL, claims per
#   second with 16 reps on a 10k-lead pool (and the double-claim check), and the recycling job's time
#   for 100k held records all due. Prints a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-operate.sh             # defaults below; scripts/bench.sh runs it at its end
#   CONCURRENCY=16 DURATION=20 POOL_RECORDS=10000 RECYCLE_ROWS=100000 scripts/bench-operate.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

concurrency=${CONCURRENCY:-16}
duration=${DURATION:-20}
warmup=${WARMUP:-3}
pool=${POOL_SIZE:-8}
pool_records=${POOL_RECORDS:-10000}
recycle_rows=${RECYCLE_ROWS:-100000}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd, crm and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm-bench >&2
swift build -c release --product crm >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=256MB
psql_as_owner postgres -c "CREATE DATABASE crm_operate"
start_crmd "$bin/crmd" crm_operate --pool-size "$pool" --log-level warning --job-interval-seconds 0
tenant=$(psql_as_owner crm_operate -At -c "SELECT id FROM tenants WHERE is_system")
owner=$(psql_as_owner crm_operate -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")
bench() {
  CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --concurrency "$concurrency" --duration "$duration" \
    --warmup "$warmup" --json "$@"
}

step "ConvertLead (new account, contact and deal; the lead is made first, untimed): crm-bench (c=$concurrency, ${duration}s)"
convert=$(bench --scenario convert)
convert_single=$(CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --concurrency 1 --duration "$duration" \
  --warmup "$warmup" --json --scenario convert)

step "MoveOpportunityStage: crm-bench, then pgbench of the same SQL (c=$concurrency, ${duration}s)"
move_crmd=$(bench --scenario move-stage)
stage_a=$(psql_as_owner crm_operate -At -c "SELECT id FROM pipeline_stages WHERE tenant_id = '$tenant' AND name = 'Qualification'")
stage_b=$(psql_as_owner crm_operate -At -c "SELECT id FROM pipeline_stages WHERE tenant_id = '$tenant' AND name = 'Needs analysis'")
pipeline=$(psql_as_owner crm_operate -At -c "SELECT pipeline_id FROM pipeline_stages WHERE id = '$stage_a'")
psql_as_owner crm_operate -c "
  INSERT INTO accounts (tenant_id, id, owner_id, name, created_by, updated_by)
  VALUES ('$tenant', '00000000-0000-7000-9000-100000000000', '$owner', 'pgbench deals', '$owner', '$owner')" -c "
  INSERT INTO opportunities (tenant_id, id, owner_id, account_id, name, pipeline_id, stage_id, state, probability,
    forecast_category, created_by, updated_by)
  SELECT '$tenant', ('00000000-0000-7000-9000-' || lpad(n::text, 12, '0'))::uuid, '$owner',
    '00000000-0000-7000-9000-100000000000', 'pgbench deal ' || n, '$pipeline', '$stage_a', 'open', 20, 'pipeline',
    '$owner', '$owner'
  FROM generate_series(1, $concurrency) AS n"
move_pg=$(PGOPTIONS="-c role=crm_app" "$pg_bin/pgbench" -h "$pg_socket" -U crm -n -M prepared -c "$concurrency" -j 2 \
  -T "$duration" -D tenant="$tenant" -D owner="$owner" -D stage_a="$stage_a" -D stage_b="$stage_b" \
  -f scripts/bench/move_stage.sql crm_operate 2>&1)

step "Claim: $concurrency reps claim at random from a pool of $pool_records leads: crm-bench (${duration}s)"
claims=$(bench --scenario claim --pool-records "$pool_records")

step "Recycling: $recycle_rows held leads, all due, returned by one RecyclePools call"
psql_as_owner crm_operate -c "
  INSERT INTO pools (tenant_id, id, name, record_type, recycle_after_days)
  VALUES ('$tenant', '00000000-0000-7000-9000-200000000000', 'Recycle bench', 'lead', 7)" -c "
  INSERT INTO pool_members (tenant_id, pool_id, user_id) VALUES ('$tenant', '00000000-0000-7000-9000-200000000000', '$owner')" -c "
  INSERT INTO leads (tenant_id, id, owner_id, last_name, company, company_key, person_key, created_by, updated_by,
    claimed_from_pool_id, claimed_at)
  SELECT '$tenant', ('00000000-0000-7000-a000-' || lpad(to_hex(n), 12, '0'))::uuid, '$owner', 'Held ' || n,
    'Held Co ' || n, 'held co ' || n, 'held ' || n, '$owner', '$owner', '00000000-0000-7000-9000-200000000000',
    now() - interval '30 days'
  FROM generate_series(1, $recycle_rows) AS n" -c "VACUUM ANALYZE leads"
recycle_started=$(date +%s.%N)
recycle=$(CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" pools recycle --json)
recycle_done=$(date +%s.%N)
recycle_pooled=$(psql_as_owner crm_operate -At -c "SELECT count(*) FROM leads WHERE pool_id = '00000000-0000-7000-9000-200000000000'")
recycle_tasks=$(psql_as_owner crm_operate -At -c "SELECT count(*) FROM tasks WHERE alert_kind = 'recycled'")
stop_crmd

python3 - "$convert" "$move_crmd" "$move_pg" "$claims" "$recycle" "$recycle_started" "$recycle_done" "$recycle_pooled" \
  "$recycle_tasks" "$recycle_rows" "$concurrency" "$duration" "$pool_records" "$convert_single" <<'PY'
import json, re, sys
convert, move, move_pg, claims = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
single = json.loads(sys.argv[14])
recycle = json.loads(sys.argv[5])
started, done = float(sys.argv[6]), float(sys.argv[7])
pooled, tasks, rows, concurrency, duration, pool_records = map(int, sys.argv[8:14])
tps = float(re.search(r"tps = ([0-9.]+) \(without initial", move_pg).group(1))
latency = float(re.search(r"latency average = ([0-9.]+) ms", move_pg).group(1))
print(f"\nconcurrency {concurrency}, {duration} s measured\n")
print("| RPC | crmd RPS | p50 ms | p90 ms | p99 ms | errors | pgbench TPS (same SQL) | pgbench avg ms | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
print(f"| ConvertLead, one caller | {single['rps']:.0f} | {single['p50_ms']:.2f} | {single['p90_ms']:.2f} | {single['p99_ms']:.2f} | {single['errors']} | | | |")
print(f"| ConvertLead (account + contact + deal) | {convert['rps']:.0f} | {convert['p50_ms']:.2f} | {convert['p90_ms']:.2f} | {convert['p99_ms']:.2f} | {convert['errors']} | | | |")
print(f"| MoveOpportunityStage | {move['rps']:.0f} | {move['p50_ms']:.2f} | {move['p90_ms']:.2f} | {move['p99_ms']:.2f} | {move['errors']} | {tps:.0f} | {latency:.2f} | {move['rps'] / tps:.2f}× |")
print(f"| Claim (successful, {concurrency} reps, {pool_records:,}-lead pool) | {claims['rps']:.0f} | {claims['p50_ms']:.2f} | {claims['p90_ms']:.2f} | {claims['p99_ms']:.2f} | {claims['errors']} | | | |")
print(f"\nClaims: {claims['claimed_total']:,} leads claimed in all, {claims['conflicts']:,} calls lost to a faster rep "
      f"(FAILED_PRECONDITION), double claims {claims['double_claims']}, pool left {claims['pool_left']:,} "
      f"(consistent with the claims: {claims['consistent']}).")
seconds = done - started
print(f"\nRecycling: {recycle.get('returned', 0):,} of {rows:,} due leads returned by one RecyclePools call in {seconds:.1f} s "
      f"({recycle.get('returned', 0) / seconds:,.0f} records/s); {pooled:,} now in the pool, {tasks:,} 'recycled' tasks raised.")
PY
