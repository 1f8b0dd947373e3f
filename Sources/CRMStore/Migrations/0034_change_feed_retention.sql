-- How long the change feed keeps a tenant's changes (at least 30 days), and how far it has pruned:
-- a cursor before the watermark answers OUT_OF_RANGE instead of silently skipping what was pruned.
ALTER TABLE tenants ADD COLUMN change_feed_retention_days integer NOT NULL DEFAULT 30
  CHECK (change_feed_retention_days BETWEEN 30 AND 3650);

CREATE TABLE change_feed_pruned (
  tenant_id uuid PRIMARY KEY,
  -- Every position at or before this one is gone.
  up_to bigint NOT NULL
);
ALTER TABLE change_feed_pruned ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON change_feed_pruned TO crm_app USING (tenant_id = crm_current_tenant());
GRANT SELECT ON change_feed_pruned TO crm_app;
