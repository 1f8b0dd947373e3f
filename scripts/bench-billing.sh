#!/usr/bin/env bash
# Benchmarks the billing link's reads on a seeded tenant, in one run:
#   GetAccountFinancials on a hierarchy (a parent and 100 children) holding GROUP_INVOICES invoices
#   (p50/p99, one caller); ListReceivables' first page over ACCOUNTS accounts and INVOICES invoices
#   (one caller); and, as the floor, psql running the report's aggregate itself (EXPLAIN ANALYZE).
#   Prints a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-billing.sh
#   ACCOUNTS=100000 INVOICES=1000000 GROUP_INVOICES=10000 DURATION=20 scripts/bench-billing.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

accounts=${ACCOUNTS:-100000}
invoices=${INVOICES:-1000000}
group_invoices=${GROUP_INVOICES:-10000}
duration=${DURATION:-20}
warmup=${WARMUP:-3}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm-bench >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=256MB
psql_as_owner postgres -c "CREATE DATABASE crm_billing"
start_crmd "$bin/crmd" crm_billing --pool-size 8 --log-level warning --job-interval-seconds 0
tenant=$(psql_as_owner crm_billing -At -c "SELECT id FROM tenants WHERE is_system")
owner=$(psql_as_owner crm_billing -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")
bench() {
  CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --duration "$duration" --warmup "$warmup" --json "$@"
}
account_id() { printf '00000000-0000-7000-a000-%012x' "$1"; }
parent=$(account_id 1)

step "seeding $accounts accounts (account 1 the parent of accounts 2-101) and $invoices invoices, 2 of 3 open"
seed_started=$(date +%s)
psql_as_owner crm_billing -c "
  INSERT INTO accounts (tenant_id, id, owner_id, name, parent_id, created_by, updated_by)
  SELECT '$tenant', ('00000000-0000-7000-a000-' || lpad(to_hex(n), 12, '0'))::uuid, '$owner', 'Account ' || n,
    CASE WHEN n BETWEEN 2 AND 101 THEN '$parent'::uuid END, '$owner', '$owner'
  FROM generate_series(1, $accounts) AS n" -c "
  INSERT INTO invoices (tenant_id, id, source_system, external_id, source_version, account_id, number, currency, issue_date,
    due_date, vendor_status, state, subtotal, tax, total)
  SELECT '$tenant', gen_random_uuid(), 'bench', 'in_' || n, 1,
    ('00000000-0000-7000-a000-' || lpad(to_hex(n % $accounts + 1), 12, '0'))::uuid, 'INV-' || n, 'USD',
    date '2026-01-01' + n % 330, date '2026-01-31' + n % 330, 'open', CASE WHEN n % 3 = 0 THEN 'paid' ELSE 'open' END,
    100 + n % 900, 0, 100 + n % 900
  FROM generate_series(1, $invoices) AS n" -c "
  INSERT INTO invoices (tenant_id, id, source_system, external_id, source_version, account_id, number, currency, issue_date,
    due_date, vendor_status, state, subtotal, tax, total)
  SELECT '$tenant', gen_random_uuid(), 'bench', 'group_' || n, 1,
    ('00000000-0000-7000-a000-' || lpad(to_hex(n % 101 + 1), 12, '0'))::uuid, 'G-' || n, 'USD',
    date '2026-01-01' + n % 330, date '2026-01-31' + n % 330, 'open', CASE WHEN n % 3 = 0 THEN 'paid' ELSE 'open' END,
    100 + n % 900, 0, 100 + n % 900
  FROM generate_series(1, greatest($group_invoices - $invoices * 101 / $accounts, 0)) AS n" -c "
  INSERT INTO payments (tenant_id, id, source_system, external_id, source_version, account_id, currency, amount, received_on,
    state)
  SELECT '$tenant', gen_random_uuid(), 'bench', 'py_' || i.external_id, 1, i.account_id, 'USD', i.total, i.due_date, 'completed'
  FROM invoices i WHERE i.tenant_id = '$tenant' AND i.state = 'paid'" -c "
  INSERT INTO payment_allocations (tenant_id, payment_id, invoice_id, currency, amount)
  SELECT '$tenant', p.id, i.id, 'USD', p.amount FROM payments p
  JOIN invoices i ON i.tenant_id = p.tenant_id AND i.source_system = 'bench' AND 'py_' || i.external_id = p.external_id" \
  -c "VACUUM ANALYZE accounts" -c "VACUUM ANALYZE invoices" -c "VACUUM ANALYZE payments" -c "VACUUM ANALYZE payment_allocations"
seed_seconds=$(( $(date +%s) - seed_started ))
group_count=$(psql_as_owner crm_billing -At -c "
  SELECT count(*) FROM invoices WHERE account_id = '$parent' OR account_id IN (SELECT id FROM accounts WHERE parent_id = '$parent')")
open_count=$(psql_as_owner crm_billing -At -c "SELECT count(*) FROM invoices WHERE state = 'open'")

step "GetAccountFinancials on the parent with its 100 children ($group_count invoices), one caller"
financials=$(bench --concurrency 1 --scenario financials --account "$parent")
step "ListReceivables, first page of 50, over $accounts accounts and $open_count open invoices, one caller"
receivables=$(bench --concurrency 1 --scenario receivables --duration "$((duration > 30 ? duration : 30))")
step "the report's aggregate in psql (EXPLAIN ANALYZE), the floor"
floor=$(psql_as_owner crm_billing -At -c "SET ROLE crm_app" -c "SELECT set_config('crm.tenant_id', '$tenant', false)" -c "
  EXPLAIN (ANALYZE, COSTS OFF) SELECT r.*, a.name FROM (
    SELECT account_id, currency, sum(balance) AS due, coalesce(sum(balance) FILTER (WHERE days > 0), 0) AS overdue,
      count(*) AS n, max(days) AS oldest
    FROM (SELECT account_id, currency, greatest(current_date - due_date, 0) AS days, balance FROM invoices
          WHERE tenant_id = '$tenant' AND state IN ('open', 'uncollectible') AND balance > 0 AND issue_date <= current_date) i
    GROUP BY account_id, currency) r JOIN accounts a ON a.tenant_id = '$tenant' AND a.id = r.account_id
  ORDER BY r.overdue DESC, r.due DESC, r.account_id DESC, r.currency DESC LIMIT 51" | tail -n 3)
stop_crmd

python3 - "$financials" "$receivables" "$floor" "$group_count" "$accounts" "$open_count" "$seed_seconds" <<'PY'
import json, re, sys
financials, receivables = json.loads(sys.argv[1]), json.loads(sys.argv[2])
floor, group, accounts, open_count, seed = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
execution = re.search(r"Execution Time: ([0-9.]+) ms", floor)
print("| measurement | figure |")
print("|---|---|")
print(f"| GetAccountFinancials, parent + 100 children, {int(group):,} invoices, one caller | "
      f"p50 {financials['p50_ms']:.2f} ms, p99 {financials['p99_ms']:.2f} ms, {financials['rps']:.0f}/s |")
print(f"| ListReceivables first page, {int(accounts):,} accounts, {int(open_count):,} open invoices, one caller | "
      f"p50 {receivables['p50_ms']:.0f} ms, p99 {receivables['p99_ms']:.0f} ms |")
if execution:
    print(f"| the same aggregate in psql (EXPLAIN ANALYZE) | {float(execution.group(1)):.0f} ms |")
print(f"| seeding | {int(seed)} s |")
PY
