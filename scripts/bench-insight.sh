#!/usr/bin/env bash
# Benchmarks the customer 360 (InsightService.GetCustomer360) on a seeded tenant: ACCOUNTS accounts
# with a contact each, INTERACTIONS interactions on them, a deal for every fifth account, a ticket for
# every tenth and an invoice for every second; one caller reads the 360 of accounts sampled across the
# tenant (p50/p90/p99). Then auto_explain logs the plan of every statement of one more 360, summarized
# here (PLANS=FILE keeps the full plans). Prints a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-insight.sh
#   ACCOUNTS=1000000 INTERACTIONS=10000000 DURATION=20 PLANS=/tmp/360-plans.txt scripts/bench-insight.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

accounts=${ACCOUNTS:-1000000}
interactions=${INTERACTIONS:-10000000}
duration=${DURATION:-20}
warmup=${WARMUP:-3}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd, crm and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm >&2
swift build -c release --product crm-bench >&2
bin=$(swift build -c release --show-bin-path)

# auto_explain stays off (log_min_duration -1, its default) until ALTER SYSTEM turns it on for one
# call: a setting given here on the command line would win over ALTER SYSTEM.
start_cluster -c shared_buffers=512MB -c shared_preload_libraries=auto_explain \
  -c auto_explain.log_analyze=on -c auto_explain.log_nested_statements=on -c auto_explain.log_buffers=on
