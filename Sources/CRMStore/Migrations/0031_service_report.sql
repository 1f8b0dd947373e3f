-- What the service report reads: each clock's counted time (business or calendar, as its target
-- measures) kept with its summary, final once the clock ends.
ALTER TABLE sla_instances ADD COLUMN elapsed_seconds bigint, ADD COLUMN ended_at timestamptz;
CREATE INDEX sla_instances_ended ON sla_instances (tenant_id, ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sla_instances_breached ON sla_instances (tenant_id, breach_at) WHERE breach_at IS NOT NULL;
CREATE INDEX tickets_surveyed ON tickets (tenant_id, satisfaction_issued_at) WHERE satisfaction_issued_at IS NOT NULL;
