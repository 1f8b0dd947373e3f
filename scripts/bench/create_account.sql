-- pgbench script: the SQL crmd runs for one CreateAccount without a request id, owned by the caller:
-- BEGIN and the tenant setup pipelined in one round trip; the tenant's assignment rules (none fire
-- here: the owner stays the caller); the tenant's duplicate rule (the standard
-- one compares emails, phones and domains, which a name-only account lacks, so no lookup follows);
-- the insert (with its company match key, which feeds the two company-block indexes) returning
-- the row; the change-log row; COMMIT; under the crm_app role (PGOPTIONS). (The change log is
-- built with jsonb_build_* because pgbench would read `:null` in a JSON literal as a variable.)
\set worker random(1, 16)
\set sequence random(1, 1000000000)
\startpipeline
BEGIN;
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
\endpipeline
SELECT id, record_type, name, position, is_active, criteria::text AS criteria, action, user_id, pool_id, open_record_cap, version,
  created_at, updated_at
FROM assignment_rules WHERE tenant_id = :tenant AND archived_at IS NULL AND record_type = 'account' AND is_active
ORDER BY record_type, position, id;
SELECT record_type, action, match_keys, match_record_types, min_score, ignore_plus_tags
FROM duplicate_rules WHERE tenant_id = :tenant AND record_type = 'account';
INSERT INTO accounts (tenant_id, id, created_by, updated_by, name, website, domain, industry, account_type, tier,
  employee_count, annual_revenue_currency, annual_revenue_units, annual_revenue_nanos, phone, billing_address,
  shipping_address, parent_id, description, external_id, tags, owner_id, company_key)
VALUES (:tenant, gen_random_uuid(), :owner, :owner, 'Bench ' || :worker || '-' || :sequence, NULL, NULL, NULL, 'unspecified',
  'unspecified', NULL, NULL, NULL, NULL, NULL, NULL::jsonb, NULL::jsonb, NULL, NULL, NULL, '{}'::text[], :owner,
  'bench ' || :worker || ' ' || :sequence)
RETURNING id, owner_id, name, version, created_at, updated_at;
INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
VALUES (:tenant, 'account', gen_random_uuid(), 'create', :owner, NULL,
  jsonb_build_array(
    jsonb_build_object('field', 'name', 'old', NULL, 'new', 'pgbench'),
    jsonb_build_object('field', 'owner_id', 'old', NULL, 'new', :owner::text)));
COMMIT;
