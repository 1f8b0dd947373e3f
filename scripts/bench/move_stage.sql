-- pgbench script: the SQL crmd runs for one MoveOpportunityStage without a request id (the
-- `move-stage` scenario of crm-bench, one deal per client moving between two open stages): BEGIN and
-- the tenant setup pipelined; the deal locked FOR UPDATE (with its stage's name; an admin's lock read
-- has no approval subquery); the pipeline that holds the target stage, with its stages; the approval
-- gate of the target stage; the update of every column returning the row; the change-log row; the
-- re-read of a row a trigger rule changed (none here); the stage-history row; COMMIT — as crm_app
-- (PGOPTIONS). Deal ids are seeded by bench-operate.sh. Captured with log_statement = all at 6bba0b9.
\set deal :client_id + 1
\startpipeline
BEGIN;
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
\endpipeline
SELECT id, owner_id, account_id, primary_contact_id, contact_roles, name, amount_currency, amount_units, amount_nanos,
  close_date, pipeline_id, stage_id AS current_stage, state, probability, probability_overridden, forecast_category,
  forecast_overridden, source_lead_id, next_step, lost_reason, competitors, description, external_id, tags,
  stage_entered_at, closed_at, last_activity_at, version, created_at, updated_at, created_by, updated_by, archived_at,
  (SELECT s.name FROM pipeline_stages s WHERE s.tenant_id = opportunities.tenant_id AND s.id = opportunities.stage_id) AS stage_name,
  NULL::uuid AS approval_lock
FROM opportunities
WHERE tenant_id = :tenant AND id = CAST('00000000-0000-7000-9000-' || lpad(CAST(:deal AS text), 12, '0') AS uuid)
FOR UPDATE \gset
SELECT p.id, p.name, p.description, p.is_default, p.version, p.created_at, p.updated_at, p.archived_at,
  s.id AS stage_id, s.name AS stage_name, s.position, s.category, s.probability, s.forecast_category, s.required_fields
FROM pipelines p
LEFT JOIN pipeline_stages s ON s.tenant_id = p.tenant_id AND s.pipeline_id = p.id AND s.archived_at IS NULL
WHERE p.tenant_id = :tenant AND p.id = (SELECT pipeline_id FROM pipeline_stages WHERE tenant_id = :tenant
  AND id = CASE WHEN CAST(:current_stage AS uuid) = CAST(:stage_a AS uuid) THEN CAST(:stage_b AS uuid) ELSE CAST(:stage_a AS uuid) END
  AND archived_at IS NULL)
ORDER BY s.position;
SELECT p.name FROM approval_processes p
JOIN opportunities o ON o.tenant_id = p.tenant_id AND o.id = CAST(:id AS uuid)
WHERE p.tenant_id = :tenant
  AND p.gated_stage_id = CASE WHEN CAST(:current_stage AS uuid) = CAST(:stage_a AS uuid) THEN CAST(:stage_b AS uuid) ELSE CAST(:stage_a AS uuid) END
  AND p.archived_at IS NULL AND p.is_active
  AND crm_rule_conditions_hold(p.entry_conditions, '[]'::jsonb, crm_rule_record('opportunity', to_jsonb(o)))
  AND NOT EXISTS (SELECT 1 FROM approval_requests r WHERE r.tenant_id = p.tenant_id AND r.process_id = p.id
                  AND r.record_type = 'opportunity' AND r.record_id = o.id AND r.status = 'approved')
ORDER BY p.position, p.id LIMIT 1;
UPDATE opportunities SET (name, account_id, primary_contact_id, contact_roles, contact_ids, amount_currency, amount_units,
  amount_nanos, close_date, pipeline_id, stage_id, state, probability, probability_overridden, forecast_category,
  forecast_overridden, source_lead_id, next_step, lost_reason, competitors, description, external_id, tags, stage_entered_at,
  closed_at, owner_id) = (name, account_id, primary_contact_id, contact_roles, contact_ids, amount_currency, amount_units,
  amount_nanos, close_date, pipeline_id,
  CASE WHEN stage_id = CAST(:stage_a AS uuid) THEN CAST(:stage_b AS uuid) ELSE CAST(:stage_a AS uuid) END, state,
  CASE WHEN stage_id = CAST(:stage_a AS uuid) THEN 40 ELSE 20 END, probability_overridden, forecast_category,
  forecast_overridden, source_lead_id, next_step, lost_reason, competitors, description, external_id, tags, now(),
  closed_at, owner_id),
  version = version + 1, updated_at = now(), updated_by = :owner
WHERE tenant_id = :tenant AND id = CAST('00000000-0000-7000-9000-' || lpad(CAST(:deal AS text), 12, '0') AS uuid)
RETURNING id, owner_id, account_id, name, pipeline_id, stage_id, state, probability, forecast_category, version,
  created_at, updated_at, (SELECT s.name FROM pipeline_stages s WHERE s.tenant_id = opportunities.tenant_id AND s.id = opportunities.stage_id) AS stage_name;
INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
VALUES (:tenant, 'opportunity', CAST('00000000-0000-7000-9000-' || lpad(CAST(:deal AS text), 12, '0') AS uuid), 'update', :owner, NULL,
  jsonb_build_array(
    jsonb_build_object('field', 'stage_id', 'old', CAST(:current_stage AS text), 'new', 'other'),
    jsonb_build_object('field', 'probability', 'old', 20, 'new', 40)));
SELECT id, version FROM opportunities
WHERE current_setting('crm.rules_touched', true) = 'on' AND tenant_id = :tenant
  AND id = CAST('00000000-0000-7000-9000-' || lpad(CAST(:deal AS text), 12, '0') AS uuid);
INSERT INTO opportunity_stage_history (tenant_id, opportunity_id, from_stage_id, to_stage_id, pipeline_id, amount_currency,
  amount_units, amount_nanos, probability, forecast_category, close_date, changed_at, changed_by)
VALUES (:tenant, CAST('00000000-0000-7000-9000-' || lpad(CAST(:deal AS text), 12, '0') AS uuid), CAST(:current_stage AS uuid),
  CASE WHEN CAST(:current_stage AS uuid) = CAST(:stage_a AS uuid) THEN CAST(:stage_b AS uuid) ELSE CAST(:stage_a AS uuid) END,
  CAST(:pipeline_id AS uuid), NULL, NULL, NULL, 40, 'pipeline', NULL, now(), :owner);
COMMIT;
