#!/usr/bin/env bash
# Benchmarks search (SearchService.Search) over CONTACTS contacts (names drawn from 60 first and 200
# last names, so a surname is shared by thousands; an email and a phone each; one in a hundred with a
# Chinese name and company-style surname), 100,000 accounts and 100,000 leads. One caller searches
# queries drawn at random from a mix: a common surname, a rare full name, an email, a phone number
# in another format, a CJK substring, a typo'd name (p50/p90/p99), then each kind alone; EXPLAIN shows
# the contacts part's plan. The search index is built after the load, as CREATE INDEX would on an
# existing table (the migration's own definition). Prints a Markdown summary; BENCHMARKS.md quotes it.
#
#   scripts/bench-search.sh
#   CONTACTS=1000000 DURATION=20 scripts/bench-search.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/common.sh

contacts=${CONTACTS:-1000000}
duration=${DURATION:-20}
warmup=${WARMUP:-3}

ensure_packages libpq-dev postgresql postgresql-contrib
step "building crmd and crm-bench (release)"
swift build -c release --product crmd >&2
swift build -c release --product crm-bench >&2
bin=$(swift build -c release --show-bin-path)

start_cluster -c shared_buffers=512MB
psql_as_owner postgres -c "CREATE DATABASE crm_search"
start_crmd "$bin/crmd" crm_search --pool-size 16 --log-level warning --job-interval-seconds 0
tenant=$(psql_as_owner crm_search -At -c "SELECT id FROM tenants WHERE is_system")
owner=$(psql_as_owner crm_search -At -c "SELECT id FROM users WHERE tenant_id = '$tenant' LIMIT 1")

step "seeding $contacts contacts, 100,000 accounts and 100,000 leads"
seed_started=$(date +%s)
definitions=$(psql_as_owner crm_search -At -c "
  SELECT string_agg(pg_get_indexdef(c.oid), ';' ORDER BY c.relname) FROM pg_class c
  WHERE c.relname IN ('contacts_search', 'accounts_search', 'leads_search')")
names="ARRAY['James','Mary','John','Patricia','Robert','Jennifer','Michael','Linda','William','Elizabeth','David','Barbara',
  'Richard','Susan','Joseph','Jessica','Thomas','Sarah','Charles','Karen','Christopher','Nancy','Daniel','Lisa','Matthew',
  'Betty','Anthony','Margaret','Mark','Sandra','Donald','Ashley','Steven','Kimberly','Paul','Emily','Andrew','Donna','Joshua',
  'Michelle','Kenneth','Dorothy','Kevin','Carol','Brian','Amanda','George','Melissa','Edward','Deborah','Zoë','Renée','José',
  'Søren','Françoise','Jürgen','Ólafur','Chloé','André','Björn']"
surnames="ARRAY(SELECT s || suffix FROM unnest(ARRAY['Smith','Johnson','Williams','Brown','Jones','Garcia','Miller','Davis',
  'Rodriguez','Martinez','Hernandez','Lopez','Gonzalez','Wilson','Anderson','Thomas','Taylor','Moore','Jackson','Martin',
  'Lee','Perez','Thompson','White','Harris','Sanchez','Clark','Ramirez','Lewis','Robinson','Walker','Young','Allen','King',
  'Wright','Scott','Torres','Nguyen','Hill','Flores','Müller','Schäfer','Nuñez','Łukasz','Dvořák']) AS s,
  unnest(ARRAY['', 'son', 'er', 'ley', 'ford']) AS suffix LIMIT 200)"
psql_as_owner crm_search -c "DROP INDEX contacts_search, accounts_search, leads_search" -c "
  CREATE TEMP TABLE n AS SELECT $names AS first, $surnames AS last" -c "
  INSERT INTO contacts (tenant_id, id, owner_id, first_name, last_name, emails, email_addresses, phones, phone_numbers,
    created_by, updated_by)
  SELECT '$tenant', gen_random_uuid(), '$owner',
    CASE WHEN g % 100 = 0 THEN '小明' ELSE n.first[1 + g % 60] END,
    CASE WHEN g % 100 = 0 THEN '王' || (ARRAY['销售易','华为','阿里','腾讯','小米'])[1 + g % 5] || g ELSE n.last[1 + (g / 60) % 200] END,
    jsonb_build_array(jsonb_build_object('label', '', 'value', 'c' || g || '@mail' || (g % 997) || '.example', 'primary', true)),
    ARRAY['c' || g || '@mail' || (g % 997) || '.example'],
    jsonb_build_array(jsonb_build_object('label', '', 'value', '+1415' || lpad((g % 10000000)::text, 7, '0'), 'primary', true)),
    ARRAY['+1415' || lpad((g % 10000000)::text, 7, '0')], '$owner', '$owner'
  FROM generate_series(1, $contacts) AS g, n" -c "
  INSERT INTO accounts (tenant_id, id, owner_id, name, domain, created_by, updated_by)
  SELECT '$tenant', gen_random_uuid(), '$owner',
    CASE WHEN g % 50 = 0 THEN '北京' || (ARRAY['销售易','华为','阿里','腾讯','小米'])[1 + g % 5] || '科技有限公司' || g
      ELSE n.last[1 + g % 200] || ' Holdings ' || g END, 'acct' || g || '.example', '$owner', '$owner'
  FROM generate_series(1, 100000) AS g, n" -c "
  INSERT INTO leads (tenant_id, id, owner_id, first_name, last_name, company, created_by, updated_by)
  SELECT '$tenant', gen_random_uuid(), '$owner', n.first[1 + g % 60], n.last[1 + (g / 7) % 200], 'Company ' || g, '$owner', '$owner'
  FROM generate_series(1, 100000) AS g, n" -c "$definitions" -c "VACUUM ANALYZE"
