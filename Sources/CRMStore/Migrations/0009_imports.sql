-- Bulk imports: one row per import (state and counts) and a ledger with one row per imported source
-- row. A batch's records and its ledger rows commit together, so a re-sent row finds its ledger entry
-- and is never written twice.

CREATE TABLE imports (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  import_id text NOT NULL CHECK (length(import_id) BETWEEN 1 AND 128),
  record_type text NOT NULL CHECK (record_type IN ('lead', 'contact', 'account')),
  mode text NOT NULL CHECK (mode IN ('insert', 'upsert_by_external_id', 'upsert_by_email')),
  state text NOT NULL CHECK (state IN ('running', 'interrupted', 'completed')),
  source_name text NOT NULL DEFAULT '' CHECK (length(source_name) <= 500),
  expected_rows bigint NOT NULL DEFAULT 0,
  created bigint NOT NULL DEFAULT 0,
  updated bigint NOT NULL DEFAULT 0,
  duplicate_skipped bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0,
  next_index bigint NOT NULL DEFAULT 0,
  created_by uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, import_id)
);
CREATE INDEX imports_by_time ON imports (tenant_id, created_at DESC, import_id);

CREATE TABLE import_rows (
  tenant_id uuid NOT NULL,
  import_id text NOT NULL,
  row_index bigint NOT NULL CHECK (row_index >= 0),
  outcome text NOT NULL CHECK (outcome IN ('created', 'updated', 'duplicate_skipped', 'failed')),
  record_id uuid,
  -- Failed rows: [{field, column, reason, description}]; skipped rows: [{record_type, record_id}].
  detail jsonb,
  PRIMARY KEY (tenant_id, import_id, row_index),
  FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, import_id)
);

ALTER TABLE imports ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON imports TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON imports TO crm_app;

ALTER TABLE import_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON import_rows TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON import_rows TO crm_app;
