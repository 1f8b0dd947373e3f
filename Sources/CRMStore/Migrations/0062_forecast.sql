-- The sales forecast: the tenant's fiscal calendar, quotas, and the owners' and managers' adjustments
-- of forecast numbers (docs/forecast.md).

ALTER TABLE tenants ADD COLUMN fiscal_year_start_month smallint NOT NULL DEFAULT 1
  CHECK (fiscal_year_start_month BETWEEN 1 AND 12);
ALTER TABLE tenants ADD COLUMN forecast_period text NOT NULL DEFAULT 'quarter'
  CHECK (forecast_period IN ('month', 'quarter'));

-- A user's target for one period in one currency. The period is kept as its kind and dates, so a
-- quota's meaning never depends on how the calendar is named.
CREATE TABLE quotas (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  user_id uuid NOT NULL,
  period_kind text NOT NULL CHECK (period_kind IN ('month', 'quarter', 'year')),
  period_start date NOT NULL,
  period_end date NOT NULL CHECK (period_end >= period_start),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount numeric(38, 9) NOT NULL CHECK (amount >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid,
  PRIMARY KEY (tenant_id, user_id, period_kind, period_start, currency),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX quotas_by_period ON quotas (tenant_id, period_start);

-- Append-only: a new adjustment of the same number by the same person supersedes the one in force
-- (only `superseded_at` is ever updated, and crm_app may update nothing else); a NULL amount records
-- that the adjustment was removed.
CREATE TABLE forecast_adjustments (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  subject_id uuid NOT NULL,
  adjuster_id uuid NOT NULL,
  period_kind text NOT NULL CHECK (period_kind IN ('month', 'quarter', 'year')),
  period_start date NOT NULL,
  period_end date NOT NULL CHECK (period_end >= period_start),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  column_name text NOT NULL CHECK (column_name IN ('commit', 'best_case', 'pipeline')),
  amount numeric(38, 9) CHECK (amount >= 0),
  note text NOT NULL DEFAULT '' CHECK (length(note) <= 255),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  superseded_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, subject_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, adjuster_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX forecast_adjustments_in_force
  ON forecast_adjustments (tenant_id, subject_id, adjuster_id, period_kind, period_start, currency, column_name)
  WHERE superseded_at IS NULL;
CREATE INDEX forecast_adjustments_by_period ON forecast_adjustments (tenant_id, period_start, period_kind, created_at DESC);

-- The forecast's scan: one period's deals in one currency, everything it sums read from the index.
CREATE INDEX opportunities_forecast ON opportunities (tenant_id, amount_currency, close_date)
  INCLUDE (owner_id, forecast_category, amount_units, amount_nanos, probability)
  WHERE archived_at IS NULL AND close_date IS NOT NULL AND amount_currency IS NOT NULL;

ALTER TABLE quotas ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quotas TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON quotas TO crm_app;

ALTER TABLE forecast_adjustments ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON forecast_adjustments TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON forecast_adjustments TO crm_app;
GRANT UPDATE (superseded_at) ON forecast_adjustments TO crm_app;
