-- The service stage: business calendars, SLA policies, tickets with their comments, and the SLA
-- clocks as append-only event logs (sla_events) with a derived, recomputable summary per instance
-- (sla_instances) that lists and the SLA job read.

-- Per-tenant service configuration; a tenant without a row has the defaults.
CREATE TABLE service_settings (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
  -- {"next_reply": ["pending"], "resolution": ["pending"]}: the statuses that pause each metric.
  pause_rules jsonb NOT NULL DEFAULT '{"next_reply": ["pending"], "resolution": ["pending"]}'::jsonb,
  -- Solved tickets close by themselves after this many days.
  auto_close_days integer NOT NULL DEFAULT 4 CHECK (auto_close_days BETWEEN 1 AND 365),
  -- What an unknown email sender becomes: a contact or a lead.
  unknown_sender text NOT NULL DEFAULT 'contact' CHECK (unknown_sender IN ('contact', 'lead')),
  -- The calendar business-hours targets use when their policy names none (absent: 24×7 UTC).
  default_calendar_id uuid,
  version bigint NOT NULL DEFAULT 1,
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid
);

CREATE TABLE business_calendars (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- An IANA zone; the intervals are wall-clock times in it.
  time_zone text NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 64),
  -- [{"weekday": 1, "start": 540, "minutes": 480}]: ISO weekday, minutes after midnight, length.
  intervals jsonb NOT NULL,
  holidays date[] NOT NULL DEFAULT '{}' CHECK (cardinality(holidays) <= 1000),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX business_calendars_name ON business_calendars (tenant_id, lower(name)) WHERE archived_at IS NULL;
ALTER TABLE service_settings ADD FOREIGN KEY (tenant_id, default_calendar_id) REFERENCES business_calendars (tenant_id, id);

CREATE TABLE sla_policies (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  description text CHECK (length(description) <= 1000),
  -- Policies apply in position order; the first that matches wins.
  position integer NOT NULL CHECK (position >= 0),
  calendar_id uuid,
  -- {"priorities": [...], "types": [...], "channels": [...], "group_ids": [...], "tags": [...],
  --  "account_tiers": [...], "account_tags": [...]}
  conditions jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- [{"priority": "urgent", "metric": "first_reply", "minutes": 60, "business_hours": true,
  --   "warning_minutes": 15}]
  targets jsonb NOT NULL,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, calendar_id) REFERENCES business_calendars (tenant_id, id)
);
CREATE UNIQUE INDEX sla_policies_name ON sla_policies (tenant_id, lower(name)) WHERE archived_at IS NULL;

-- Ticket numbers: one sequence for every tenant (unique per tenant, short, quotable in subjects).
CREATE SEQUENCE ticket_numbers START 1000;