psql_as_owner postgres -c "CREATE DATABASE crm_insight"
start_crmd "$bin/crmd" crm_insight --pool-size 16 --log-level warning --job-interval-seconds 0
tenant=$(psql_as_owner crm_insight -At -c "SELECT id FROM tenants WHERE is_system")
owner=$(psql_as_owner crm_insight -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")
pipeline=$(psql_as_owner crm_insight -At -c "SELECT id FROM pipelines WHERE tenant_id = '$tenant' LIMIT 1")
stage=$(psql_as_owner crm_insight -At -c "
  SELECT id FROM pipeline_stages WHERE tenant_id = '$tenant' AND pipeline_id = '$pipeline' ORDER BY position LIMIT 1")
account_id() { echo "('00000000-0000-7000-a000-' || lpad(to_hex($1), 12, '0'))::uuid"; }

step "seeding $accounts accounts and contacts, $interactions interactions, deals, tickets and invoices"
seed_started=$(date +%s)
psql_as_owner crm_insight -c "
  INSERT INTO accounts (tenant_id, id, owner_id, name, created_by, updated_by)
  SELECT '$tenant', $(account_id n), '$owner', 'Account ' || n, '$owner', '$owner' FROM generate_series(1, $accounts) AS n" -c "
  INSERT INTO contacts (tenant_id, id, owner_id, account_id, first_name, last_name, created_by, updated_by)
  SELECT '$tenant', gen_random_uuid(), '$owner', $(account_id n), 'Ada', 'Person ' || n, '$owner', '$owner'
  FROM generate_series(1, $accounts) AS n" -c "
  INSERT INTO opportunities (tenant_id, id, owner_id, account_id, name, pipeline_id, stage_id, state, amount_currency,
    amount_units, amount_nanos, probability, forecast_category, created_by, updated_by)
  SELECT '$tenant', gen_random_uuid(), '$owner', $(account_id n), 'Deal ' || n, '$pipeline', '$stage', 'open', 'USD',
    1000 + n % 9000, 0, 10, 'pipeline', '$owner', '$owner'
  FROM generate_series(1, $accounts, 5) AS n" -c "
  INSERT INTO tickets (tenant_id, id, subject, status, priority, type, channel, account_id, opened_at, status_changed_at,
    created_by, updated_by)
  SELECT '$tenant', gen_random_uuid(), 'Ticket ' || n, 'open', 'normal', 'question', 'api', $(account_id n), now(), now(),
    '$owner', '$owner'
  FROM generate_series(1, $accounts, 10) AS n" -c "
  INSERT INTO invoices (tenant_id, id, source_system, external_id, source_version, account_id, number, currency, issue_date,
    due_date, vendor_status, state, subtotal, tax, total)
  SELECT '$tenant', gen_random_uuid(), 'bench', 'in_' || n, 1, $(account_id n), 'INV-' || n, 'USD',
    date '2026-01-01' + n % 300, date '2026-01-31' + n % 300, 'open', 'open', 100 + n % 900, 0, 100 + n % 900
  FROM generate_series(1, $accounts, 2) AS n" -c "
  INSERT INTO interactions (tenant_id, id, owner_id, kind, subject, start_at, links, created_by, updated_by)
  SELECT '$tenant', ('00000000-0000-7000-b000-' || lpad(to_hex(n), 12, '0'))::uuid, '$owner', 'call', 'Call ' || n,
    timestamptz '2026-01-01' + make_interval(mins => n % 480000),
    ARRAY['account:' || $(account_id "n % $accounts + 1")::text], '$owner', '$owner'
  FROM generate_series(1, $interactions) AS n" -c "
  INSERT INTO interaction_links (tenant_id, interaction_id, record_type, record_id, occurred_at)
  SELECT '$tenant', ('00000000-0000-7000-b000-' || lpad(to_hex(n), 12, '0'))::uuid, 'account', $(account_id "n % $accounts + 1"),
    timestamptz '2026-01-01' + make_interval(mins => n % 480000)
  FROM generate_series(1, $interactions) AS n" -c "VACUUM ANALYZE"
seed_seconds=$(( $(date +%s) - seed_started ))

step "GetCustomer360 of sampled accounts, one caller, ${duration}s"
result=$(CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --scenario customer360 --concurrency 1 \
  --duration "$duration" --warmup "$warmup" --json)

step "the plan of every statement of one 360 (auto_explain)"
sample=$(psql_as_owner crm_insight -At -c "SELECT id FROM accounts WHERE name = 'Account $((accounts / 2))'")
psql_as_owner crm_insight -c "ALTER SYSTEM SET auto_explain.log_min_duration = 0" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
log_from=$(wc -l <"$work/pg/server.log")
CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" 360 "$sample" >"$work/360.txt"
psql_as_owner crm_insight -c "ALTER SYSTEM RESET auto_explain.log_min_duration" -c "SELECT pg_reload_conf()" >/dev/null
tail -n +"$((log_from + 1))" "$work/pg/server.log" >"$work/plans.txt"
[ -z "${PLANS:-}" ] || cp "$work/plans.txt" "$PLANS"
stop_crmd

python3 - "$result" "$accounts" "$interactions" "$seed_seconds" "$work/plans.txt" <<'PY'
import json, re, sys
run, accounts, interactions, seed, plans = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
print("| measurement | figure |")
print("|---|---|")
print(f"| GetCustomer360, {accounts:,} accounts, {interactions:,} interactions, one caller | "
      f"p50 {run['p50_ms']:.2f} ms, p90 {run['p90_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, {run['rps']:.0f}/s, errors {run['errors']} |")
print(f"| seeding | {int(seed)} s |")
print("\nStatements of one 360 (auto_explain: duration, first plan node, the statement's start):")
text = open(plans).read()
for block in re.split(r"\n(?=\S.*LOG:  duration)", text):
    m = re.search(r"duration: ([0-9.]+) ms", block)
    if not m:
        continue
    query = re.search(r"Query Text: (.*?)\n\t(?:[A-Z][a-z]+|->)", block, re.S)
    node = re.search(r"\n\t([A-Z][^\n]*?\(cost[^\n]*)", block)
    q = " ".join(query.group(1).split())[:90] if query else "?"
    n = re.sub(r"\s*\(cost=.*", "", node.group(1)).strip() if node else "?"
    print(f"- {float(m.group(1)):.2f} ms — {n} — `{q}`")
PY
