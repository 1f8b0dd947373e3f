-- Tasks: follow-ups with a due time, an assignee and an optional related record; and the alerts the
-- background jobs raise as tasks (stale deals, holdings about to return to their pool, recycled
-- records), each event once (alert_key).

CREATE TABLE tasks (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  -- The assignee.
  owner_id uuid NOT NULL,
  subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
  description text CHECK (length(description) <= 10000),
  due_at timestamptz,
  reminder_at timestamptz,
  priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
  related_type text CHECK (related_type IN ('lead', 'contact', 'account', 'opportunity')),
  related_id uuid,
  completed_at timestamptz,
  -- Set on tasks a job raised: what kind of alert, and the event's key (one task per event).
  alert_kind text CHECK (alert_kind IN ('stale_deal', 'expiring_holding', 'recycled')),
  alert_key text CHECK (length(alert_key) <= 200),
  -- The owner's manager, flagged on a stale deal: they see the task in ListMyTasks (flagged).
  flagged_manager_id uuid,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, flagged_manager_id) REFERENCES users (tenant_id, id),
  CHECK ((related_type IS NULL) = (related_id IS NULL)),
  CHECK ((status = 'done') = (completed_at IS NOT NULL)),
  CHECK ((alert_kind IS NULL) = (alert_key IS NULL))
);
CREATE UNIQUE INDEX tasks_alert ON tasks (tenant_id, alert_key) WHERE alert_key IS NOT NULL;
-- ListMyTasks: an assignee's open tasks by due time (overdue first), undated last.
CREATE INDEX tasks_open_by_owner ON tasks (tenant_id, owner_id, (coalesce(due_at, 'infinity'::timestamptz)), id)
  WHERE status IN ('open', 'in_progress') AND archived_at IS NULL;
CREATE INDEX tasks_by_owner ON tasks (tenant_id, owner_id, updated_at DESC, id DESC);
CREATE INDEX tasks_flagged ON tasks (tenant_id, flagged_manager_id) WHERE flagged_manager_id IS NOT NULL;
CREATE INDEX tasks_by_related ON tasks (tenant_id, related_type, related_id) WHERE related_id IS NOT NULL;
CREATE INDEX tasks_by_update ON tasks (tenant_id, updated_at DESC, id DESC);
CREATE INDEX tasks_by_subject ON tasks (tenant_id, (lower(subject) COLLATE "C"), id);

-- Days without activity after which an open deal raises a stale-deal task.
ALTER TABLE tenants ADD COLUMN stale_deal_days integer NOT NULL DEFAULT 7 CHECK (stale_deal_days BETWEEN 1 AND 365);

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasks TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON tasks TO crm_app;

-- The alert job's work list across tenants, and each tenant's stale-deal threshold.
CREATE FUNCTION crm_alert_tenants()
RETURNS TABLE (tenant_id uuid, stale_deal_days integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT t.id, t.stale_deal_days FROM tenants t
  WHERE EXISTS (SELECT 1 FROM opportunities o WHERE o.tenant_id = t.id AND o.state = 'open' AND o.archived_at IS NULL)
     OR EXISTS (SELECT 1 FROM pools p WHERE p.tenant_id = t.id AND p.archived_at IS NULL
                AND (p.recycle_after_days IS NOT NULL OR p.recycle_no_progress_days IS NOT NULL))
  ORDER BY t.id
$$;
REVOKE ALL ON FUNCTION crm_alert_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_alert_tenants() TO crm_app;

CREATE FUNCTION crm_stale_deal_days(p_tenant uuid) RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT stale_deal_days FROM tenants WHERE id = p_tenant AND id = crm_current_tenant() $$;
REVOKE ALL ON FUNCTION crm_stale_deal_days(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_stale_deal_days(uuid) TO crm_app;

CREATE FUNCTION crm_set_stale_deal_days(p_tenant uuid, p_days integer) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  UPDATE tenants SET stale_deal_days = p_days, version = version + 1, updated_at = now()
  WHERE id = p_tenant AND id = crm_current_tenant()
$$;
REVOKE ALL ON FUNCTION crm_set_stale_deal_days(uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_set_stale_deal_days(uuid, integer) TO crm_app;
