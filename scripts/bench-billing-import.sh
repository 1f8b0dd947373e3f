#!/usr/bin/env bash
# Benchmarks importing a billing export: crm import --type invoices of LINES invoice lines
# (LINES_PER_INVOICE to an invoice, over ACCOUNTS accounts) into a fresh crmd, against psql \copy of
# the same invoices and lines straight into the same tables (invoices and invoice_lines, with their
# indexes, checks, foreign keys and triggers) of a second database migrated by the same crmd. Prints
# a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-billing-import.sh
#   LINES=1000000 LINES_PER_INVOICE=5 ACCOUNTS=10000 POOL_SIZE=8 scripts/bench-billing-import.sh
#   # to see the plans: PostgreSQL options for the cluster, and where to copy its log after the import
#   PG_OPTIONS="-c shared_preload_libraries=auto_explain -c auto_explain.log_min_duration=10 \
#     -c auto_explain.log_analyze=on -c auto_explain.log_nested_statements=on" PG_LOG=/tmp/pg.log \
#     LINES=100000 scripts/bench-billing-import.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

lines=${LINES:-1000000}
per_invoice=${LINES_PER_INVOICE:-5}
accounts=${ACCOUNTS:-10000}
pool=${POOL_SIZE:-8}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd and crm (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=256MB ${PG_OPTIONS:-}

# migrate DATABASE — creates DATABASE, lets crmd migrate it and seeds $accounts accounts; sets $tenant
# and $owner.
migrate() {
  psql_as_owner postgres -c "CREATE DATABASE $1"
  start_crmd "$bin/crmd" "$1" --pool-size "$pool" --log-level warning --job-interval-seconds 0
  tenant=$(psql_as_owner "$1" -At -c "SELECT id FROM tenants WHERE is_system")
  owner=$(psql_as_owner "$1" -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")
  psql_as_owner "$1" -c "
    INSERT INTO accounts (tenant_id, id, owner_id, name, created_by, updated_by)
    SELECT '$tenant', ('00000000-0000-7000-a000-' || lpad(to_hex(n), 12, '0'))::uuid, '$owner', 'Account ' || n, '$owner',
      '$owner'
    FROM generate_series(1, $accounts) AS n" -c "VACUUM ANALYZE accounts"
}

step "generating $lines invoice lines, $per_invoice to an invoice, over $accounts accounts"
# The import file: a row per line, the invoice's columns repeated. The \copy files: the same invoices
# and lines as the tables hold them (tenant and ids filled in per database by sed).
python3 - "$lines" "$per_invoice" "$accounts" "$work" <<'PY'
import sys
lines, per, accounts, work = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
invoices = (lines + per - 1) // per
with open(f"{work}/lines.csv", "w") as f, open(f"{work}/copy-invoices.csv", "w") as fi, \
     open(f"{work}/copy-lines.csv", "w") as fl:
    f.write("source_system,external_id,source_version,account_id,number,currency,issue_date,due_date,state,"
            "description,quantity,unit_price,amount,line_tax\n")
    written = 0
    for n in range(invoices):
        account = f"00000000-0000-7000-a000-{n % accounts + 1:012x}"
        issue = f"2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}"
        due = f"2027-{n % 12 + 1:02d}-{n % 28 + 1:02d}"
        state = "paid" if n % 3 == 0 else "open"
        count = min(per, lines - written)
        subtotal = tax = 0
        for k in range(count):
            quantity = k + 1
            price = 10 + (n + k) % 90
            amount, line_tax = quantity * price, quantity * price // 5
            subtotal, tax = subtotal + amount, tax + line_tax
            f.write(f"bench,in_{n},1,{account},INV-{n},USD,{issue},{due},{state},Plan {k} of invoice {n},"
                    f"{quantity},{price}.00,{amount}.00,{line_tax}.00\n")
            fl.write(f"TENANT,{n:012x},{k + 1},charge,Plan {k} of invoice {n},{quantity},{price}.00,{amount}.00,"
                     f"{line_tax}.00\n")
        written += count
        fi.write(f"TENANT,{n:012x},bench,in_{n},1,{account},INV-{n},USD,{issue},{due},{state},{state},{subtotal}.00,"
                 f"{tax}.00,{subtotal + tax}.00,OWNER,OWNER\n")
PY
chmod 644 "$work"/*.csv
invoice_count=$(( (lines + per_invoice - 1) / per_invoice ))

step "crm import --type invoices of $lines lines ($invoice_count invoices)"
migrate crm_import
started=$(date +%s.%N)
CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" import "$work/lines.csv" --type invoices --batch-size 1000 \
  --allow-errors --import-id bench 2>"$work/import.err" >/dev/null
ended=$(date +%s.%N)
import_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$crmd_pid/status")
import_summary=$(tail -n 1 "$work/import.err")
[ -z "${PG_LOG:-}" ] || cp "$work/pg/server.log" "$PG_LOG"
imported=$(psql_as_owner crm_import -At -c "SELECT count(*) FROM invoices" -c "SELECT count(*) FROM invoice_lines" | paste -sd/)
stop_crmd

step "psql \\copy of the same $invoice_count invoices and $lines lines into the same tables of a fresh database"
migrate crm_copy
stop_crmd
# Ids as the import makes them (UUID v7-like: time-ordered), so both load the same index shapes.
sed -i "s/^TENANT,\([0-9a-f]*\),/$tenant,01900000-0000-7000-8000-\1,/; s/OWNER/$owner/g" "$work/copy-invoices.csv"
sed -i "s/^TENANT,\([0-9a-f]*\),/$tenant,01900000-0000-7000-8000-\1,/" "$work/copy-lines.csv"
copy_started=$(date +%s.%N)
psql_as_owner crm_copy -c "\\copy invoices (tenant_id, id, source_system, external_id, source_version, account_id, number,
  currency, issue_date, due_date, vendor_status, state, subtotal, tax, total, created_by, updated_by) FROM '$work/copy-invoices.csv' CSV"
copy_invoices=$(date +%s.%N)
psql_as_owner crm_copy -c "\\copy invoice_lines (tenant_id, invoice_id, line_number, kind, description, quantity, unit_price,
  amount, tax) FROM '$work/copy-lines.csv' CSV"
copy_done=$(date +%s.%N)
copied=$(psql_as_owner crm_copy -At -c "SELECT count(*) FROM invoices" -c "SELECT count(*) FROM invoice_lines" | paste -sd/)

python3 - "$lines" "$invoice_count" "$started" "$ended" "$import_rss_kb" "$import_summary" "$imported" \
  "$copy_started" "$copy_invoices" "$copy_done" "$copied" <<'PY'
import sys
lines, invoices = int(sys.argv[1]), int(sys.argv[2])
started, ended, rss, summary, imported = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
copy_started, copy_invoices, copy_done, copied = float(sys.argv[8]), float(sys.argv[9]), float(sys.argv[10]), sys.argv[11]
took, copy = ended - started, copy_done - copy_started
print("| Billing import | invoices / lines written | seconds | lines/s | crmd peak RSS |")
print("|---|---|---|---|---|")
print(f"| crm import --type invoices (crmd, release) | {imported} | {took:.1f} | {lines / took:,.0f} | {rss // 1024} MB |")
print(f"| psql \\copy into invoices, then invoice_lines | {copied} | {copy:.1f} "
      f"({copy_invoices - copy_started:.1f} + {copy_done - copy_invoices:.1f}) | {lines / copy:,.0f} | |")
print(f"\ncrm import / psql \\copy: {copy / took:.2f}×")
print(f"import: {summary}")
PY
