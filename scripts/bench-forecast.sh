#!/usr/bin/env bash
# Benchmarks the forecast (ForecastService.GetForecast) of a VP over 1,000 reps: the VP manages Sales,
# 20 managers in Sales each manage a team of 50 reps under it, and OPPORTUNITIES deals of those 1,020
# people close over 2026-2027 (a tenth each of won and lost, the rest open in pipeline, best case and
# commit), with a quota per rep and quarter and an owner adjustment per rep and a manager adjustment
# per manager for the quarter read. The VP reads PERIOD's forecast (p50/p90/p99) with one caller and
# with four; pgbench runs the same SQL in the same round trips as crm_app (scripts/bench/forecast.sql
# with the owners filled in) for the physical limit; EXPLAIN shows the sum's plan. Prints a Markdown
# summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-forecast.sh
#   OPPORTUNITIES=1000000 PERIOD=2027-Q1 DURATION=20 scripts/bench-forecast.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

opportunities=${OPPORTUNITIES:-1000000}
period=${PERIOD:-2027-Q1}
duration=${DURATION:-20}
warmup=${WARMUP:-3}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd, crm and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm >&2
swift build -c release --product crm-bench >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=512MB
psql_as_owner postgres -c "CREATE DATABASE crm_forecast"
start_crmd "$bin/crmd" crm_forecast --pool-size 16 --log-level warning --job-interval-seconds 0
tenant=$(psql_as_owner crm_forecast -At -c "SELECT id FROM tenants WHERE is_system")
admin=$(psql_as_owner crm_forecast -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")
pipeline=$(psql_as_owner crm_forecast -At -c "SELECT id FROM pipelines WHERE tenant_id = '$tenant' LIMIT 1")
stage() {
  psql_as_owner crm_forecast -At -c "
    SELECT id FROM pipeline_stages WHERE tenant_id = '$tenant' AND pipeline_id = '$pipeline' AND category = '$1'
    ORDER BY position LIMIT 1"
}
open_stage=$(stage open)
won_stage=$(stage won)
lost_stage=$(stage lost)
# People: f000-0 the VP, f000-1..20 the managers, f200-1..1000 the reps; teams f100-0 Sales, f100-1..20.
person() { echo "('00000000-0000-7000-$1-' || lpad(to_hex($2), 12, '0'))::uuid"; }
vp=00000000-0000-7000-f000-000000000000

step "seeding 1,021 people in 21 teams, $opportunities deals, quotas and adjustments"
seed_started=$(date +%s)
psql_as_owner crm_forecast -c "
  INSERT INTO users (tenant_id, id, email, display_name, role)
  SELECT '$tenant'::uuid, $(person f000 n), 'manager' || n || '@bench.example', CASE n WHEN 0 THEN 'VP' ELSE 'Manager ' || n END,
    'manager'
  FROM generate_series(0, 20) AS n
  UNION ALL
  SELECT '$tenant'::uuid, $(person f200 n), 'rep' || n || '@bench.example', 'Rep ' || n, 'sales_rep' FROM generate_series(1, 1000) AS n" -c "
  INSERT INTO teams (tenant_id, id, name, parent_team_id, manager_id) VALUES ('$tenant', $(person f100 0), 'Sales', NULL, '$vp')" -c "
  INSERT INTO teams (tenant_id, id, name, parent_team_id, manager_id)
  SELECT '$tenant'::uuid, $(person f100 n), 'Team ' || n, $(person f100 0), $(person f000 n) FROM generate_series(1, 20) AS n" -c "
  UPDATE users SET team_id = $(person f100 0) WHERE tenant_id = '$tenant' AND email LIKE 'manager%@bench.example'" -c "
  UPDATE users u SET team_id = $(person f100 "(substr(u.email, 4, strpos(u.email, '@') - 4)::int - 1) % 20 + 1")
  WHERE tenant_id = '$tenant' AND email LIKE 'rep%@bench.example'" -c "
  INSERT INTO accounts (tenant_id, id, owner_id, name, created_by, updated_by)
  SELECT '$tenant'::uuid, $(person a000 n), '$admin', 'Account ' || n, '$admin', '$admin' FROM generate_series(1, 10000) AS n" -c "
  INSERT INTO opportunities (tenant_id, id, owner_id, account_id, name, pipeline_id, stage_id, state, amount_currency,
    amount_units, amount_nanos, probability, forecast_category, close_date, closed_at, created_by, updated_by)
  SELECT '$tenant'::uuid, gen_random_uuid(),
    CASE WHEN n % 50 = 0 THEN $(person f000 "n / 50 % 20 + 1") ELSE $(person f200 "n % 1000 + 1") END,
    $(person a000 "n % 10000 + 1"), 'Deal ' || n, '$pipeline',
    CASE n % 10 WHEN 8 THEN '$won_stage'::uuid WHEN 9 THEN '$lost_stage'::uuid ELSE '$open_stage'::uuid END,
    CASE n % 10 WHEN 8 THEN 'won' WHEN 9 THEN 'lost' ELSE 'open' END, 'USD', 1000 + n % 90000, (n % 100) * 10000000,
    CASE n % 10 WHEN 8 THEN 100 WHEN 9 THEN 0 WHEN 6 THEN 80 WHEN 7 THEN 80 WHEN 4 THEN 50 WHEN 5 THEN 50 ELSE 20 END,
    CASE n % 10 WHEN 8 THEN 'closed' WHEN 9 THEN 'omitted' WHEN 6 THEN 'commit' WHEN 7 THEN 'commit'
      WHEN 4 THEN 'best_case' WHEN 5 THEN 'best_case' ELSE 'pipeline' END,
    date '2026-01-01' + n % 730, CASE WHEN n % 10 >= 8 THEN now() END, '$admin', '$admin'
  FROM generate_series(1, $opportunities) AS n" -c "
  INSERT INTO quotas (tenant_id, user_id, period_kind, period_start, period_end, currency, amount)
  SELECT '$tenant'::uuid, $(person f200 r), 'quarter', q, (q + interval '3 months' - interval '1 day')::date, 'USD', 2000000
  FROM generate_series(1, 1000) AS r, generate_series(date '2026-01-01', date '2027-10-01', interval '3 months') AS q" -c "
  INSERT INTO forecast_adjustments (tenant_id, id, subject_id, adjuster_id, period_kind, period_start, period_end, currency,
    column_name, amount, note)
  SELECT '$tenant'::uuid, gen_random_uuid(), $(person f200 r), $(person f200 r), 'quarter', p.start_date, p.end_date, 'USD', 'commit',
    1500000, 'bench'
  FROM generate_series(1, 1000) AS r,
    (SELECT date '2027-01-01' AS start_date, date '2027-03-31' AS end_date) AS p
  UNION ALL
  SELECT '$tenant'::uuid, gen_random_uuid(), $(person f000 m), '$vp', 'quarter', date '2027-01-01', date '2027-03-31', 'USD',
    'best_case', 90000000, 'bench'
  FROM generate_series(1, 20) AS m" -c "VACUUM ANALYZE"
seed_seconds=$(( $(date +%s) - seed_started ))

vp_token=$(CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" admin tokens create --user "$vp" --name bench 2>/dev/null)
CRM_ADDRESS="$crmd_address" CRM_TOKEN="$vp_token" "$bin/crm" forecast --period "$period" >"$work/forecast.txt"

run() {
  CRM_ADDRESS="$crmd_address" CRM_TOKEN="$vp_token" "$bin/crm-bench" --scenario forecast --period "$period" \
    --concurrency "$1" --duration "$duration" --warmup "$warmup" --json
}
step "GetForecast of the VP for $period, one caller, ${duration}s"
one=$(run 1)
step "GetForecast of the VP for $period, four callers, ${duration}s"
four=$(run 4)

step "pgbench of the same SQL in the same two round trips (one client, then four)"
owners=$(psql_as_owner crm_forecast -At -c "
  SELECT array_agg(id ORDER BY id::text)::text FROM users WHERE tenant_id = '$tenant' AND email LIKE '%@bench.example'")
read -r period_start period_end < <(python3 -c "
import datetime, sys
year, quarter = sys.argv[1].split('-Q')
start = datetime.date(int(year), (int(quarter) - 1) * 3 + 1, 1)
after = datetime.date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
print(start, after - datetime.timedelta(days=1))" "$period")
sed -e "s/:owners/'$owners'/g" -e "s/:period_start/'$period_start'/g" -e "s/:period_end/'$period_end'/g" \
  scripts/bench/forecast.sql >"$work/forecast.sql"
pgbench_run() {
  PGOPTIONS="-c role=crm_app" "$pg_bin/pgbench" -h "$pg_socket" -U crm -n -M prepared -c "$1" -j "$1" -T "$duration" \
    -D tenant="$tenant" -f "$work/forecast.sql" crm_forecast 2>&1
}
twin_one=$(pgbench_run 1)
twin_four=$(pgbench_run 4)

step "the sum's plan"
plan=$(PGOPTIONS="-c role=crm_app" psql_as_owner crm_forecast -c "SELECT set_config('crm.tenant_id', '$tenant', false)" -c "
  EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
  SELECT owner_id, forecast_category, count(*), sum(amount_units) * 1000000000 + sum(coalesce(amount_nanos, 0)),
    coalesce(sum(amount_units * probability) FILTER (WHERE abs(amount_units) < 10000000000000000), 0) * 10000000
      + sum((coalesce(amount_nanos, 0)::bigint * probability + 50) / 100)
  FROM opportunities
  WHERE tenant_id = '$tenant' AND archived_at IS NULL AND amount_currency = 'USD'
    AND close_date BETWEEN '$period_start' AND '$period_end' AND forecast_category <> 'omitted'
  GROUP BY 1, 2" | sed -n "/QUERY PLAN/,\$p" | grep -v "^-" | cut -c1-160 | head -14)
stop_crmd

python3 - "$one" "$four" "$twin_one" "$twin_four" "$opportunities" "$period" "$seed_seconds" <<'PY'
import json, re, sys
one, four = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def tps(text):
    m = re.search(r"tps = ([0-9.]+)", text)
    return float(m.group(1)) if m else float("nan")
def lat(text):
    m = re.search(r"latency average = ([0-9.]+) ms", text)
    return float(m.group(1)) if m else float("nan")
t1, t4 = tps(sys.argv[3]), tps(sys.argv[4])
deals, period, seed = int(sys.argv[5]), sys.argv[6], sys.argv[7]
print("| GetForecast, VP over 1,000 reps, %s deals, %s | RPS | p50 ms | p90 ms | p99 ms | errors | pgbench TPS (same SQL) | pgbench avg ms | ratio |" % (f"{deals:,}", period))
print("|---|---|---|---|---|---|---|---|---|")
for label, run, twin, text in (("1 caller", one, t1, sys.argv[3]), ("4 callers", four, t4, sys.argv[4])):
    print(f"| {label} | {run['rps']:.0f} | {run['p50_ms']:.2f} | {run['p90_ms']:.2f} | {run['p99_ms']:.2f} | {run['errors']} | "
          f"{twin:.0f} | {lat(text):.2f} | {run['rps'] / twin:.2f}× |")
print(f"\nseeding: {seed} s")
PY
echo
echo "The VP's forecast as crm prints it:"
echo '```'
cat "$work/forecast.txt"
echo '```'
echo
echo "The sum's plan (EXPLAIN ANALYZE as crm_app):"
echo '```'
echo "$plan"
echo '```'