seed_seconds=$(( $(date +%s) - seed_started ))

# Query kinds, each a file of real values from the data.
sample() { psql_as_owner crm_search -At -c "$1" >"$work/$2.txt"; }
sample "SELECT DISTINCT crm_search_fold(last_name) FROM contacts WHERE last_name NOT LIKE '王%' LIMIT 50" surname
sample "SELECT first_name || ' ' || last_name FROM contacts TABLESAMPLE SYSTEM (1) WHERE last_name NOT LIKE '王%' LIMIT 200" fullname
sample "SELECT email_addresses[1] FROM contacts TABLESAMPLE SYSTEM (1) LIMIT 200" email
sample "SELECT '(415) ' || substr(phone_numbers[1], 6, 3) || '-' || substr(phone_numbers[1], 9) FROM contacts TABLESAMPLE SYSTEM (1) LIMIT 200" phone
sample "SELECT substr(last_name, 2, 3) || substr(last_name, 5) FROM contacts WHERE last_name LIKE '王%' LIMIT 200" cjk
sample "SELECT overlay(lower(first_name || ' ' || last_name) placing 'x' from 3 for 1) FROM contacts TABLESAMPLE SYSTEM (1)
  WHERE length(first_name) >= 5 AND last_name NOT LIKE '王%' LIMIT 200" typo
cat "$work"/{surname,fullname,email,phone,cjk,typo}.txt >"$work/mix.txt"

run() {
  CRM_ADDRESS="$crmd_address" CRM_TOKEN="$crmd_token" "$bin/crm-bench" --scenario search --queries "$work/$1.txt" \
    --concurrency 1 --duration "$2" --warmup "$warmup" --json
}
step "Search, one caller, the mix, ${duration}s"
results="mix $(run mix "$duration")"
for kind in surname fullname email phone cjk typo; do
  step "Search, one caller, $kind queries, $((duration / 2))s"
  results="$results
$kind $(run "$kind" $((duration / 2)))"
done

step "the contacts part's plans for a common surname"
surname=$(head -n 1 "$work/surname.txt")
# What crm_search_top runs (as the owner: the sample of at most 1,000 matches, ranked), then the part
# as crmd sends it (as crm_app: the page's matches joined back under the caller's visibility).
plan=$(psql_as_owner crm_search -c "
  EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
  SELECT id, score, capped FROM (SELECT id, CASE WHEN search_text LIKE '$surname%' THEN 2.0::float8
      WHEN search_text LIKE '% $surname%' THEN 1.5::float8 ELSE 1.0::float8 END + 1.0::float8 / (2 + length(search_text)) AS score,
      count(*) OVER () >= 1000 AS capped
    FROM (SELECT id, search_text FROM contacts WHERE tenant_id = '$tenant'::uuid AND archived_at IS NULL
      AND search_text LIKE '%$surname%' LIMIT 1000) sample) matched
  ORDER BY score DESC, id LIMIT 21" | sed -n '/QUERY PLAN/,$p' | grep -v "^-" | cut -c1-150 | head -24)
part=$(PGOPTIONS="-c role=crm_app" psql_as_owner crm_search -c "SELECT set_config('crm.tenant_id', '$tenant', false)" -c "
  EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
  SELECT 1 AS type_rank, m.match_id AS id, m.match_score AS score, m.match_capped AS capped, contacts.id IS NOT NULL AS visible
  FROM crm_search_top('contacts', 'substring', '[[\"$surname\"]]', '$surname', NULL, NULL, NULL, NULL, 21) m
  LEFT JOIN contacts ON contacts.id = m.match_id AND tenant_id = '$tenant' AND archived_at IS NULL
  ORDER BY m.match_score DESC, m.match_id" | sed -n '/QUERY PLAN/,$p' | grep -v "^-" | cut -c1-150 | head -16)
stop_crmd

python3 - "$contacts" "$seed_seconds" <<PY
import json, sys
contacts, seed = int(sys.argv[1]), sys.argv[2]
print(f"| Search, one caller, {contacts:,} contacts + 100,000 accounts + 100,000 leads | RPS | p50 ms | p90 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|")
for line in """$results""".strip().splitlines():
    kind, text = line.split(" ", 1)
    run = json.loads(text)
    print(f"| {kind} | {run['rps']:.0f} | {run['p50_ms']:.2f} | {run['p90_ms']:.2f} | {run['p99_ms']:.2f} | {run['errors']} |")
print(f"\nseeding and indexing: {seed} s")
PY
echo
echo "Sample queries: $(head -n 1 "$work/surname.txt") / $(head -n 1 "$work/fullname.txt") / $(head -n 1 "$work/email.txt") / $(head -n 1 "$work/phone.txt") / $(head -n 1 "$work/cjk.txt") / $(head -n 1 "$work/typo.txt")"
echo
echo "crm_search_top's statement for the surname \"$surname\" (EXPLAIN ANALYZE as the owner):"
echo '```'
echo "$plan"
echo '```'
echo
echo "The contacts part as crmd sends it (EXPLAIN ANALYZE as crm_app):"
echo '```'
echo "$part"
echo '```'
