-- Webhooks (docs/webhooks.md): a subscription is an endpoint plus a stored change-feed cursor. Every
-- crmd node runs a dispatcher; a node leases a subscription (lease_owner, lease_until, in database
-- time) before it sends anything for it, so two nodes never deliver the same subscription at once,
-- and events go out in feed order, one at a time, the next only after the last succeeded or was
-- given up on.

CREATE TABLE webhook_subscriptions (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
  -- Patterns over event types ('lead.created', 'lead.*', '*.archived', '*').
  event_types text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 50),
  -- Updates only when one of these fields changed (empty: any); creates and the rest always pass.
  changed_fields text[] NOT NULL DEFAULT '{}' CHECK (cardinality(changed_fields) <= 50),
  -- Changes whose client origin is one of these are not sent (a consumer's own writes).
  skip_origins text[] NOT NULL DEFAULT '{}' CHECK (cardinality(skip_origins) <= 20),
  -- Deliveries carry what this user may see, as their own ListChanges would.
  owner_id uuid NOT NULL,
  -- The signing secret ('whsec_' + base64), and the one it replaced while its grace period runs.
  secret text NOT NULL,
  previous_secret text,
  previous_secret_expires_at timestamptz,
  is_active boolean NOT NULL DEFAULT true,
  -- Why crmd turned it off (410 Gone, every attempt failed, the owner deactivated), if it did.
  disabled_reason text,
  -- Every feed position at or before this one is done for this subscription: delivered, given up
  -- on, or not for it.
  after_position bigint NOT NULL,
  -- A subscription made for "what commits from now on" skips the changes that committed before it
  -- (WAL before this point) but reach the feed after it was made; cleared once the feed has passed it.
  start_lsn pg_lsn,
  -- When the event after `after_position` is tried again (it failed); null when nothing is failing.
  next_attempt_at timestamptz,
  lease_owner text,
  lease_until timestamptz,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid NOT NULL,
  updated_by uuid NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);

-- One event sent (or being retried) to one subscription; `attempts` rows say how each try went.
CREATE TABLE webhook_deliveries (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  subscription_id uuid NOT NULL,
  -- The feed event: its position (the webhook-id is its cursor), type and record.
  position bigint NOT NULL,
  event_type text NOT NULL,
  record_type text NOT NULL,
  record_id uuid NOT NULL,
  -- A manual redelivery (one attempt, outside the feed order) rather than the subscription's own.
  is_redelivery boolean NOT NULL DEFAULT false,
  -- pending: failed, tried again at next_attempt_at; dead: every attempt failed (the dead letters).
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  -- The last attempt: the endpoint's HTTP status (null when none came), how long it took, what went
  -- wrong, and the start of what it answered.
  response_status integer,
  latency_ms integer,
  error text,
  response_body text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, subscription_id) REFERENCES webhook_subscriptions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (tenant_id, subscription_id, id);
-- At most one delivery of an event in the subscription's own order.
CREATE UNIQUE INDEX webhook_deliveries_in_order ON webhook_deliveries (tenant_id, subscription_id, position)
  WHERE NOT is_redelivery;
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at);

CREATE TABLE webhook_attempts (
  tenant_id uuid NOT NULL,
  delivery_id uuid NOT NULL,
  attempt integer NOT NULL,
  attempted_at timestamptz NOT NULL,
  response_status integer,
  latency_ms integer NOT NULL,
  error text,
  PRIMARY KEY (tenant_id, delivery_id, attempt),
  FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
);

ALTER TABLE webhook_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_subscriptions TO crm_app USING (tenant_id = crm_current_tenant());
CREATE POLICY tenant_isolation ON webhook_deliveries TO crm_app USING (tenant_id = crm_current_tenant());
CREATE POLICY tenant_isolation ON webhook_attempts TO crm_app USING (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_subscriptions, webhook_deliveries, webhook_attempts TO crm_app;
-- How far the feed's sequencer has copied, to resolve start_lsn.
GRANT SELECT (applied_lsn) ON change_feed_state TO crm_app;

-- The dispatcher's claim, across tenants: up to `p_limit` active subscriptions with work due at
-- `p_now` (the delivery clock) that no other node holds, leased to `p_node` for `p_lease` of database
-- time. `p_running` are the ones this node is already working on; `p_tenant`, when set, confines the
-- claim to one tenant (tests, which share a database).
CREATE FUNCTION crm_webhook_claim(
  p_node text, p_now timestamptz, p_running uuid[], p_limit integer, p_lease interval, p_tenant uuid
)
RETURNS TABLE (tenant_id uuid, id uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  UPDATE webhook_subscriptions s SET lease_owner = p_node, lease_until = clock_timestamp() + p_lease
  FROM (
    SELECT w.tenant_id, w.id FROM webhook_subscriptions w
    WHERE w.is_active AND NOT (w.id = ANY (p_running)) AND (p_tenant IS NULL OR w.tenant_id = p_tenant)
      AND (w.lease_until IS NULL OR w.lease_until < clock_timestamp() OR w.lease_owner = p_node)
      AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= p_now)
      AND (w.next_attempt_at IS NOT NULL
           OR EXISTS (SELECT 1 FROM change_feed f WHERE f.tenant_id = w.tenant_id AND f.position > w.after_position))
    ORDER BY w.next_attempt_at NULLS LAST, w.id
    LIMIT p_limit
    FOR UPDATE OF w SKIP LOCKED
  ) c
  WHERE s.tenant_id = c.tenant_id AND s.id = c.id
  RETURNING s.tenant_id, s.id
$$;
REVOKE ALL ON FUNCTION crm_webhook_claim(text, timestamptz, uuid[], integer, interval, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_webhook_claim(text, timestamptz, uuid[], integer, interval, uuid) TO crm_app;

-- Deliveries older than their tenant's change-feed retention: their events are gone, so they can no
-- longer be redelivered.
CREATE FUNCTION crm_webhook_prune() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  WITH gone AS (
    DELETE FROM webhook_deliveries d USING tenants t
    WHERE t.id = d.tenant_id AND d.created_at < now() - make_interval(days => t.change_feed_retention_days)
      AND d.status <> 'pending'
    RETURNING 1
  )
  SELECT count(*) FROM gone
$$;
REVOKE ALL ON FUNCTION crm_webhook_prune() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_webhook_prune() TO crm_app;
