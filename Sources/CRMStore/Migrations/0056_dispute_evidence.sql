-- A warning before a dispute's evidence falls due (docs/billing.md, "Disputes"): the collections job
-- adds an internal note to the dispute's ticket and raises a task for whoever works it, once per
-- evidence due date (`evidence_warned_for` is the claim), the tenant's number of days before.

ALTER TABLE tenants ADD COLUMN dispute_evidence_warning_days integer NOT NULL DEFAULT 3
  CHECK (dispute_evidence_warning_days BETWEEN 0 AND 60);
ALTER TABLE invoice_disputes ADD COLUMN evidence_warned_for date;
CREATE INDEX invoice_disputes_evidence_due ON invoice_disputes (tenant_id, evidence_due)
  WHERE state = 'needs_response' AND evidence_due IS NOT NULL;

ALTER TABLE tasks DROP CONSTRAINT tasks_alert_kind_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_alert_kind_check
  CHECK (alert_kind IN ('stale_deal', 'expiring_holding', 'recycled', 'dunning', 'broken_promise', 'dispute_evidence'));

CREATE OR REPLACE FUNCTION crm_collection_tenants()
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT tenant_id FROM dunning_levels
  UNION
  SELECT tenant_id FROM account_collections WHERE promise_state = 'open' OR escalation IS NOT NULL OR credit_hold
  UNION
  SELECT tenant_id FROM invoice_disputes
  WHERE state = 'needs_response' AND evidence_due IS NOT NULL AND evidence_warned_for IS DISTINCT FROM evidence_due
$$;
