-- Weekly forecast snapshots (docs/forecast.md): what every deal of the current and the next quarter
-- looked like when the week's snapshot was taken. Immutable: crm_app may insert and read, never change.

CREATE TABLE forecast_snapshots (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  -- The Monday (UTC) of the week the snapshot belongs to: one per tenant and week.
  week_start date NOT NULL,
  taken_at timestamptz NOT NULL,
  -- The close dates it covers: the current quarter and the next one, in the fiscal calendar of then.
  window_start date NOT NULL,
  window_end date NOT NULL CHECK (window_end >= window_start),
  deals integer NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, week_start)
);

-- A deal as the snapshot saw it: every deal with a close date in the window, and every deal of the
-- snapshot before (so a deal that moved out, lost its amount or was archived is still seen).
CREATE TABLE forecast_snapshot_deals (
  tenant_id uuid NOT NULL,
  snapshot_id uuid NOT NULL,
  opportunity_id uuid NOT NULL,
  owner_id uuid NOT NULL,
  currency text,
  amount numeric(38, 9),
  probability integer NOT NULL,
  forecast_category text NOT NULL,
  state text NOT NULL,
  close_date date,
  archived boolean NOT NULL,
  PRIMARY KEY (tenant_id, snapshot_id, opportunity_id),
  FOREIGN KEY (tenant_id, snapshot_id) REFERENCES forecast_snapshots (tenant_id, id)
);

-- The tenants with deals that have no snapshot for the week (the job runs without a tenant).
CREATE FUNCTION crm_forecast_snapshot_tenants(week date)
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT t.id FROM tenants t
  WHERE EXISTS (SELECT 1 FROM opportunities o WHERE o.tenant_id = t.id)
    AND NOT EXISTS (SELECT 1 FROM forecast_snapshots s WHERE s.tenant_id = t.id AND s.week_start = week)
$$;
REVOKE ALL ON FUNCTION crm_forecast_snapshot_tenants(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_forecast_snapshot_tenants(date) TO crm_app;

ALTER TABLE forecast_snapshots ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON forecast_snapshots TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON forecast_snapshots TO crm_app;

ALTER TABLE forecast_snapshot_deals ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON forecast_snapshot_deals TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON forecast_snapshot_deals TO crm_app;
