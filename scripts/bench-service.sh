#!/usr/bin/env bash
# Benchmarks the service stage against the physical limit on this machine, in one run:
#   CreateTicket and AddComment RPS vs pgbench of the same SQL (scripts/bench/create_ticket.sql,
#   add_comment.sql); ListTickets ordered by next breach on 1,000,000 open tickets (p50/p99, one
#   caller and 16); the SLA job over those tickets with 100,000 due at once (time, crmd's peak RSS).
#   Prints a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-service.sh
#   CONCURRENCY=16 DURATION=20 ROUNDS=3 OPEN_TICKETS=1000000 DUE_TICKETS=100000 scripts/bench-service.sh
#
#   The write RPCs and their twins run ROUNDS times, alternating, and the table shows the medians (and
#   each round): on two shared cores one 20 s run swings by ±15 %.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

concurrency=${CONCURRENCY:-16}
duration=${DURATION:-20}
warmup=${WARMUP:-3}
rounds=${ROUNDS:-3}
pool=${POOL_SIZE:-8}
open_tickets=${OPEN_TICKETS:-1000000}
due_tickets=${DUE_TICKETS:-100000}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd, crm and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm-bench >&2
swift build -c release --product crm >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=256MB
psql_as_owner postgres -c "CREATE DATABASE crm_service"
start_crmd "$bin/crmd" crm_service --pool-size "$pool" --log-level warning --job-interval-seconds 0
tenant=$(psql_as_owner crm_service -At -c "SELECT id FROM tenants WHERE is_system")
owner=$(psql_as_owner crm_service -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")
crm() { CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" "$@"; }
bench() {
  CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --duration "$duration" --warmup "$warmup" --json "$@"
}
pgbench_run() {
  PGOPTIONS="-c role=crm_app" "$pg_bin/pgbench" -h "$pg_socket" -U crm -n -M prepared -c "$concurrency" -j 2 -T "$duration" \
    -D tenant="$tenant" -D owner="$owner" "$@" crm_service 2>&1
}

step "an SLA policy in calendar time: first reply 60 min, next reply 120, resolution 480 (normal priority)"
crm sla policies create --name Bench --target normal.first_reply=60 --target normal.next_reply=120 \
  --target normal.resolution=480 --json >/dev/null
policy=$(psql_as_owner crm_service -At -c "SELECT id FROM sla_policies WHERE tenant_id = '$tenant'")
psql_as_owner crm_service -c "
  INSERT INTO accounts (tenant_id, id, owner_id, name, created_by, updated_by)
  VALUES ('$tenant', '00000000-0000-7000-b100-000000000000', '$owner', 'Bench account', '$owner', '$owner')" -c "
  INSERT INTO contacts (tenant_id, id, owner_id, account_id, last_name, created_by, updated_by)
  VALUES ('$tenant', '00000000-0000-7000-b200-000000000000', '$owner', '00000000-0000-7000-b100-000000000000', 'Bench',
    '$owner', '$owner')"
contact=00000000-0000-7000-b200-000000000000
account=00000000-0000-7000-b100-000000000000

results="$work/results"
mkdir -p "$results"
for round in $(seq 1 "$rounds"); do
  step "CreateTicket, round $round of $rounds: crm-bench, then pgbench of the same SQL (c=$concurrency, ${duration}s)"
  bench --concurrency "$concurrency" --scenario create-ticket >"$results/create_crmd.$round"
  pgbench_run -D contact="$contact" -D account="$account" -D policy="$policy" -f scripts/bench/create_ticket.sql \
    >"$results/create_pg.$round"
done

psql_as_owner crm_service -c "
  INSERT INTO tickets (tenant_id, id, subject, status, priority, channel, requester_contact_id, account_id, opened_at,
    status_changed_at, sla_policy_id, sla_state, created_by, updated_by)
  SELECT '$tenant', ('00000000-0000-7000-b000-' || lpad(n::text, 12, '0'))::uuid, 'pgbench ticket ' || n, 'open', 'normal',
    'email', '$contact', '$account', now(), now(), '$policy', 'active', '$owner', '$owner'
  FROM generate_series(1, ($concurrency + 1) * 200) AS n"
for round in $(seq 1 "$rounds"); do
  step "AddComment, round $round of $rounds: crm-bench, then pgbench of the same SQL (c=$concurrency, ${duration}s, 200 tickets per client)"
  bench --concurrency "$concurrency" --scenario add-comment >"$results/comment_crmd.$round"
  pgbench_run -D account="$account" -D policy="$policy" -f scripts/bench/add_comment.sql >"$results/comment_pg.$round"
done

step "seeding $open_tickets open tickets with a running resolution clock ($due_tickets of them due now)"
seed_started=$(date +%s)
psql_as_owner crm_service -c "SET session_replication_role = replica" -c "
  INSERT INTO tickets (tenant_id, id, subject, status, priority, channel, requester_contact_id, account_id, opened_at,
    status_changed_at, sla_policy_id, sla_state, next_breach_at, created_at, created_by, updated_by)
  SELECT '$tenant', ('00000000-0000-7000-c000-' || lpad(to_hex(n), 12, '0'))::uuid, 'Seeded ticket ' || n, 'open', 'normal',
    'email', '$contact', '$account', now() - interval '1 day', now() - interval '1 day', '$policy', 'active',
    CASE WHEN n <= $due_tickets THEN now() - interval '1 minute' ELSE now() + make_interval(mins => n % 43200) END,
    now() - interval '1 day', '$owner', '$owner'
  FROM generate_series(1, $open_tickets) AS n" -c "
  INSERT INTO sla_events (tenant_id, ticket_id, metric, instance, kind, target, policy_id, at, note)
  SELECT '$tenant', ('00000000-0000-7000-c000-' || lpad(to_hex(n), 12, '0'))::uuid, 'resolution', 1, 'activated',
    jsonb_build_object('minutes', CASE WHEN n <= $due_tickets THEN 1439 ELSE 1440 + n % 43200 END, 'business_hours', false),
    '$policy', now() - interval '1 day', 'seeded'
  FROM generate_series(1, $open_tickets) AS n" -c "
  INSERT INTO sla_instances (tenant_id, ticket_id, metric, instance, state, due_at, is_open)
  SELECT '$tenant', id, 'resolution', 1, 'active', next_breach_at, true FROM tickets
  WHERE tenant_id = '$tenant' AND id >= '00000000-0000-7000-c000-000000000000' AND id < '00000000-0000-7000-d000-000000000000'" \
  -c "VACUUM ANALYZE tickets" -c "VACUUM ANALYZE sla_instances" -c "VACUUM ANALYZE sla_events"
seed_seconds=$(( $(date +%s) - seed_started ))

step "ListTickets (open queue, next breach first, 50 a page) on $open_tickets open tickets"
list_single=$(bench --concurrency 1 --scenario list-tickets)
list_many=$(bench --concurrency "$concurrency" --scenario list-tickets)
list_plan=$(psql_as_owner crm_service -At -c "SET ROLE crm_app" -c "SELECT set_config('crm.tenant_id', '$tenant', false)" -c "
  EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id FROM tickets
  WHERE tenant_id = '$tenant' AND archived_at IS NULL AND status = ANY('{new,open,pending,on_hold}'::text[])
    AND next_breach_at IS NOT NULL ORDER BY next_breach_at, id LIMIT 51" | tail -n +2)

step "the SLA job: $due_tickets of $open_tickets clocks due at once, one RunSLAJob call"
rss_before=$(awk '/VmHWM/ {print $2}' /proc/"$crmd_pid"/status)
job_started=$(date +%s.%N)
job=$(crm sla run-jobs --json)
job_done=$(date +%s.%N)
rss_after=$(awk '/VmHWM/ {print $2}' /proc/"$crmd_pid"/status)
breached=$(psql_as_owner crm_service -At -c "SELECT count(*) FROM sla_events WHERE kind = 'breached'")
pending=$(psql_as_owner crm_service -At -c "SELECT count(*) FROM sla_instances WHERE is_open AND NOT breached AND due_at <= now()")
stop_crmd

python3 - "$results" "$list_single" "$list_many" "$job" "$job_started" \
  "$job_done" "$rss_before" "$rss_after" "$breached" "$pending" "$concurrency" "$duration" "$open_tickets" "$due_tickets" \
  "$seed_seconds" <<'PY'
import glob, json, re, statistics, sys
results = sys.argv[1]
single, many, job = json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
started, done = float(sys.argv[5]), float(sys.argv[6])
rss_before, rss_after, breached, pending, concurrency, duration, open_tickets, due, seed = map(int, sys.argv[7:16])
def pg(text):
    return (float(re.search(r"tps = ([0-9.]+) \(without initial", text).group(1)),
            float(re.search(r"latency average = ([0-9.]+) ms", text).group(1)))
def rounds(name):
    crmd = [json.load(open(path)) for path in sorted(glob.glob(f"{results}/{name}_crmd.*"))]
    twin = [pg(open(path).read()) for path in sorted(glob.glob(f"{results}/{name}_pg.*"))]
    return crmd, twin
def row(label, name):
    crmd, twin = rounds(name)
    rps = statistics.median(r["rps"] for r in crmd)
    tps = statistics.median(t for t, _ in twin)
    middle = min(crmd, key=lambda r: abs(r["rps"] - rps))
    print(f"| {label} | {rps:.0f} | {middle['p50_ms']:.2f} | {middle['p90_ms']:.2f} | {middle['p99_ms']:.2f} | "
          f"{sum(r['errors'] for r in crmd)} | {tps:.0f} | {statistics.median(l for _, l in twin):.2f} | {rps / tps:.2f}× |")
    return f"{label}: crmd " + ", ".join(f"{r['rps']:.0f}" for r in crmd) + "; pgbench " + ", ".join(f"{t:.0f}" for t, _ in twin)
print(f"\nconcurrency {concurrency}, {duration} s measured; write RPCs: the median of {len(rounds('create')[0])} alternating rounds\n")
print("| RPC | crmd RPS | p50 ms | p90 ms | p99 ms | errors | pgbench TPS (same SQL) | pgbench avg ms | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
each = [row("CreateTicket", "create"), row("AddComment", "comment")]
print(f"| ListTickets, next breach first, {open_tickets:,} open, 1 caller | {single['rps']:.0f} | {single['p50_ms']:.2f} | {single['p90_ms']:.2f} | {single['p99_ms']:.2f} | {single['errors']} | | | |")
print(f"| ListTickets, next breach first, {open_tickets:,} open, {concurrency} callers | {many['rps']:.0f} | {many['p50_ms']:.2f} | {many['p90_ms']:.2f} | {many['p99_ms']:.2f} | {many['errors']} | | | |")
seconds = done - started
print("\nEach round: " + "; ".join(each) + ".")
print(f"\nSLA job: {int(job.get('breached', 0)):,} breaches fired ({breached:,} in the log, {pending:,} due left) of {due:,} due among "
      f"{open_tickets:,} open clocks in {seconds:.1f} s ({int(job.get('breached', 0)) / seconds:,.0f} clocks/s); crmd peak RSS "
      f"{rss_before / 1024:.0f} MB before, {rss_after / 1024:.0f} MB after. Seeding took {seed} s.")
PY
printf '\nListTickets plan (next breach first, 50 + 1 rows):\n%s\n' "$list_plan"
