#!/usr/bin/env bash
# Benchmarks CreateLead when the new lead's phone matches existing leads, across tenant sizes, against
# pgbench of the same SQL, with the duplicate lookup's row estimate as shipped (ROWS 10, migration
# 0025) and as it was (the default 1,000), so a plan flip shows as a row of its own instead of hiding.
# Each size gets its own database; its system tenant is seeded with SIZE leads by SQL, PER_PHONE
# leads sharing each phone (+14155 and six digits), and crm-bench draws phones from that pool.
# Prints a Markdown table; BENCHMARKS.md quotes it.
#
#   scripts/bench-duplicates.sh                     # defaults below
#   SIZES="10000 30000" CONCURRENCY=8 DURATION=15 scripts/bench-duplicates.sh
#   CONFIG=debug SIZES=10000 DURATION=3 scripts/bench-duplicates.sh   # a quick check of the script itself
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

sizes=${SIZES:-"10000 30000 100000 1000000"}
per_phone=${PER_PHONE:-5}
concurrency=${CONCURRENCY:-8}
duration=${DURATION:-15}
warmup=${WARMUP:-3}
pool=${POOL_SIZE:-8}
config=${CONFIG:-release}
match_function="crm_match_candidates(text, text, text[], text[], text, text, text, text)"

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd and crm-bench ($config)"
swift build -c "$config" --product crmd >&2
swift build -c "$config" --product crm-bench >&2
bin=$(swift build -c "$config" --show-bin-path)
start_cluster -c shared_buffers=256MB

rows=()
for size in $sizes; do
  database="crm_dup_$size"
  phones=$((size / per_phone))
  psql_as_owner postgres -c "CREATE DATABASE $database"
  start_crmd "$bin/crmd" "$database" --pool-size "$pool" --log-level warning --job-interval-seconds 0
  tenant=$(psql_as_owner "$database" -At -c "SELECT id FROM tenants WHERE is_system")
  owner=$(psql_as_owner "$database" -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")
  step "seeding $size leads in $database, $per_phone to a phone"
  psql_as_owner "$database" -c "
    INSERT INTO leads (tenant_id, id, owner_id, created_by, updated_by, first_name, last_name, company, emails,
      email_addresses, email_keys, phones, phone_numbers, source, company_key, person_key)
    SELECT '$tenant', gen_random_uuid(), '$owner', '$owner', '$owner', 'Seed', 'Person ' || n, 'Company ' || (n % 5000),
      jsonb_build_array(jsonb_build_object('label', '', 'primary', true, 'value', 'seed' || n || '@dup.example')),
      ARRAY['seed' || n || '@dup.example'], ARRAY['seed' || n || '@dup.example'],
      jsonb_build_array(jsonb_build_object('label', '', 'primary', true, 'value', '+14155' || lpad((n % $phones)::text, 6, '0'))),
      ARRAY['+14155' || lpad((n % $phones)::text, 6, '0')], 'import', 'company ' || (n % 5000), 'seed person ' || n
    FROM generate_series(1, $size) AS n" -c "VACUUM ANALYZE leads"
  for estimate in 10 1000; do
    # Prepared statements keep their plans per connection: a fresh crmd after each change.
    stop_crmd
    psql_as_owner "$database" -c "ALTER FUNCTION $match_function ROWS $estimate"
    start_crmd "$bin/crmd" "$database" --pool-size "$pool" --log-level warning --job-interval-seconds 0
    step "$size leads, estimate $estimate: crm-bench create-duplicate, then pgbench (c=$concurrency, ${duration}s)"
    crmd_json=$(CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --scenario create-duplicate \
      --phone-pool "$phones" --concurrency "$concurrency" --duration "$duration" --warmup "$warmup" --json)
    pg_out=$(PGOPTIONS="-c role=crm_app" "$pg_bin/pgbench" -h "$pg_socket" -U crm -n -M prepared -c "$concurrency" -j 2 \
      -T "$duration" -D tenant="$tenant" -D owner="$owner" -D pool="$phones" -f scripts/bench/create_duplicate_lead.sql \
      "$database" 2>&1)
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$pg_out" | head -n 1)
    plan=$(psql_as_owner "$database" -At -c "SET role crm_app" -c "SELECT set_config('crm.tenant_id', '$tenant', false)" -c "
      EXPLAIN (ANALYZE, COSTS OFF, TIMING ON)
      WITH hits AS (SELECT crm_match_candidates AS id FROM crm_match_candidates('leads', 'email_addresses', '{}'::text[],
        ARRAY['+14155000001'], NULL, NULL, NULL, NULL))
      SELECT id FROM leads JOIN hits USING (id) WHERE tenant_id = '$tenant' AND archived_at IS NULL" | tail -n +2)
    join=$(grep -oE '(Nested Loop|Hash Join|Merge Join)' <<<"$plan" | head -n 1 || true)
    scan=$(grep -oE '(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)( using [a-z_0-9]+)? on leads' <<<"$plan" | head -n 1 || true)
    took=$(sed -n 's/^Execution Time: \([0-9.]*\) ms/\1/p' <<<"$plan")
    rows+=("$(python3 - "$size" "$estimate" "$crmd_json" "$tps" "$join, $scan" "$took" <<'PY'
import json, sys
size, estimate, crmd, tps, plan, took = sys.argv[1:]
c = json.loads(crmd)
tps = float(tps or 0)
ratio = c["rps"] / tps if tps else 0
print(f"| {int(size):,} | {estimate} | {c['rps']:.0f} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['errors']} | {tps:.0f} | {ratio:.2f}× | {plan} | {took} |")
PY
)")
  done
  stop_crmd
  psql_as_owner postgres -c "DROP DATABASE $database"
done

cat <<TABLE

### CreateLead with a matching phone (c=$concurrency, ${duration}s each, $per_phone leads a phone)

| leads in tenant | match estimate (ROWS) | crmd RPS | p50 ms | p99 ms | errors | pgbench TPS (same SQL) | crmd / pgbench | match query plan | match query ms |
|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")
TABLE
