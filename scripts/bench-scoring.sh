#!/usr/bin/env bash
# Benchmarks learned lead scoring (docs/scoring.md): LEADS leads in one tenant — 70 % old enough for
# their outcome to be known (a planted signal: partner leads and chief executives convert more,
# event leads less), 30 % recent — and INTERACTIONS interactions on them. `crm scoring train` trains
# the model and scores every lead; the answer says how long each part took, and crmd's resident
# memory is read before and after (VmRSS, VmHWM). The physical limit: one SQL statement writing the same
# number of lead_scores rows (a score computed in SQL from the same columns and the same engagement
# probe), timed by psql. Prints a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-scoring.sh
#   LEADS=200000 INTERACTIONS=100000 scripts/bench-scoring.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

leads=${LEADS:-1000000}
interactions=${INTERACTIONS:-300000}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd and crm (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=512MB
psql_as_owner postgres -c "CREATE DATABASE crm_scoring"
start_crmd "$bin/crmd" crm_scoring --pool-size 8 --log-level warning --job-interval-seconds 0
tenant=$(psql_as_owner crm_scoring -At -c "SELECT id FROM tenants WHERE is_system")
admin=$(psql_as_owner crm_scoring -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")

step "seeding $leads leads and $interactions interactions"
seed_started=$(date +%s)
psql_as_owner crm_scoring -c "
  INSERT INTO accounts (tenant_id, id, owner_id, name, created_by, updated_by)
  VALUES ('$tenant', '00000000-0000-7000-a000-000000000001', '$admin', 'Converted Co', '$admin', '$admin')" -c "
  INSERT INTO contacts (tenant_id, id, owner_id, last_name, account_id, created_by, updated_by)
  VALUES ('$tenant', '00000000-0000-7000-c000-000000000001', '$admin', 'Converted', '00000000-0000-7000-a000-000000000001',
    '$admin', '$admin')" -c "
  CREATE TEMP TABLE seed AS
  SELECT n, (ARRAY['web_form', 'partner', 'event', 'email', 'phone', 'chat'])[1 + n % 6] AS source,
    (ARRAY['CEO', 'VP Sales', 'Head of IT', 'Office Manager', 'Engineer', 'Buyer', NULL])[1 + (n / 7) % 7] AS title,
    (ARRAY['Retail', 'Finance', 'Textiles', 'Software', 'Logistics'])[1 + (n / 11) % 5] AS industry,
    (ARRAY['spring', 'autumn', 'webinar', NULL])[1 + (n / 13) % 4] AS campaign,
    (ARRAY['DE', 'US', 'CN', 'FR'])[1 + (n / 17) % 4] AS region,
    1 + (n::bigint * 7919) % 20000 AS company_size,
    CASE WHEN n % 2 = 0 THEN 'gmail.com' ELSE 'company' || n % 500 || '.example' END AS domain,
    n % 10 < 7 AS known,
    random() < 1 / (1 + exp(-(-2.0 + CASE n % 6 WHEN 1 THEN 1.6 WHEN 2 THEN -1.2 ELSE 0 END
      + CASE WHEN (n / 7) % 7 = 0 THEN 1.0 ELSE 0 END + CASE WHEN n % 2 = 1 THEN 0.6 ELSE 0 END))) AS converts
  FROM generate_series(1, $leads) AS n" -c "
  INSERT INTO leads (tenant_id, id, owner_id, last_name, company, source, title, industry, campaign, region_code,
    company_size, email_addresses, status, created_at, updated_at, converted_at, converted_account_id, converted_contact_id,
    created_by, updated_by)
  SELECT '$tenant', ('00000000-0000-7000-b000-' || lpad(to_hex(n), 12, '0'))::uuid, '$admin', 'Lead ' || n, 'Company ' || n,
    source, title, industry, campaign, region, company_size, ARRAY['lead' || n || '@' || domain],
    CASE WHEN known AND converts THEN 'converted' ELSE 'working' END,
    CASE WHEN known THEN now() - interval '200 days' ELSE now() - interval '10 days' END,
    CASE WHEN known THEN now() - interval '200 days' ELSE now() - interval '10 days' END,
    CASE WHEN known AND converts THEN now() - interval '180 days' END,
    CASE WHEN known AND converts THEN '00000000-0000-7000-a000-000000000001'::uuid END,
    CASE WHEN known AND converts THEN '00000000-0000-7000-c000-000000000001'::uuid END, '$admin', '$admin'
  FROM seed" -c "
  INSERT INTO interactions (tenant_id, id, owner_id, kind, start_at, links, created_by, updated_by)
  SELECT '$tenant', ('00000000-0000-7000-d000-' || lpad(to_hex(n), 12, '0'))::uuid, '$admin', 'call',
    now() - interval '1 day' * (n % 400), ARRAY['lead:' || n], '$admin', '$admin'
  FROM generate_series(1, $interactions) AS n" -c "
  INSERT INTO interaction_links (tenant_id, interaction_id, record_type, record_id, occurred_at)
  SELECT '$tenant', ('00000000-0000-7000-d000-' || lpad(to_hex(n), 12, '0'))::uuid, 'lead',
    ('00000000-0000-7000-b000-' || lpad(to_hex(1 + (n::bigint * 37) % $leads), 12, '0'))::uuid, now() - interval '1 day' * (n % 400)
  FROM generate_series(1, $interactions) AS n" -c "VACUUM ANALYZE"
seed_seconds=$(( $(date +%s) - seed_started ))

memory() { awk '/^VmRSS|^VmHWM/ { printf "%s %d MB  ", $1, $2 / 1024 }' "/proc/$crmd_pid/status"; }
memory_before=$(memory)
step "crm scoring train: train, then score every lead"
CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" scoring train --json >"$work/train.json"
memory_after=$(memory)
CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm" scoring model --weights 6 >"$work/model.txt"

memory_end=$(memory)
stop_crmd

step "the physical limit: the same rows written by one SQL statement"
limit_ms=$(psql_as_owner crm_scoring -At -c "DELETE FROM lead_scores" -c "\\timing on" -c "
  INSERT INTO lead_scores (tenant_id, lead_id, model_version, score, tier, reasons, scored_at)
  SELECT l.tenant_id, l.id, 1,
    1 + (abs(hashtext(l.source || coalesce(l.title, '') || coalesce(l.industry, ''))) + e.interactions) % 99,
    (ARRAY['very_high', 'high', 'medium', 'low'])[1 + abs(hashtext(l.source)) % 4],
    jsonb_build_array(jsonb_build_object('feature', 'source', 'value', l.source, 'points', 1)), now()
  FROM leads l CROSS JOIN LATERAL (
    SELECT count(*)::int AS interactions, max(il.occurred_at) AS last_interaction_at FROM interaction_links il
    WHERE il.tenant_id = l.tenant_id AND il.record_type = 'lead' AND il.record_id = l.id AND il.occurred_at < now()) e
  WHERE l.tenant_id = '$tenant' AND l.archived_at IS NULL" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)

python3 - "$work/train.json" "$leads" "$interactions" "$seed_seconds" "$limit_ms" "$memory_before" "$memory_after" \
  "$memory_end" <<'PY'
import json, sys
# crm --json prints one JSON object per message.
train = json.JSONDecoder().raw_decode(open(sys.argv[1]).read().strip())[0]
leads, interactions, seed, limit_ms = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
def seconds(text): return float(str(text).rstrip("s") or 0)
# crm --json keeps the proto field names; int64 values are strings.
model = train["model"]
training, scoring = seconds(train.get("training_duration", "0s")), seconds(train.get("scoring_duration", "0s"))
scored = int(train.get("scored_leads", 0))
print(f"| learned scoring, {leads:,} leads, {interactions:,} interactions | seconds | leads/s |")
print("|---|---|---|")
print(f"| training on {int(model.get('history_leads', 0)):,} leads with a known outcome "
      f"(held-out AUC {model.get('auc', 0):.3f}) | {training:.1f} | |")
print(f"| scoring every lead ({scored:,}) after training | {scoring:.1f} | {scored / max(scoring, 1e-9):,.0f} |")
print(f"| the same rows by one SQL statement (psql) | {limit_ms / 1000:.1f} | {scored / (limit_ms / 1000):,.0f} |")
print(f"| ratio (SQL time ÷ crmd time) | {limit_ms / 1000 / max(scoring, 1e-9):.2f}× | |")
print(f"\ncrmd memory: before training {sys.argv[6]}; after scoring {sys.argv[7]}; after reading the model {sys.argv[8]}")
print(f"seeding: {seed} s")
PY
echo
echo "The model as crm prints it:"
echo '```'
cat "$work/model.txt"
echo '```'
