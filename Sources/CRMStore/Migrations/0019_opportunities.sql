-- Pipelines with ordered stages, opportunities moving through them, and the stage history that
-- time-in-stage and stage-to-stage conversion are computed from.
--
-- The change log stays the audit trail of every field (stage moves included); the stage history is
-- the typed fact table insight queries read, written in the same transaction as each move.

CREATE TABLE pipelines (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  description text CHECK (length(description) <= 1000),
  -- The pipeline opportunities go to when a create names none; exactly one per tenant.
  is_default boolean NOT NULL DEFAULT false,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  CHECK (NOT (is_default AND archived_at IS NOT NULL))
);
CREATE UNIQUE INDEX pipelines_name ON pipelines (tenant_id, lower(name)) WHERE archived_at IS NULL;
CREATE UNIQUE INDEX pipelines_one_default ON pipelines (tenant_id) WHERE is_default;

CREATE TABLE pipeline_stages (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  pipeline_id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- Order within the pipeline, from 0; open stages come before closed ones.
  position integer NOT NULL CHECK (position >= 0),
  category text NOT NULL CHECK (category IN ('open', 'won', 'lost')),
  probability integer NOT NULL CHECK (probability BETWEEN 0 AND 100),
  forecast_category text NOT NULL CHECK (forecast_category IN ('pipeline', 'best_case', 'commit', 'closed', 'omitted')),
  -- Opportunity fields that must be set to enter this stage or any later open stage.
  required_fields text[] NOT NULL DEFAULT '{}' CHECK (cardinality(required_fields) <= 20),
  -- A stage removed from its pipeline: kept for the history that names it.
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, pipeline_id, id),
  FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id),
  CHECK (category = 'open' OR forecast_category = CASE category WHEN 'won' THEN 'closed' ELSE 'omitted' END)
);
CREATE INDEX pipeline_stages_by_pipeline ON pipeline_stages (tenant_id, pipeline_id, position);

