-- pgbench script: the SQL crmd runs for one CreateLead whose phone matches existing leads (the
-- `create-duplicate` scenario of crm-bench, the tenant's default warn rule): BEGIN and the tenant
-- setup; the assignment rules and the duplicate rule; the lock on the phone key; the match lookups
-- in leads, contacts and accounts (crm_match_candidates joined to the table under the policy: the
-- join whose plan flipped to a sequential scan at the function's default estimate of 1,000 rows);
-- the lead and its change-log row; COMMIT — as crm_app (PGOPTIONS). Variables: tenant, owner, pool.
\set k random(0, :pool - 1)
BEGIN;
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT id, record_type, name, position, is_active, criteria::text AS criteria, action, user_id, pool_id, open_record_cap, version,
  created_at, updated_at
FROM assignment_rules WHERE tenant_id = :tenant AND archived_at IS NULL AND record_type = 'lead' AND is_active
ORDER BY record_type, position, id;
SELECT record_type, action, match_keys, match_record_types, min_score, ignore_plus_tags
FROM duplicate_rules WHERE tenant_id = :tenant AND record_type = 'lead';
SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
FROM (SELECT CAST(:tenant AS text) || '|p' || chr(58) || ('+14155' || lpad(CAST(:k AS text), 6, '0')) AS k) AS sorted;
SELECT set_config('pg_trgm.similarity_threshold', '0.5', true);
WITH hits AS (
  SELECT crm_match_candidates AS id FROM crm_match_candidates('leads', 'email_addresses', '{}'::text[], ARRAY[('+14155' || lpad(CAST(:k AS text), 6, '0'))],
    NULL::text, NULL::text, NULL::text, NULL::text))
SELECT id, owner_id, trim(concat_ws(' ', first_name, last_name)) AS display_name,
  CASE WHEN phone_numbers && ARRAY[('+14155' || lpad(CAST(:k AS text), 6, '0'))] THEN ARRAY(SELECT unnest(phone_numbers) INTERSECT SELECT ('+14155' || lpad(CAST(:k AS text), 6, '0'))) ELSE '{}' END AS phone_hits
FROM leads JOIN hits USING (id) WHERE tenant_id = :tenant AND archived_at IS NULL;
WITH hits AS (
  SELECT crm_match_candidates AS id FROM crm_match_candidates('contacts', 'email_addresses', '{}'::text[], ARRAY[('+14155' || lpad(CAST(:k AS text), 6, '0'))],
    NULL::text, NULL::text, NULL::text, NULL::text))
SELECT id, owner_id, trim(concat_ws(' ', first_name, last_name)) AS display_name,
  CASE WHEN phone_numbers && ARRAY[('+14155' || lpad(CAST(:k AS text), 6, '0'))] THEN ARRAY(SELECT unnest(phone_numbers) INTERSECT SELECT ('+14155' || lpad(CAST(:k AS text), 6, '0'))) ELSE '{}' END AS phone_hits
FROM contacts JOIN hits USING (id) WHERE tenant_id = :tenant AND archived_at IS NULL;
WITH hits AS (
  SELECT crm_match_candidates AS id FROM crm_match_candidates('accounts', NULL::text, '{}'::text[], ARRAY[('+14155' || lpad(CAST(:k AS text), 6, '0'))],
    NULL::text, NULL::text, NULL::text, NULL::text))
SELECT id, owner_id, name AS display_name, CASE WHEN phone = ('+14155' || lpad(CAST(:k AS text), 6, '0')) THEN ARRAY[phone] ELSE '{}'::text[] END AS phone_hits
FROM accounts JOIN hits USING (id) WHERE tenant_id = :tenant AND archived_at IS NULL;
INSERT INTO leads (tenant_id, id, created_by, updated_by, owner_id, first_name, last_name, emails, email_addresses, phones,
  phone_numbers, source, status, person_key)
VALUES (:tenant, gen_random_uuid(), :owner, :owner, :owner, 'Bench', 'Duplicate ' || CAST(:k AS text), '[]'::jsonb, '{}'::text[],
  jsonb_build_array(jsonb_build_object('label', '', 'value', ('+14155' || lpad(CAST(:k AS text), 6, '0')), 'primary', true)), ARRAY[('+14155' || lpad(CAST(:k AS text), 6, '0'))], 'unspecified', 'new',
  'bench duplicate ' || CAST(:k AS text))
RETURNING id AS lead_id \gset
INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
VALUES (:tenant, 'lead', :lead_id, 'create', :owner, NULL,
  jsonb_build_array(jsonb_build_object('field', 'first_name', 'old', NULL, 'new', 'Bench'),
    jsonb_build_object('field', 'phones', 'old', NULL, 'new', ('+14155' || lpad(CAST(:k AS text), 6, '0')))));
COMMIT;
