-- Pipeline and funnel analytics (docs/analytics.md).
--
-- A lead's funnel steps: when it was first worked (working, nurturing, qualified or converted) and
-- first qualified (qualified or converted); conversion already has converted_at. Kept by the
-- database on every path that writes a status — the API, conversion, trigger rules, imports, jobs —
-- at the write's own time (updated_at, which every store sets). A row trigger with a WHEN clause:
-- an insert of a new lead (every import row) never calls it.
ALTER TABLE leads ADD COLUMN worked_at timestamptz, ADD COLUMN qualified_at timestamptz;

CREATE FUNCTION crm_lead_funnel_steps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IN ('working', 'nurturing', 'qualified', 'converted') THEN
    NEW.worked_at := coalesce(NEW.worked_at, NEW.updated_at, now());
  END IF;
  IF NEW.status IN ('qualified', 'converted') THEN
    NEW.qualified_at := coalesce(NEW.qualified_at, NEW.updated_at, now());
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER leads_funnel_steps_on_insert BEFORE INSERT ON leads
  FOR EACH ROW WHEN (NEW.status NOT IN ('new', 'disqualified')) EXECUTE FUNCTION crm_lead_funnel_steps();
CREATE TRIGGER leads_funnel_steps_on_update BEFORE UPDATE OF status ON leads
  FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status NOT IN ('new', 'disqualified'))
  EXECUTE FUNCTION crm_lead_funnel_steps();

-- Leads that moved before this migration: the first recorded status change into each step (from the
-- change log), else — for a lead whose history does not say — its last update.
UPDATE leads l SET
  worked_at = coalesce(
    (SELECT min(c.changed_at) FROM change_log c
      WHERE c.tenant_id = l.tenant_id AND c.record_type = 'lead' AND c.record_id = l.id
        AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.changes) e
          WHERE e->>'field' = 'status' AND e->>'new' IN ('working', 'nurturing', 'qualified', 'converted'))),
    l.converted_at, l.updated_at),
  qualified_at = CASE WHEN l.status IN ('qualified', 'converted') THEN coalesce(
    (SELECT min(c.changed_at) FROM change_log c
      WHERE c.tenant_id = l.tenant_id AND c.record_type = 'lead' AND c.record_id = l.id
        AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.changes) e
          WHERE e->>'field' = 'status' AND e->>'new' IN ('qualified', 'converted'))),
    l.converted_at, l.updated_at) END
WHERE l.status IN ('working', 'nurturing', 'qualified', 'converted');

-- Deals closed in a period, per pipeline (win rate, won amount, sales cycle).
CREATE INDEX opportunities_closed ON opportunities (tenant_id, pipeline_id, closed_at) WHERE closed_at IS NOT NULL;
