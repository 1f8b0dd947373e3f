-- pgbench script: the SQL crmd runs for one CaptureLead of a web form from a new person (the
-- `capture` scenario of crm-bench): BEGIN and the tenant setup pipelined; the advisory lock on the
-- message key and the captures ledger lookup; the tenant's lead duplicate rule; the lock on the
-- sender's email key; the match lookups in leads and contacts (crm_match_candidates, then the rows by
-- primary key under the policy); the tenant's lead assignment rules; the lead and its change-log row; the interaction, its change-log row
-- and link; last_activity_at; the ledger row; COMMIT — as crm_app (PGOPTIONS). (pgbench reads `:word`
-- inside a string literal as a variable, hence chr(58) for the colon of the `e:` key prefix.)
\set n random(1, 2000000000)
\startpipeline
BEGIN;
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
\endpipeline
SELECT pg_advisory_xact_lock(hashtextextended(CAST(:tenant AS text) || '|capture|web_form|sha256:' || CAST(:n AS text), 0));
SELECT outcome, record_type, record_id, interaction_id FROM captures
WHERE tenant_id = :tenant AND channel = 'web_form' AND message_id = 'sha256:' || CAST(:n AS text);
SELECT record_type, action, match_keys, match_record_types, min_score, ignore_plus_tags
FROM duplicate_rules WHERE tenant_id = :tenant AND record_type = 'lead';
SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
FROM (SELECT CAST(:tenant AS text) || '|e' || chr(58) || 'visitor-' || CAST(:n AS text) || '@capture.example' AS k) AS sorted;
\startpipeline
WITH hits AS (
  SELECT crm_match_candidates AS id FROM crm_match_candidates('leads', 'email_addresses',
    ARRAY['visitor-' || CAST(:n AS text) || '@capture.example'], '{}'::text[], NULL::text, NULL::text, NULL::text, NULL::text))
SELECT id, owner_id, ARRAY(SELECT unnest(email_addresses) INTERSECT SELECT 'visitor-' || CAST(:n AS text) || '@capture.example') AS email_hits
FROM leads JOIN hits USING (id) WHERE tenant_id = :tenant AND archived_at IS NULL LIMIT 200;
WITH hits AS (
  SELECT crm_match_candidates AS id FROM crm_match_candidates('contacts', 'email_addresses',
    ARRAY['visitor-' || CAST(:n AS text) || '@capture.example'], '{}'::text[], NULL::text, NULL::text, NULL::text, NULL::text))
SELECT id, owner_id, ARRAY(SELECT unnest(email_addresses) INTERSECT SELECT 'visitor-' || CAST(:n AS text) || '@capture.example') AS email_hits
FROM contacts JOIN hits USING (id) WHERE tenant_id = :tenant AND archived_at IS NULL LIMIT 200;
\endpipeline
SELECT id, record_type, name, position, is_active, criteria::text AS criteria, action, user_id, pool_id, open_record_cap, version,
  created_at, updated_at
FROM assignment_rules WHERE tenant_id = :tenant AND archived_at IS NULL AND record_type = 'lead' AND is_active
ORDER BY record_type, position, id;
INSERT INTO leads (tenant_id, id, created_by, updated_by, owner_id, first_name, last_name, company, emails, email_addresses,
  email_keys, source, source_detail, description, company_key, person_key)
VALUES (:tenant, gen_random_uuid(), :owner, :owner, :owner, 'Visitor', CAST(:n AS text), 'Company ' || CAST(:n AS text),
  jsonb_build_array(jsonb_build_object('label', '', 'primary', true, 'value', 'visitor-' || CAST(:n AS text) || '@capture.example')),
  ARRAY['visitor-' || CAST(:n AS text) || '@capture.example'], ARRAY['visitor-' || CAST(:n AS text) || '@capture.example'], 'web_form', 'Contact us',
  'Please call me back about pricing', 'company ' || CAST(:n AS text), 'visitor ' || CAST(:n AS text))
RETURNING id AS lead_id \gset
INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
VALUES (:tenant, 'lead', :lead_id, 'create', :owner, NULL,
  jsonb_build_array(jsonb_build_object('field', 'first_name', 'old', NULL, 'new', 'Visitor'),
    jsonb_build_object('field', 'emails', 'old', NULL, 'new', 'visitor-' || CAST(:n AS text) || '@capture.example')));
INSERT INTO interactions (tenant_id, id, created_by, updated_by, kind, direction, subject, body, participants, start_at,
  links, channel, external_message_id, owner_id)
VALUES (:tenant, gen_random_uuid(), :owner, :owner, 'note', 'inbound', 'Web form: Contact us', 'Please call me back about pricing',
  '[]'::jsonb, now(), ARRAY['lead:' || :lead_id], 'web_form', 'sha256:' || CAST(:n AS text), :owner)
RETURNING id AS interaction_id \gset
INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
VALUES (:tenant, 'interaction', :interaction_id, 'create', :owner, NULL,
  jsonb_build_array(jsonb_build_object('field', 'kind', 'old', NULL, 'new', 'note')));
INSERT INTO interaction_links (tenant_id, interaction_id, record_type, record_id, occurred_at)
VALUES (:tenant, :interaction_id, 'lead', :lead_id, now());
UPDATE leads SET last_activity_at = greatest(last_activity_at, now()) WHERE tenant_id = :tenant AND id = ANY(ARRAY[:lead_id]::uuid[]);
INSERT INTO captures (tenant_id, channel, message_id, outcome, record_type, record_id, interaction_id, key_id, captured_by)
VALUES (:tenant, 'web_form', 'sha256:' || CAST(:n AS text), 'created_lead', 'lead', :lead_id, :interaction_id, NULL, :owner);
COMMIT;
