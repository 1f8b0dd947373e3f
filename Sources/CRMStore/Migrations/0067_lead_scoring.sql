-- Learned lead scoring (docs/scoring.md): per tenant, models trained on its own history, and each
-- lead's score from the model in force.

-- The tenant's scoring settings: the conversion window the model predicts, and the history it needs
-- before it replaces the rule-based score (Einstein's defaults: 1,000 leads, 120 conversions).
ALTER TABLE tenants
  ADD COLUMN scoring_window_days integer NOT NULL DEFAULT 90 CHECK (scoring_window_days BETWEEN 7 AND 365),
  ADD COLUMN scoring_min_leads integer NOT NULL DEFAULT 1000 CHECK (scoring_min_leads BETWEEN 100 AND 1000000),
  ADD COLUMN scoring_min_conversions integer NOT NULL DEFAULT 120 CHECK (scoring_min_conversions BETWEEN 10 AND 1000000);

-- Every training run, kept: the one in force is the newest with status 'active'. A run that found too
-- little history, or a model no better than chance, is recorded too, so the tenant can see why it
-- stays on rules.
CREATE TABLE scoring_models (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  version integer NOT NULL CHECK (version > 0),
  status text NOT NULL CHECK (status IN ('active', 'no_signal', 'insufficient_history')),
  -- Why the model is not in force, in words a person reads.
  status_reason text CHECK (length(status_reason) <= 1000),
  trained_at timestamptz NOT NULL,
  -- NULL: the scheduled job.
  trained_by uuid,
  window_days integer NOT NULL,
  history_leads integer NOT NULL,
  history_conversions integer NOT NULL,
  -- CRMCore.LeadScoringModel (weights, AUC, sizes); NULL when there was too little history to fit one.
  model jsonb,
  auc double precision,
  -- Leads scored by the model's passes, and when the last full pass ended.
  scored_leads bigint NOT NULL DEFAULT 0,
  last_full_pass_at timestamptz,
  PRIMARY KEY (tenant_id, version)
);

-- A lead's learned score, apart from the lead's row: a scoring pass over a million leads writes this
-- narrow table (two indexes) instead of new versions of every lead (twenty-five indexes, trigram GIN
-- among them). Reads of a lead bring it along (CRMStore.Lead.columns).
CREATE TABLE lead_scores (
  tenant_id uuid NOT NULL,
  lead_id uuid NOT NULL,
  model_version integer NOT NULL,
  score smallint NOT NULL CHECK (score BETWEEN 1 AND 99),
  tier text NOT NULL CHECK (tier IN ('very_high', 'high', 'medium', 'low')),
  -- [{"feature": "source", "value": "partner", "points": 18}, …]: up to three up, three down.
  reasons jsonb NOT NULL,
  scored_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, lead_id),
  FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX lead_scores_by_score ON lead_scores (tenant_id, score DESC, lead_id DESC);

-- Where each tenant's scoring passes are: the lead id the rolling pass continues after, and the
-- update time up to which changed leads were rescored.
CREATE TABLE scoring_progress (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
  model_version integer NOT NULL,
  sweep_after uuid,
  changed_through timestamptz NOT NULL
);

ALTER TABLE scoring_models ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scoring_models TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON scoring_models TO crm_app;

ALTER TABLE lead_scores ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON lead_scores TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON lead_scores TO crm_app;

ALTER TABLE scoring_progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scoring_progress TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON scoring_progress TO crm_app;

-- The scoring job's worklist, across tenants (row-level security binds crm_app to one tenant): each
-- tenant with leads, whether its last training run is older than a week (or it has none), and the
-- version of its model in force.
CREATE FUNCTION crm_scoring_tenants(p_now timestamptz)
RETURNS TABLE (tenant_id uuid, retrain boolean, active_version integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT t.id,
    coalesce((SELECT max(m.trained_at) FROM scoring_models m WHERE m.tenant_id = t.id) < p_now - interval '7 days', true),
    (SELECT max(m.version) FROM scoring_models m WHERE m.tenant_id = t.id AND m.status = 'active')
  FROM tenants t
  WHERE EXISTS (SELECT 1 FROM leads l WHERE l.tenant_id = t.id)
$$;
REVOKE ALL ON FUNCTION crm_scoring_tenants(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_scoring_tenants(timestamptz) TO crm_app;
