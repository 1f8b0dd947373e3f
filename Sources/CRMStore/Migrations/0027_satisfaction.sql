-- CSAT: a customer answers the one-time survey of a solved ticket without signing in. The token is
-- the only credential, so the lookup runs before any tenant is known: this function (owned by the
-- migrating role, which row-level security does not bind) finds the ticket by the token's SHA-256,
-- records the answer once within the survey's lifetime, and logs it on the ticket.
ALTER TABLE tickets ADD COLUMN satisfaction_by_assignee_id uuid;

CREATE FUNCTION crm_submit_satisfaction(p_hash bytea, p_rating integer, p_comment text, p_now timestamptz, p_days integer)
RETURNS TABLE (outcome text, tenant_id uuid, ticket_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  t tickets%ROWTYPE;
BEGIN
  SELECT * INTO t FROM tickets k WHERE k.satisfaction_token_hash = p_hash FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'unknown'::text, NULL::uuid, NULL::uuid;
    RETURN;
  END IF;
  IF t.satisfaction_rating IS NOT NULL THEN
    RETURN QUERY SELECT 'answered'::text, t.tenant_id, t.id;
    RETURN;
  END IF;
  IF t.satisfaction_issued_at < p_now - make_interval(days => p_days) THEN
    RETURN QUERY SELECT 'expired'::text, t.tenant_id, t.id;
    RETURN;
  END IF;
  UPDATE tickets k SET satisfaction_rating = p_rating, satisfaction_comment = p_comment, satisfaction_at = p_now,
    satisfaction_by_assignee_id = k.assignee_id, version = k.version + 1, updated_at = now()
  WHERE k.tenant_id = t.tenant_id AND k.id = t.id;
  INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
  VALUES (t.tenant_id, 'ticket', t.id, 'update', NULL, 'csat',
    jsonb_build_array(
      jsonb_build_object('field', 'satisfaction_rating', 'old', NULL, 'new', p_rating),
      jsonb_build_object('field', 'satisfaction_comment', 'old', NULL, 'new', p_comment)));
  RETURN QUERY SELECT 'ok'::text, t.tenant_id, t.id;
END
$$;
REVOKE ALL ON FUNCTION crm_submit_satisfaction(bytea, integer, text, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_submit_satisfaction(bytea, integer, text, timestamptz, integer) TO crm_app;

CREATE INDEX tickets_rated ON tickets (tenant_id, satisfaction_at) WHERE satisfaction_rating IS NOT NULL;
