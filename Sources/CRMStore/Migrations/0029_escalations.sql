-- Escalation rules: ordered per tenant; on an SLA warning, a breach (levels 1-4, minutes after it) or
-- a ticket's age in a status, they reassign, raise the priority, tag, or task the assignee's manager.
-- escalation_firings makes each rule fire once per clock instance (warning, breach) or status spell.
CREATE TABLE escalation_rules (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  position integer NOT NULL CHECK (position >= 0),
  is_active boolean NOT NULL DEFAULT true,
  trigger text NOT NULL CHECK (trigger IN ('warning', 'breach', 'age')),
  metric text CHECK (metric IN ('first_reply', 'next_reply', 'resolution')),
  level integer CHECK (level BETWEEN 1 AND 4),
  -- breach: minutes after the breach; age: minutes in the status.
  minutes integer NOT NULL DEFAULT 0 CHECK (minutes BETWEEN 0 AND 525600),
  status text CHECK (status IN ('new', 'open', 'pending', 'on_hold')),
  conditions jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- {"assignee_id": …, "group_id": …, "raise_priority_to": …, "add_tag": …, "task_for_manager": true}
  actions jsonb NOT NULL,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  CHECK ((trigger = 'age') = (status IS NOT NULL)),
  CHECK ((trigger = 'age') = (metric IS NULL)),
  CHECK ((trigger = 'breach') = (level IS NOT NULL))
);
CREATE UNIQUE INDEX escalation_rules_name ON escalation_rules (tenant_id, lower(name)) WHERE archived_at IS NULL;

CREATE TABLE escalation_firings (
  tenant_id uuid NOT NULL,
  rule_id uuid NOT NULL,
  ticket_id uuid NOT NULL,
  -- "first_reply#1" for a clock instance; the status spell's start for an age rule.
  key text NOT NULL,
  fired_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, rule_id, ticket_id, key),
  FOREIGN KEY (tenant_id, rule_id) REFERENCES escalation_rules (tenant_id, id),
  FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);

-- Escalation tasks are about the ticket.
ALTER TABLE tasks DROP CONSTRAINT tasks_related_type_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_related_type_check
  CHECK (related_type IN ('lead', 'contact', 'account', 'opportunity', 'ticket'));

ALTER TABLE escalation_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON escalation_rules TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
ALTER TABLE escalation_firings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON escalation_firings TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON escalation_rules TO crm_app;
GRANT SELECT, INSERT ON escalation_firings TO crm_app;

-- The escalation job's tenants: those with a live rule.
CREATE FUNCTION crm_escalation_tenants()
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT DISTINCT tenant_id FROM escalation_rules WHERE archived_at IS NULL AND is_active $$;
REVOKE ALL ON FUNCTION crm_escalation_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_escalation_tenants() TO crm_app;