CREATE TABLE opportunities (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  owner_id uuid NOT NULL,
  account_id uuid NOT NULL,
  primary_contact_id uuid,
  -- [{"contact_id": …, "role": …}], with contact_ids the same ids for index lookups (merges, timelines).
  contact_roles jsonb NOT NULL DEFAULT '[]'::jsonb,
  contact_ids uuid[] NOT NULL DEFAULT '{}' CHECK (cardinality(contact_ids) <= 50),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  amount_currency text CHECK (amount_currency ~ '^[A-Z]{3}$'),
  amount_units bigint,
  amount_nanos integer CHECK (amount_nanos BETWEEN -999999999 AND 999999999),
  close_date date,
  pipeline_id uuid NOT NULL,
  stage_id uuid NOT NULL,
  -- The stage's category, copied so lists and jobs filter open deals without a join.
  state text NOT NULL CHECK (state IN ('open', 'won', 'lost')),
  probability integer NOT NULL CHECK (probability BETWEEN 0 AND 100),
  -- True when the caller set the probability; a stage move resets it to the new stage's default.
  probability_overridden boolean NOT NULL DEFAULT false,
  forecast_category text NOT NULL CHECK (forecast_category IN ('pipeline', 'best_case', 'commit', 'closed', 'omitted')),
  forecast_overridden boolean NOT NULL DEFAULT false,
  source_lead_id uuid,
  next_step text CHECK (length(next_step) <= 255),
  lost_reason text CHECK (length(lost_reason) <= 500),
  competitors text[] NOT NULL DEFAULT '{}' CHECK (cardinality(competitors) <= 20),
  description text CHECK (length(description) <= 10000),
  external_id text CHECK (length(external_id) <= 255),
  tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
  stage_entered_at timestamptz NOT NULL DEFAULT now(),
  closed_at timestamptz,
  last_activity_at timestamptz,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
  FOREIGN KEY (tenant_id, primary_contact_id) REFERENCES contacts (tenant_id, id),
  FOREIGN KEY (tenant_id, source_lead_id) REFERENCES leads (tenant_id, id),
  FOREIGN KEY (tenant_id, pipeline_id, stage_id) REFERENCES pipeline_stages (tenant_id, pipeline_id, id),
  CHECK ((amount_currency IS NULL) = (amount_units IS NULL)),
  CHECK ((state = 'open') = (closed_at IS NULL)),
  CHECK (state = 'lost' OR lost_reason IS NULL)
);
CREATE UNIQUE INDEX opportunities_external_id ON opportunities (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX opportunities_by_name ON opportunities (tenant_id, (lower(name) COLLATE "C"), id);
CREATE INDEX opportunities_by_update ON opportunities (tenant_id, updated_at DESC, id DESC);
CREATE INDEX opportunities_by_owner ON opportunities (tenant_id, owner_id);
CREATE INDEX opportunities_by_account ON opportunities (tenant_id, account_id);
CREATE INDEX opportunities_by_stage ON opportunities (tenant_id, pipeline_id, stage_id);
CREATE INDEX opportunities_by_close_date ON opportunities (tenant_id, close_date) WHERE close_date IS NOT NULL;
CREATE INDEX opportunities_by_contact ON opportunities USING gin (contact_ids);
CREATE INDEX opportunities_by_tag ON opportunities USING gin (tags);
CREATE INDEX opportunities_by_source_lead ON opportunities (tenant_id, source_lead_id) WHERE source_lead_id IS NOT NULL;
-- The stale-deal job's scan: open deals by their last sign of life.
CREATE INDEX opportunities_open_by_activity ON opportunities (tenant_id, (coalesce(last_activity_at, stage_entered_at)))
  WHERE state = 'open' AND archived_at IS NULL;

-- One row per stage an opportunity entered (its create included), in order.
CREATE TABLE opportunity_stage_history (
  tenant_id uuid NOT NULL,
  opportunity_id uuid NOT NULL,
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  from_stage_id uuid,
  to_stage_id uuid NOT NULL,
  pipeline_id uuid NOT NULL,
  -- What the deal looked like on entering the stage, for conversion and slippage reports.
  amount_currency text,
  amount_units bigint,
  amount_nanos integer,
  probability integer NOT NULL,
  forecast_category text NOT NULL,
  close_date date,
  changed_at timestamptz NOT NULL DEFAULT now(),
  changed_by uuid,
  PRIMARY KEY (tenant_id, opportunity_id, sequence),
  FOREIGN KEY (tenant_id, opportunity_id) REFERENCES opportunities (tenant_id, id),
  FOREIGN KEY (tenant_id, to_stage_id) REFERENCES pipeline_stages (tenant_id, id),
  FOREIGN KEY (tenant_id, from_stage_id) REFERENCES pipeline_stages (tenant_id, id)
);
CREATE INDEX opportunity_stage_history_by_stage ON opportunity_stage_history (tenant_id, to_stage_id, changed_at);

ALTER TABLE pipelines ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pipelines TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON pipelines TO crm_app;

ALTER TABLE pipeline_stages ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pipeline_stages TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON pipeline_stages TO crm_app;

ALTER TABLE opportunities ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON opportunities TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON opportunities TO crm_app;

ALTER TABLE opportunity_stage_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON opportunity_stage_history TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON opportunity_stage_history TO crm_app;

-- A UUIDv7 (time-ordered, like the ids crmd makes) for rows the database seeds itself.
CREATE FUNCTION crm_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

-- Every tenant starts with one pipeline, "Sales", whose stages admins rename, reorder or replace.
CREATE FUNCTION crm_seed_default_pipeline(p_tenant uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  v_pipeline uuid := crm_uuid_v7();
BEGIN
  IF EXISTS (SELECT 1 FROM pipelines WHERE tenant_id = p_tenant) THEN
    RETURN;
  END IF;
  INSERT INTO pipelines (tenant_id, id, name, description, is_default)
  VALUES (p_tenant, v_pipeline, 'Sales', 'New business', true);
  INSERT INTO pipeline_stages (tenant_id, id, pipeline_id, name, position, category, probability, forecast_category, required_fields)
  SELECT p_tenant, crm_uuid_v7(), v_pipeline, s.name, s.position, s.category, s.probability, s.forecast, s.required
  FROM (VALUES
    ('Prospecting', 0, 'open', 10, 'pipeline', '{}'::text[]),
    ('Qualification', 1, 'open', 20, 'pipeline', '{}'::text[]),
    ('Needs analysis', 2, 'open', 40, 'pipeline', '{}'::text[]),
    ('Proposal', 3, 'open', 60, 'best_case', '{amount,close_date}'::text[]),
    ('Negotiation', 4, 'open', 80, 'commit', '{amount,close_date}'::text[]),
    ('Closed won', 5, 'won', 100, 'closed', '{amount,close_date}'::text[]),
    ('Closed lost', 6, 'lost', 0, 'omitted', '{}'::text[])
  ) AS s (name, position, category, probability, forecast, required);
END
$$;
REVOKE ALL ON FUNCTION crm_seed_default_pipeline(uuid) FROM PUBLIC;

CREATE FUNCTION crm_tenant_seed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
  PERFORM crm_seed_default_pipeline(NEW.id);
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_tenant_seed() FROM PUBLIC;
CREATE TRIGGER tenants_seed AFTER INSERT ON tenants FOR EACH ROW EXECUTE FUNCTION crm_tenant_seed();

SELECT crm_seed_default_pipeline(id) FROM tenants;
