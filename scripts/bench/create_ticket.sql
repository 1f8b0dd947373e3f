-- pgbench script: the SQL crmd runs for one CreateTicket (the `create-ticket` scenario of crm-bench:
-- a requester contact, a description, no assignee; one catch-all SLA policy with first-reply and
-- resolution targets), captured with log_statement = all: pipelined, BEGIN, the tenant setup and the
-- ticket assignment rules; the contact's account; the service settings, SLA policies and calendars;
-- the account's tier and tags; the requester's visibility; the ticket insert returning the row; its
-- change-log row; then, pipelined, the opening comment, the clocks' log rows and their summary rows
-- and COMMIT — as crm_app (PGOPTIONS). bench-service.sh seeds the ids.
\set n random(1, 1000000000)
\startpipeline
BEGIN;
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT id, record_type, name, position, is_active, criteria::text AS criteria, action, user_id, pool_id, open_record_cap, version,
  created_at, updated_at FROM assignment_rules WHERE tenant_id = :tenant AND archived_at IS NULL AND record_type = 'ticket'
  AND is_active ORDER BY record_type, position, id;
\endpipeline
SELECT account_id FROM contacts WHERE tenant_id = :tenant AND id = :contact;
\startpipeline
SELECT pause_rules, auto_close_days, unknown_sender, default_calendar_id, version FROM service_settings WHERE tenant_id = :tenant;
SELECT id, name, description, position, calendar_id, conditions, targets, version, created_at, updated_at, archived_at
  FROM sla_policies WHERE tenant_id = :tenant AND archived_at IS NULL ORDER BY archived_at IS NOT NULL, position, created_at, id;
SELECT id, name, time_zone, intervals, holidays, version, created_at, updated_at, archived_at FROM business_calendars
  WHERE tenant_id = :tenant;
\endpipeline
SELECT tier, tags FROM accounts WHERE tenant_id = :tenant AND id = :account;
SELECT r.id, r.owner_id, NULL::uuid AS collector_id, NULL::uuid AS pool_id, r.archived_at IS NOT NULL AS archived FROM contacts r
  WHERE r.tenant_id = :tenant AND r.id = :contact;
INSERT INTO tickets (tenant_id, id, created_by, updated_by, subject, description, status, priority, type, channel,
  requester_contact_id, requester_lead_id, account_id, assignee_id, group_id, tags, follower_ids, opportunity_ids, external_id,
  opened_at, first_response_at, awaiting_reply_since, solved_at, closed_at, status_changed_at, sla_policy_id, sla_state,
  next_breach_at, merged_into_id, follow_up_of_id, satisfaction_token, satisfaction_token_hash, satisfaction_issued_at, created_at)
VALUES (:tenant, gen_random_uuid(), :owner, :owner, 'Bench ticket ' || :n, 'The printer on floor 3 is jammed again.', 'new',
  'normal', NULL, 'email', :contact, NULL, :account, NULL, NULL, '{}', '{}', '{}', NULL, now(), NULL, NULL, NULL, NULL, now(),
  :policy, 'active', now() + interval '1 hour', NULL, NULL, NULL, NULL, NULL, now())
RETURNING id, number, subject, description, status, priority, type, channel, requester_contact_id, requester_lead_id,
  account_id, assignee_id, group_id, tags, follower_ids, opportunity_ids, external_id, opened_at, first_response_at,
  awaiting_reply_since, solved_at, closed_at, status_changed_at, sla_policy_id, sla_state, next_breach_at,
  merged_into_id, follow_up_of_id, satisfaction_token, satisfaction_issued_at, satisfaction_rating, satisfaction_comment, version,
  created_at, updated_at, created_by, updated_by, archived_at \gset t_
INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes)
VALUES (:tenant, 'ticket', CAST(:t_id AS uuid), 'create', :owner, NULL,
  jsonb_build_array(jsonb_build_object('field', 'subject', 'old', NULL, 'new', 'Bench ticket'),
    jsonb_build_object('field', 'description', 'old', NULL, 'new', 'The printer on floor 3 is jammed again.'),
    jsonb_build_object('field', 'status', 'old', NULL, 'new', 'new'), jsonb_build_object('field', 'priority', 'old', NULL, 'new', 'normal'),
    jsonb_build_object('field', 'channel', 'old', NULL, 'new', 'email'),
    jsonb_build_object('field', 'requester_contact_id', 'old', NULL, 'new', CAST(:contact AS text)),
    jsonb_build_object('field', 'account_id', 'old', NULL, 'new', CAST(:account AS text)),
    jsonb_build_object('field', 'tags', 'old', NULL, 'new', '[]'::jsonb),
    jsonb_build_object('field', 'sla_policy_id', 'old', NULL, 'new', CAST(:policy AS text))));
\startpipeline
INSERT INTO ticket_comments (tenant_id, id, ticket_id, is_public, author_kind, author_user_id, author_contact_id,
  author_lead_id, body, channel, message_id, merged_from_ticket_id, created_at)
VALUES (:tenant, gen_random_uuid(), CAST(:t_id AS uuid), true, 'customer', NULL, :contact, NULL, 'The printer on floor 3 is jammed again.',
  'email', NULL, NULL, now());
INSERT INTO sla_events (tenant_id, ticket_id, metric, instance, kind, target, due_at, policy_id, at, note, actor_id)
SELECT crm_current_tenant(), CAST(:t_id AS uuid), u.m, u.i, u.k, NULLIF(u.t, '')::jsonb, NULL, CAST(:policy AS uuid), u.a,
  'created', CAST(:owner AS uuid)
FROM unnest(ARRAY['first_reply', 'resolution'], ARRAY[1, 1], ARRAY['activated', 'activated'],
  ARRAY['{"minutes": 60, "business_hours": false}', '{"minutes": 480, "business_hours": false}'], ARRAY[now(), now()])
  WITH ORDINALITY AS u (m, i, k, t, a, o)
ORDER BY u.o ON CONFLICT DO NOTHING;
INSERT INTO sla_instances (tenant_id, ticket_id, metric, instance, state, calendar_id, due_at, warn_at, breach_at,
  warned, breached, is_open, elapsed_seconds, ended_at, updated_at)
SELECT crm_current_tenant(), CAST(:t_id AS uuid), u.m, 1, 'active', NULL, u.d, NULL, NULL, false, false, true, 0, NULL, now()
FROM unnest(ARRAY['first_reply', 'resolution'], ARRAY[now() + interval '1 hour', now() + interval '8 hours']) AS u (m, d)
ON CONFLICT (tenant_id, ticket_id, metric, instance) DO UPDATE SET state = excluded.state, due_at = excluded.due_at,
  updated_at = now();
COMMIT;
\endpipeline
