-- pgbench script: the SQL crmd runs for one AddComment (the `add-comment` scenario of crm-bench: a
-- customer message then an agent reply, alternating, each client over 200 tickets of its own),
-- captured with log_statement = all: pipelined, BEGIN, the tenant setup and the ticket locked FOR
-- UPDATE; pipelined, the service settings, SLA policies and calendars, the ticket's clock logs and
-- the account's tier and tags; then, pipelined, the ticket update (every column, as crmd sends it)
-- returning the row, its change-log row, the re-read of a row a trigger rule changed (none here), the
-- comment, the clock's log rows and summary rows, COMMIT — as crm_app (PGOPTIONS). Ticket ids are
-- seeded by bench-service.sh. An admin's lock read has no approval subquery (NULL::uuid), as crmd's.
\set ticket :client_id * 200 + random(1, 200)
\startpipeline
BEGIN;
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT id, number, subject, description, status, priority, type, channel, requester_contact_id, requester_lead_id,
  account_id, assignee_id, group_id, tags, follower_ids, opportunity_ids, external_id, opened_at, first_response_at,
  awaiting_reply_since, solved_at, closed_at, status_changed_at, sla_policy_id, sla_state, next_breach_at,
  merged_into_id, follow_up_of_id, satisfaction_token, satisfaction_issued_at, satisfaction_rating, satisfaction_comment, version,
  created_at, updated_at, created_by, updated_by, archived_at, NULL::uuid AS approval_lock
FROM tickets WHERE tenant_id = :tenant AND id = CAST('00000000-0000-7000-b000-' || lpad(CAST(:ticket AS text), 12, '0') AS uuid)
FOR UPDATE;
\endpipeline
\startpipeline
SELECT pause_rules, auto_close_days, unknown_sender, default_calendar_id, version FROM service_settings WHERE tenant_id = :tenant;
SELECT id, name, description, position, calendar_id, conditions, targets, version, created_at, updated_at, archived_at
  FROM sla_policies WHERE tenant_id = :tenant AND archived_at IS NULL ORDER BY archived_at IS NOT NULL, position, created_at, id;
SELECT id, name, time_zone, intervals, holidays, version, created_at, updated_at, archived_at FROM business_calendars
  WHERE tenant_id = :tenant;
SELECT ticket_id, metric, instance, kind, (target->>'minutes')::int AS target_minutes,
  (target->>'business_hours')::boolean AS target_business_hours, (target->>'warning_minutes')::int AS target_warning_minutes,
  (target->>'calendar_id')::uuid AS target_calendar_id, due_at, at
FROM sla_events
WHERE tenant_id = :tenant AND ticket_id = ANY(ARRAY[CAST('00000000-0000-7000-b000-' || lpad(CAST(:ticket AS text), 12, '0') AS uuid)])
ORDER BY ticket_id, metric, instance, at, sequence;
SELECT tier, tags FROM accounts WHERE tenant_id = :tenant AND id = :account;
\endpipeline
\startpipeline
UPDATE tickets SET (subject, description, status, priority, type, channel, requester_contact_id, requester_lead_id, account_id,
  assignee_id, group_id, tags, follower_ids, opportunity_ids, invoice_lines, external_id, opened_at, first_response_at,
  awaiting_reply_since, solved_at, closed_at, status_changed_at, sla_policy_id, sla_state, next_breach_at,
  merged_into_id, follow_up_of_id, satisfaction_token, satisfaction_token_hash, satisfaction_issued_at, created_at) =
  (subject, description, 'open', priority, type, channel, requester_contact_id, requester_lead_id, account_id,
  assignee_id, group_id, tags, follower_ids, opportunity_ids, invoice_lines, external_id, opened_at, first_response_at,
  CASE WHEN awaiting_reply_since IS NULL THEN now() END, solved_at, closed_at, status_changed_at, sla_policy_id, sla_state,
  next_breach_at, merged_into_id, follow_up_of_id, satisfaction_token, satisfaction_token_hash, satisfaction_issued_at,
  created_at),
  version = version + 1, updated_at = now(), updated_by = :owner
WHERE tenant_id = :tenant AND id = CAST('00000000-0000-7000-b000-' || lpad(CAST(:ticket AS text), 12, '0') AS uuid)
RETURNING id, number, subject, description, status, priority, type, channel, requester_contact_id, requester_lead_id,
  account_id, assignee_id, group_id, tags, follower_ids, opportunity_ids, external_id, opened_at, first_response_at,
  awaiting_reply_since, solved_at, closed_at, status_changed_at, sla_policy_id, sla_state, next_breach_at,
  merged_into_id, follow_up_of_id, satisfaction_token, satisfaction_issued_at, satisfaction_rating, satisfaction_comment, version,
  created_at, updated_at, created_by, updated_by, archived_at;
INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
VALUES (:tenant, 'ticket', CAST('00000000-0000-7000-b000-' || lpad(CAST(:ticket AS text), 12, '0') AS uuid), 'update', :owner, NULL,
  '[{"field": "comment", "old": null, "new": {"id": "x", "public": true, "author": "customer"}}]'::jsonb);
SELECT id, version FROM tickets
WHERE current_setting('crm.rules_touched', true) = 'on' AND tenant_id = :tenant
  AND id = CAST('00000000-0000-7000-b000-' || lpad(CAST(:ticket AS text), 12, '0') AS uuid);
INSERT INTO ticket_comments (tenant_id, id, ticket_id, is_public, author_kind, author_user_id, author_contact_id,
  author_lead_id, body, channel, message_id, merged_from_ticket_id, created_at)
VALUES (:tenant, gen_random_uuid(), CAST('00000000-0000-7000-b000-' || lpad(CAST(:ticket AS text), 12, '0') AS uuid), true,
  'agent', :owner, NULL, NULL, 'Message on this ticket.', NULL, NULL, NULL, now());
INSERT INTO sla_events (tenant_id, ticket_id, metric, instance, kind, target, due_at, policy_id, at, note, actor_id)
SELECT crm_current_tenant(), CAST('00000000-0000-7000-b000-' || lpad(CAST(:ticket AS text), 12, '0') AS uuid), 'next_reply',
  1, 'resumed', NULL, NULL, CAST(:policy AS uuid), now(), 'customer comment', CAST(:owner AS uuid);
INSERT INTO sla_instances (tenant_id, ticket_id, metric, instance, state, calendar_id, due_at, warn_at, breach_at,
  warned, breached, is_open, elapsed_seconds, ended_at, updated_at)
SELECT crm_current_tenant(), CAST('00000000-0000-7000-b000-' || lpad(CAST(:ticket AS text), 12, '0') AS uuid), u.m, 1, 'active',
  NULL, u.d, NULL, NULL, false, false, true, 0, NULL, now()
FROM unnest(ARRAY['next_reply', 'resolution'], ARRAY[now() + interval '2 hours', now() + interval '8 hours']) AS u (m, d)
ON CONFLICT (tenant_id, ticket_id, metric, instance) DO UPDATE SET state = excluded.state, due_at = excluded.due_at,
  updated_at = now();
COMMIT;
\endpipeline
