-- Lead capture: capture keys (API tokens scoped to CaptureLead for one channel, with a rate limit)
-- and the capture ledger that makes CaptureLead idempotent on the channel's own message id.

ALTER TABLE api_tokens
  ADD COLUMN capture_channel text
    CHECK (capture_channel IN ('web_form', 'email', 'phone', 'chat', 'event', 'partner')),
  ADD COLUMN rate_per_minute integer CHECK (rate_per_minute BETWEEN 1 AND 100000),
  ADD CONSTRAINT api_tokens_capture_scope CHECK ((capture_channel IS NULL) = (rate_per_minute IS NULL));

DROP FUNCTION crm_authenticate(bytea);
CREATE FUNCTION crm_authenticate(p_hash bytea)
RETURNS TABLE (
  tenant_id uuid, user_id uuid, role text, is_system boolean, sharing jsonb, token_id uuid,
  capture_channel text, rate_per_minute integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT t.tenant_id, u.id, u.role, tn.is_system, tn.sharing, t.id, t.capture_channel, t.rate_per_minute
  FROM api_tokens t
  JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id
  JOIN tenants tn ON tn.id = t.tenant_id
  WHERE t.token_hash = p_hash
    AND t.revoked_at IS NULL
    AND (t.expires_at IS NULL OR t.expires_at > now())
    AND u.is_active
$$;
REVOKE ALL ON FUNCTION crm_authenticate(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_authenticate(bytea) TO crm_app;

-- One row per captured message: a resent form or email finds its row and changes nothing.
CREATE TABLE captures (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  channel text NOT NULL CHECK (channel IN ('web_form', 'email', 'phone', 'chat', 'event', 'partner')),
  message_id text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 998),
  outcome text NOT NULL CHECK (outcome IN ('created_lead', 'logged_on_lead', 'logged_on_contact')),
  record_type text NOT NULL CHECK (record_type IN ('lead', 'contact')),
  record_id uuid NOT NULL,
  interaction_id uuid NOT NULL,
  key_id uuid,
  captured_by uuid NOT NULL,
  captured_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, channel, message_id),
  FOREIGN KEY (tenant_id, interaction_id) REFERENCES interactions (tenant_id, id)
);
CREATE INDEX captures_by_time ON captures (tenant_id, captured_at DESC);

ALTER TABLE captures ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON captures TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON captures TO crm_app;
