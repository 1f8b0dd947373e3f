-- The interaction log: calls, emails, meetings, visits, notes, chats and SMS, each linked to one or
-- more records. interactions.links is what the API shows; interaction_links is the same set, one row
-- per linked record, indexed for a record's timeline newest first (keyset on occurred_at, id).

CREATE TABLE interactions (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  owner_id uuid NOT NULL,
  kind text NOT NULL CHECK (kind IN ('call', 'email', 'meeting', 'visit', 'note', 'chat', 'sms')),
  direction text NOT NULL DEFAULT 'unspecified' CHECK (direction IN ('unspecified', 'inbound', 'outbound')),
  subject text CHECK (length(subject) <= 500),
  body text CHECK (length(body) <= 100000),
  participants jsonb NOT NULL DEFAULT '[]'::jsonb,
  start_at timestamptz NOT NULL,
  duration_seconds integer CHECK (duration_seconds >= 0),
  outcome text CHECK (length(outcome) <= 255),
  check_in_at timestamptz,
  latitude double precision CHECK (latitude BETWEEN -90 AND 90),
  longitude double precision CHECK (longitude BETWEEN -180 AND 180),
  links text[] NOT NULL CHECK (cardinality(links) BETWEEN 1 AND 20),
  -- Set for interactions CaptureLead logged: the channel and the channel's own message id.
  channel text CHECK (length(channel) <= 32),
  external_message_id text CHECK (length(external_message_id) <= 998),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX interactions_by_update ON interactions (tenant_id, updated_at DESC, id DESC);

CREATE TABLE interaction_links (
  tenant_id uuid NOT NULL,
  interaction_id uuid NOT NULL,
  record_type text NOT NULL CHECK (record_type IN ('lead', 'contact', 'account', 'opportunity', 'ticket')),
  record_id uuid NOT NULL,
  -- The interaction's start_at, copied so a record's timeline is one index range.
  occurred_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, interaction_id, record_type, record_id),
  FOREIGN KEY (tenant_id, interaction_id) REFERENCES interactions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX interaction_links_by_record
  ON interaction_links (tenant_id, record_type, record_id, occurred_at DESC, interaction_id DESC);

ALTER TABLE accounts ADD COLUMN last_activity_at timestamptz;
ALTER TABLE contacts ADD COLUMN last_activity_at timestamptz;

ALTER TABLE interactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON interactions TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON interactions TO crm_app;

ALTER TABLE interaction_links ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON interaction_links TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON interaction_links TO crm_app;
