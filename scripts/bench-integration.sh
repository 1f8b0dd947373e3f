#!/usr/bin/env bash
# Benchmarks the integration stage (issue 15), in one run:
#   1. webhooks: end-to-end latency from commit to a loopback receiver (scripts/bench/webhook_sink.py)
#      while CreateAccount runs open-loop at RATE changes a second for DURATION seconds;
#   2. the change feed: a StreamChanges consumer (crm-bench --scenario feed-lag) follows the feed while
#      `crm import` loads IMPORT_ROWS generated leads; events per second streamed and each event's lag
#      behind its commit, next to the import's own rows per second.
#   Prints a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-integration.sh
#   RATE=500 DURATION=30 IMPORT_ROWS=1000000 scripts/bench-integration.sh
#   IMPORT_ROWS=0 scripts/bench-integration.sh      # webhooks only
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

rate=${RATE:-500}
duration=${DURATION:-30}
import_rows=${IMPORT_ROWS:-1000000}
pool=${POOL_SIZE:-8}

ensure_packages libpq-dev postgresql postgresql-contrib python3
step "building crmd, crm and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm-bench >&2
swift build -c release --product crm >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=256MB
psql_as_owner postgres -c "CREATE DATABASE crm_integration"
start_crmd "$bin/crmd" crm_integration --pool-size "$pool" --log-level warning --job-interval-seconds 0 \
  --webhook-allow-private-addresses
crm() { CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" "$@"; }
bench() { CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --json "$@"; }

step "webhooks: a receiver on loopback, a subscription to account.created"
python3 scripts/bench/webhook_sink.py "$work/sink.port" >"$work/sink.json" &
sink_pid=$!
for _ in $(seq 1 100); do [ -s "$work/sink.port" ] && break; sleep 0.1; done
crm webhooks create "http://127.0.0.1:$(cat "$work/sink.port")/hook" --event account.created --json >/dev/null

step "webhooks: CreateAccount at $rate a second for $duration s (open loop, 16 workers)"
create=$(bench --scenario create --rate "$rate" --concurrency 16 --duration "$duration" --warmup 0)
# Let the last deliveries land: wait until the subscription's cursor stops moving.
last=""
for _ in $(seq 1 100); do
  now=$(crm webhooks list --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["cursor"])')
  [ "$now" = "$last" ] && break
  last=$now
  sleep 0.5
done
kill -TERM "$sink_pid"
wait "$sink_pid" || true
sink=$(cat "$work/sink.json")

feed='{"events":0,"events_per_s":0,"lag_p50_ms":0,"lag_p90_ms":0,"lag_p99_ms":0,"lag_max_ms":0}'
import_start=0
import_end=1
if [ "$import_rows" -gt 0 ]; then
step "the feed during an import of $import_rows leads"
python3 scripts/bench/generate_leads.py "$import_rows" "$work/leads.csv" "$work/candidates.csv"
# Long enough for an import at 1,000 rows/s, ending 15 s after the last event; the rate is taken
# between the first and last event.
follow_seconds=$((import_rows / 1000 + 60))
bench --scenario feed-lag --duration "$follow_seconds" --idle-seconds 15 >"$work/feed.json" &
follower=$!
sleep 2
import_start=$(date +%s.%N)
crm import "$work/leads.csv" --type leads --duplicate-action allow --allow-errors >/dev/null 2>"$work/import.log"
import_end=$(date +%s.%N)
wait "$follower"
feed=$(cat "$work/feed.json")
fi

python3 - "$create" "$sink" "$feed" "$import_rows" "$import_start" "$import_end" "$rate" <<'PY'
import json, sys
create, sink, feed = (json.loads(a) for a in sys.argv[1:4])
rows, start, end, rate = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
print("| measurement | figure |")
print("|---|---|")
print(f"| CreateAccount open loop, target {rate}/s | {create['rps']:.0f}/s achieved, p50 {create['p50_ms']:.1f} ms, p99 {create['p99_ms']:.1f} ms |")
print(f"| webhook commit → receiver ({sink['deliveries']} deliveries) | p50 {sink.get('p50_ms')} ms, p90 {sink.get('p90_ms')} ms, p99 {sink.get('p99_ms')} ms, max {sink.get('max_ms')} ms |")
print(f"| import of {rows:,} leads | {rows / (end - start):,.0f} rows/s ({end - start:.0f} s) |")
print(f"| feed streamed during the import | {feed['events']:,} events, {feed['events_per_s']:,.0f} events/s |")
print(f"| feed lag behind commit | p50 {feed['lag_p50_ms']} ms, p90 {feed['lag_p90_ms']} ms, p99 {feed['lag_p99_ms']} ms, max {feed['lag_max_ms']} ms |")
PY
