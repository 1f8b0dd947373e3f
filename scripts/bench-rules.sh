#!/usr/bin/env bash
# Benchmarks what trigger rules cost (issue 15, docs/rules.md), in one run:
#   1. CreateLead (crm-bench --scenario create-lead, closed loop) without rules, with ten lead rules,
#      and without them again (so drift from the growing table shows);
#   2. crm import of IMPORT_ROWS generated leads into a fresh database: without rules, with ten rules
#      none of which matches an imported row (the cost of evaluating them), and with the ten rules of
#      step 1, two of which act on most imported rows (evaluation plus the actions' writes).
#   The ten rules mix what tenants write: four set a field, three tag, two create tasks, one emits an
#   event; some match most records, some none. Prints a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-rules.sh
#   DURATION=30 IMPORT_ROWS=200000 scripts/bench-rules.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

duration=${DURATION:-20}
concurrency=${CONCURRENCY:-16}
import_rows=${IMPORT_ROWS:-100000}
pool=${POOL_SIZE:-8}

ensure_packages libpq-dev postgresql postgresql-contrib python3
step "building crmd, crm and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm-bench >&2
swift build -c release --product crm >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=256MB
crm() { CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" "$@"; }
bench() {
  CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --json --scenario create-lead \
    --concurrency "$concurrency" --duration "$duration" --warmup 3
}

# define_rules [quiet] — the ten lead rules, on the running crmd. With quiet, the two that match
# imported rows (every row has a title; many a country) look for values no row has, so an import pays
# for evaluating ten rules but none of their actions.
define_rules() {
  local us='region_code = US' titled='title changed'
  if [ "${1:-}" = quiet ]; then us='region_code = ZZ' titled='title = "Chief Rules Officer"'; fi
  crm rules create --type lead --name "Web leads get worked" --when 'source = web_form' --set status=working >/dev/null
  crm rules create --type lead --name "Enterprise" --when 'company_size > 500' --tag enterprise >/dev/null
  crm rules create --type lead --name "Software nurture" --when 'industry = Software' --set campaign=software-nurture >/dev/null
  crm rules create --type lead --name "US" --when "$us" --tag us >/dev/null
  crm rules create --type lead --name "Finance compliance" --when 'industry changed to Finance' \
    --task "Compliance check" --task-due-hours 48 >/dev/null
  crm rules create --type lead --name "Machinery event" --when 'industry = Machinery' --event machinery_lead >/dev/null
  crm rules create --type lead --name "Titled" --when "$titled" --set 'source_detail="has a title"' >/dev/null
  crm rules create --type lead --name "Qualified follow-up" --on update --when 'status changed to qualified' \
    --task "Send the proposal" --task-due-hours 24 >/dev/null
  crm rules create --type lead --name "VIP" --when 'tags has vip' --set 'source_detail=VIP' >/dev/null
  crm rules create --type lead --name "Hot" --when 'score > 80' --tag hot >/dev/null
  [ "$(crm rules list --json | wc -l)" -eq 10 ]
}

psql_as_owner postgres -c "CREATE DATABASE crm_rules"
start_crmd "$bin/crmd" crm_rules --pool-size "$pool" --log-level warning --job-interval-seconds 0
step "CreateLead without rules (c=$concurrency, ${duration}s)"
before=$(bench)
step "CreateLead with ten rules"
define_rules
with=$(bench)
step "CreateLead without rules again"
for id in $(crm rules list --json | python3 -c 'import json,sys; [print(json.loads(l)["id"]) for l in sys.stdin]'); do
  crm rules delete "$id"
done
after=$(bench)
fired=$(psql_as_owner crm_rules -At -c "SELECT count(*) FROM change_log WHERE rule_id IS NOT NULL")
stop_crmd

step "generating $import_rows leads"
python3 scripts/bench/generate_leads.py "$import_rows" "$work/leads.csv" "$work/candidates.csv"
# import_into DATABASE [define] — a fresh crmd on DATABASE imports the CSV; sets $import_seconds.
import_into() {
  psql_as_owner postgres -c "CREATE DATABASE $1"
  start_crmd "$bin/crmd" "$1" --pool-size "$pool" --log-level warning --job-interval-seconds 0
  [ -n "${2:-}" ] && define_rules "$2"
  local started ended
  started=$(date +%s.%N)
  crm import "$work/leads.csv" --type leads --duplicate-action allow --allow-errors >/dev/null 2>"$work/import.log"
  ended=$(date +%s.%N)
  import_seconds=$(python3 -c "print($ended - $started)")
  stop_crmd
}
step "crm import of $import_rows leads without rules"
import_into crm_rules_import_plain
plain_seconds=$import_seconds
step "crm import of $import_rows leads with the ten rules, none matching an imported row"
import_into crm_rules_import_quiet quiet
quiet_seconds=$import_seconds
step "crm import of $import_rows leads with the ten rules, two acting on most rows"
import_into crm_rules_import_ruled loud
ruled_seconds=$import_seconds
import_fired=$(psql_as_owner crm_rules_import_ruled -At -c "SELECT count(*) FROM change_log WHERE rule_id IS NOT NULL")

python3 - "$before" "$with" "$after" "$fired" "$import_rows" "$plain_seconds" "$ruled_seconds" "$import_fired" "$quiet_seconds" <<'PY'
import json, sys
before, with_rules, after = (json.loads(a) for a in sys.argv[1:4])
fired, rows, plain, ruled, import_fired = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
quiet = float(sys.argv[9])
def line(name, r):
    return f"| CreateLead, {name} | {r['rps']:,.0f}/s | p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms |"
print("| measurement | throughput | latency |")
print("|---|---|---|")
print(line("no rules", before))
print(line("ten rules", with_rules))
print(line("no rules again", after))
print(f"| CreateLead with ten rules ÷ mean of the runs without | {with_rules['rps'] / ((before['rps'] + after['rps']) / 2):.2f}× | {fired:,} rule entries written |")
print(f"| import of {rows:,} leads, no rules | {rows / plain:,.0f} rows/s | {plain:.1f} s |")
print(f"| import of {rows:,} leads, ten rules matching no row | {rows / quiet:,.0f} rows/s | {quiet:.1f} s; {plain / quiet:.2f}× of no rules |")
print(f"| import of {rows:,} leads, ten rules, two acting on most rows | {rows / ruled:,.0f} rows/s | {ruled:.1f} s, {import_fired:,} rule entries; {plain / ruled:.2f}× of no rules |")
PY