CREATE TABLE tickets (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  number bigint NOT NULL DEFAULT nextval('ticket_numbers'),
  subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
  description text CHECK (length(description) <= 100000),
  status text NOT NULL CHECK (status IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed')),
  priority text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
  type text CHECK (type IN ('question', 'incident', 'problem', 'task', 'dispute')),
  channel text NOT NULL CHECK (channel IN ('email', 'web_form', 'phone', 'chat', 'api')),
  requester_contact_id uuid,
  requester_lead_id uuid,
  account_id uuid,
  assignee_id uuid,
  group_id uuid,
  tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
  follower_ids uuid[] NOT NULL DEFAULT '{}' CHECK (cardinality(follower_ids) <= 50),
  opportunity_ids uuid[] NOT NULL DEFAULT '{}' CHECK (cardinality(opportunity_ids) <= 20),
  external_id text CHECK (length(external_id) <= 255),
  -- The SLA facts, on the SLA clock (crmd's clock, which tests move).
  opened_at timestamptz NOT NULL,
  first_response_at timestamptz,
  awaiting_reply_since timestamptz,
  solved_at timestamptz,
  closed_at timestamptz,
  status_changed_at timestamptz NOT NULL,
  -- Derived from sla_instances whenever they change.
  sla_policy_id uuid,
  sla_state text NOT NULL DEFAULT 'none' CHECK (sla_state IN ('none', 'active', 'paused', 'warning', 'breached')),
  next_breach_at timestamptz,
  merged_into_id uuid,
  follow_up_of_id uuid,
  -- CSAT: the one-time survey token (its SHA-256), issued on the first solve.
  satisfaction_token_hash bytea,
  satisfaction_token text,
  satisfaction_issued_at timestamptz,
  satisfaction_rating integer CHECK (satisfaction_rating BETWEEN 1 AND 5),
  satisfaction_comment text CHECK (length(satisfaction_comment) <= 10000),
  satisfaction_at timestamptz,
  version bigint NOT NULL DEFAULT 1,
  -- On the SLA clock, like the facts above.
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, number),
  FOREIGN KEY (tenant_id, requester_contact_id) REFERENCES contacts (tenant_id, id),
  FOREIGN KEY (tenant_id, requester_lead_id) REFERENCES leads (tenant_id, id),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
  FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, group_id) REFERENCES teams (tenant_id, id),
  FOREIGN KEY (tenant_id, sla_policy_id) REFERENCES sla_policies (tenant_id, id),
  FOREIGN KEY (tenant_id, merged_into_id) REFERENCES tickets (tenant_id, id),
  FOREIGN KEY (tenant_id, follow_up_of_id) REFERENCES tickets (tenant_id, id),
  CHECK (requester_contact_id IS NULL OR requester_lead_id IS NULL),
  CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
  CHECK (merged_into_id IS NULL OR status = 'closed')
);
CREATE UNIQUE INDEX tickets_external_id ON tickets (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX tickets_satisfaction_token ON tickets (satisfaction_token_hash) WHERE satisfaction_token_hash IS NOT NULL;
CREATE INDEX tickets_by_creation ON tickets (tenant_id, created_at DESC, id DESC);
CREATE INDEX tickets_by_update ON tickets (tenant_id, updated_at DESC, id DESC);
-- "Next breach first" over the open queue.
CREATE INDEX tickets_by_next_breach ON tickets (tenant_id, next_breach_at, id) WHERE next_breach_at IS NOT NULL;
CREATE INDEX tickets_by_status ON tickets (tenant_id, status, created_at DESC);
CREATE INDEX tickets_by_assignee ON tickets (tenant_id, assignee_id, status) WHERE assignee_id IS NOT NULL;
CREATE INDEX tickets_by_group ON tickets (tenant_id, group_id, status) WHERE group_id IS NOT NULL;
CREATE INDEX tickets_by_account ON tickets (tenant_id, account_id) WHERE account_id IS NOT NULL;
CREATE INDEX tickets_by_contact ON tickets (tenant_id, requester_contact_id) WHERE requester_contact_id IS NOT NULL;
CREATE INDEX tickets_by_lead ON tickets (tenant_id, requester_lead_id) WHERE requester_lead_id IS NOT NULL;
CREATE INDEX tickets_by_tag ON tickets USING gin (tags);
-- The auto-close job's scan.
CREATE INDEX tickets_solved ON tickets (solved_at) WHERE status = 'solved';

CREATE TABLE ticket_comments (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  ticket_id uuid NOT NULL,
  is_public boolean NOT NULL,
  author_kind text NOT NULL CHECK (author_kind IN ('agent', 'customer', 'system')),
  author_user_id uuid,
  author_contact_id uuid,
  author_lead_id uuid,
  body text NOT NULL CHECK (length(body) BETWEEN 1 AND 100000),
  channel text CHECK (channel IN ('email', 'web_form', 'phone', 'chat', 'api')),
  message_id text CHECK (length(message_id) <= 998),
  -- Carried over from this ticket when it was merged into the comment's ticket.
  merged_from_ticket_id uuid,
  -- On the SLA clock.
  created_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
  FOREIGN KEY (tenant_id, author_user_id) REFERENCES users (tenant_id, id),
  CHECK (author_kind <> 'customer' OR is_public),
  CHECK ((author_kind = 'agent') = (author_user_id IS NOT NULL))
);
CREATE INDEX ticket_comments_by_ticket ON ticket_comments (tenant_id, ticket_id, created_at, id);

-- Every Message-ID a ticket has seen or sent, for threading mail onto it (and for ignoring the same
-- message twice). A merge moves the source's ids to the target.
CREATE TABLE ticket_message_ids (
  tenant_id uuid NOT NULL,
  message_id text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 998),
  ticket_id uuid NOT NULL,
  comment_id uuid,
  PRIMARY KEY (tenant_id, message_id),
  FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX ticket_message_ids_by_ticket ON ticket_message_ids (tenant_id, ticket_id);

-- The SLA clock of each metric instance: an append-only log. The job's 'warned' and 'breached' rows
-- are unique per instance, which is what makes each fire exactly once however many nodes run.
CREATE TABLE sla_events (
  tenant_id uuid NOT NULL,
  ticket_id uuid NOT NULL,
  metric text NOT NULL CHECK (metric IN ('first_reply', 'next_reply', 'resolution')),
  instance integer NOT NULL CHECK (instance >= 1),
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  kind text NOT NULL CHECK (kind IN ('activated', 'paused', 'resumed', 'retargeted', 'due_set', 'fulfilled', 'cancelled', 'warned', 'breached')),
  -- activated / retargeted: {"minutes": …, "business_hours": …, "warning_minutes": …, "calendar_id": …}
  target jsonb,
  -- due_set: the manual due time (NULL clears it).
  due_at timestamptz,
  policy_id uuid,
  at timestamptz NOT NULL,
  -- Why: "created", "priority changed", "policy Gold", "job".
  note text CHECK (length(note) <= 500),
  actor_id uuid,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, ticket_id, metric, instance, sequence),
  FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
  CHECK ((kind IN ('activated', 'retargeted')) = (target IS NOT NULL))
);
CREATE UNIQUE INDEX sla_events_fire_once ON sla_events (tenant_id, ticket_id, metric, instance, kind)
  WHERE kind IN ('warned', 'breached', 'activated');

-- What the log says now, per instance: recomputed whenever its log (or its calendar) changes.
CREATE TABLE sla_instances (
  tenant_id uuid NOT NULL,
  ticket_id uuid NOT NULL,
  metric text NOT NULL CHECK (metric IN ('first_reply', 'next_reply', 'resolution')),
  instance integer NOT NULL,
  state text NOT NULL CHECK (state IN ('active', 'paused', 'achieved', 'breached', 'cancelled')),
  calendar_id uuid,
  due_at timestamptz,
  warn_at timestamptz,
  breach_at timestamptz,
  warned boolean NOT NULL DEFAULT false,
  breached boolean NOT NULL DEFAULT false,
  -- Open instances (not achieved, cancelled or fulfilled after a breach) are what the job scans.
  is_open boolean NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, ticket_id, metric, instance),
  FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
-- The job's scans: the next warning and the next breach across every tenant.
CREATE INDEX sla_instances_warn_due ON sla_instances (warn_at) WHERE is_open AND NOT warned AND warn_at IS NOT NULL;
CREATE INDEX sla_instances_breach_due ON sla_instances (due_at) WHERE is_open AND NOT breached AND due_at IS NOT NULL;
CREATE INDEX sla_instances_by_calendar ON sla_instances (tenant_id, calendar_id) WHERE is_open;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['service_settings', 'business_calendars', 'sla_policies', 'tickets', 'ticket_comments',
                           'ticket_message_ids', 'sla_events', 'sla_instances'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant())', t);
  END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE ON service_settings, business_calendars, sla_policies, tickets, ticket_comments,
  ticket_message_ids, sla_instances TO crm_app;
GRANT SELECT, INSERT ON sla_events TO crm_app;
GRANT USAGE ON SEQUENCE ticket_numbers TO crm_app;

-- The SLA job runs across tenants before it knows which have work: this lists the tenants with an
-- open instance whose warning or breach is due by p_now (then the job works inside each tenant).
CREATE FUNCTION crm_sla_due_tenants(p_now timestamptz)
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT DISTINCT tenant_id FROM (
    (SELECT tenant_id FROM sla_instances WHERE is_open AND NOT warned AND warn_at <= p_now)
    UNION ALL
    (SELECT tenant_id FROM sla_instances WHERE is_open AND NOT breached AND due_at <= p_now)
  ) due
$$;
REVOKE ALL ON FUNCTION crm_sla_due_tenants(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_sla_due_tenants(timestamptz) TO crm_app;

-- The auto-close job: tenants with solved tickets older than their auto-close days.
CREATE FUNCTION crm_auto_close_tenants(p_now timestamptz)
RETURNS TABLE (tenant_id uuid, auto_close_days integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT t.id, coalesce(s.auto_close_days, 4)
  FROM tenants t LEFT JOIN service_settings s ON s.tenant_id = t.id
  WHERE EXISTS (
    SELECT 1 FROM tickets k
    WHERE k.tenant_id = t.id AND k.status = 'solved'
      AND k.solved_at <= p_now - make_interval(days => coalesce(s.auto_close_days, 4)))
$$;
REVOKE ALL ON FUNCTION crm_auto_close_tenants(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_auto_close_tenants(timestamptz) TO crm_app;
