-- Trigger rules: rounds after the first find the entries they match by primary key whatever the
-- statistics say, and the engine is split in two so that a change to matching or to an action no
-- longer copies the whole engine into a migration.
--
-- A benchmark on a database minutes old (BENCHMARKS.md "Trigger rules") showed CreateLead with ten rules
-- slowing as it ran: before change_log's first ANALYZE the planner read round 1's entries
-- (`tenant_id = ANY(tenants) AND sequence = ANY(pending)`) through change_log_by_record, i.e. every
-- entry of the tenant, filtered by sequence. With the tenant as a scalar per lateral row the primary key
-- (tenant_id, sequence) matches both columns and is chosen without statistics.

-- One rule's actions on the records it matched (p_ids; p_entries the change-log entries that matched,
-- which emit_event carries), in order. Returns the sequences of the entries the actions wrote, which
-- the next round matches.
CREATE FUNCTION crm_run_rule_actions(
  p_tenant uuid, p_record_type text, p_rule uuid, p_actions jsonb, p_ids uuid[], p_entries bigint[], p_actor uuid,
  p_request text, p_origin text
) RETURNS bigint[]
LANGUAGE plpgsql
AS $$
DECLARE
  v_action jsonb;
  v_made bigint[];
  v_produced bigint[] := '{}';
  v_table text := crm_rule_table(p_record_type);
BEGIN
  FOR v_action IN SELECT jsonb_array_elements(p_actions) LOOP
    v_made := NULL;
    CASE v_action->>'type'
    WHEN 'set_field' THEN
      v_made := crm_apply_set_field(p_tenant, p_record_type, p_ids, v_action, p_actor, p_request, p_origin,
                                    p_rule);
    WHEN 'add_tag' THEN
      EXECUTE format(
        $q$WITH old AS (
             SELECT t.id, t.tags FROM %1$I t
             WHERE t.tenant_id = $1 AND t.id = ANY($2) AND NOT t.tags @> ARRAY[$3::text] FOR UPDATE
           ), changed AS (
             UPDATE %1$I t SET tags = t.tags || $3::text, version = t.version + 1, updated_at = now()
             FROM old WHERE t.tenant_id = $1 AND t.id = old.id
             RETURNING t.id, old.tags AS before, t.tags AS after
           ), logged AS (
             INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin,
                                     rule_id)
             SELECT $1, $4, c.id, 'update', $5, $6,
                    jsonb_build_array(jsonb_build_object('field', 'tags', 'old', to_jsonb(c.before), 'new', to_jsonb(c.after))),
                    $7, $8
             FROM changed c
             RETURNING sequence
           )
           SELECT array_agg(sequence) FROM logged$q$, v_table)
        INTO v_made
        USING p_tenant, p_ids, v_action->>'tag', p_record_type, p_actor, p_request, p_origin, p_rule;
      IF v_made IS NOT NULL THEN PERFORM set_config('crm.rules_touched', 'on', true); END IF;
    WHEN 'create_task' THEN
      -- Assigned to the named user, else the record's owner (a ticket's assignee), else the
      -- writer; a record with none of them that is a user (a pooled lead a job moved) gets no task.
      EXECUTE format(
        $q$WITH made AS (
             INSERT INTO tasks (tenant_id, id, owner_id, subject, description, due_at, priority, related_type, related_id,
                                created_by, updated_by)
             SELECT $1, crm_uuid_v7(), u.id, $6, $7, now() + make_interval(hours => $8), $9, $4, t.id, $5, $5
             FROM %1$I t
             JOIN users u ON u.tenant_id = t.tenant_id AND u.id = coalesce($3::uuid, (to_jsonb(t) ->> %2$L)::uuid, $5)
             WHERE t.tenant_id = $1 AND t.id = ANY($2)
             RETURNING id, owner_id, subject, description, due_at, priority, related_type, related_id
           ), logged AS (
             INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin,
                                     rule_id)
             SELECT $1, 'task', m.id, 'create', $5, $10, jsonb_path_query_array(jsonb_build_array(
                      jsonb_build_object('field', 'subject', 'old', NULL, 'new', m.subject),
                      CASE WHEN m.description IS NOT NULL THEN
                        jsonb_build_object('field', 'description', 'old', NULL, 'new', m.description) END,
                      CASE WHEN m.due_at IS NOT NULL THEN jsonb_build_object('field', 'due_time', 'old', NULL,
                        'new', to_char(m.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) END,
                      jsonb_build_object('field', 'priority', 'old', NULL, 'new', m.priority),
                      jsonb_build_object('field', 'status', 'old', NULL, 'new', 'open'),
                      jsonb_build_object('field', 'related', 'old', NULL, 'new', m.related_type || ':' || m.related_id),
                      jsonb_build_object('field', 'owner_id', 'old', NULL, 'new', m.owner_id::text)), '$[*] ? (@ != null)'),
                    $11, $12
             FROM made m
             RETURNING sequence
           )
           SELECT array_agg(sequence) FROM logged$q$,
        v_table, CASE WHEN p_record_type = 'ticket' THEN 'assignee_id' ELSE 'owner_id' END)
        INTO v_made
        USING p_tenant, p_ids, v_action->>'assignee_id', p_record_type, p_actor, v_action->>'subject',
              v_action->>'description', (v_action->>'due_in_hours')::integer, coalesce(v_action->>'priority', 'normal'),
              p_request, p_origin, p_rule;
    WHEN 'emit_event' THEN
      -- Carries the entry that matched (the latest, when a record had several).
      EXECUTE format(
        $q$WITH logged AS (
             INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin,
                                     rule_id, event_name)
             SELECT DISTINCT ON (n.record_id) n.tenant_id, n.record_type, n.record_id, 'event', n.actor_id, n.request_id,
                    n.changes, n.origin, $3, $4
             FROM %1$s n
             WHERE n.tenant_id = $1 AND n.record_type = $5 AND n.record_id = ANY($2) AND n.operation IN ('create', 'update')
             ORDER BY n.record_id, n.sequence DESC
             RETURNING sequence
           )
           SELECT array_agg(sequence) FROM logged$q$,
        '(SELECT * FROM change_log c WHERE c.tenant_id = $1 AND c.sequence = ANY($6))')
        INTO v_made
        USING p_tenant, p_ids, p_rule, v_action->>'name', p_record_type, p_entries;
    WHEN 'assign' THEN
      v_made := crm_apply_assign(p_tenant, p_record_type, p_ids, p_actor, p_request, p_origin, p_rule);
    WHEN 'submit_for_approval' THEN
      -- Each matching record without an open request, through the process named or the first whose
      -- entry conditions hold; a record no process takes (or without an approver) is left as it is.
      PERFORM crm_approval_submit(p_tenant, p_record_type, r, (v_action->>'process_id')::uuid, p_actor,
                                  NULL, p_request, p_origin, p_rule)
      FROM unnest(p_ids) r;
    END CASE;
    v_produced := v_produced || coalesce(v_made, '{}');
  END LOOP;
  RETURN v_produced;
END
$$;

-- The rounds: round 0 matches the statement's own entries, each later round the entries the last one
-- wrote, until a round writes none or eight have run; a rule runs at most once per record.
CREATE OR REPLACE FUNCTION crm_run_trigger_rules() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  v_round integer := 0;
  v_pending bigint[];
  v_produced bigint[];
  v_type text;
  v_tenants uuid[];
  v_fired jsonb := '{}'::jsonb;
  v_rule record;
  v_matchers text;
  v_entries constant text :=
    '(SELECT c.* FROM unnest($4::uuid[]) AS tt(id) '
    'CROSS JOIN LATERAL (SELECT * FROM change_log c WHERE c.tenant_id = tt.id AND c.sequence = ANY($3)) c)';
BEGIN
  IF current_setting('crm.rules_running', true) = 'on' THEN RETURN NULL; END IF;
  IF NOT EXISTS (
    SELECT 1 FROM trigger_rules r
    WHERE (r.tenant_id, r.record_type) IN (SELECT n.tenant_id, n.record_type FROM new_rows n WHERE n.operation IN ('create', 'update'))
      AND r.archived_at IS NULL AND r.is_active
  ) THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('crm.rules_running', 'on', true);
  v_tenants := ARRAY(SELECT DISTINCT n.tenant_id FROM new_rows n);
  LOOP
    v_produced := '{}';
    FOR v_type IN EXECUTE
      CASE WHEN v_round = 0 THEN 'SELECT DISTINCT n.record_type FROM new_rows n'
        ELSE 'SELECT DISTINCT c.record_type FROM ' || v_entries || ' c' END
      USING NULL::integer, NULL::integer, v_pending, v_tenants
    LOOP
      CONTINUE WHEN crm_rule_table(v_type) IS NULL;
      -- The type's rules, each a (rule, predicate) row of one VALUES list in the order they run.
      SELECT string_agg(format('(%L::uuid, %s)', r.id, r.predicate), ', ' ORDER BY r.position, r.id)
        INTO v_matchers
      FROM trigger_rules r
      WHERE r.tenant_id = ANY(v_tenants) AND r.record_type = v_type AND r.archived_at IS NULL AND r.is_active;
      CONTINUE WHEN v_matchers IS NULL;
      -- Every rule with the records it matches, in the order the rules run: one query, each record's
      -- row read once, each predicate evaluated once per entry on typed columns.
      FOR v_rule IN EXECUTE format(
          $q$SELECT r.id, r.tenant_id, r.record_type, r.actions, array_agg(DISTINCT n.record_id) AS ids,
                    array_agg(n.sequence) AS entries, min(n.actor_id::text)::uuid AS actor, min(n.request_id) AS request,
                    min(n.origin) AS origin
             FROM (
               -- OFFSET 0 keeps the planner from joining the rules first and evaluating every
               -- predicate once per rule.
               SELECT n.tenant_id, n.record_id, n.sequence, n.actor_id, n.request_id, n.origin, m.rule_id
               FROM %2$s n
               JOIN %1$I t ON t.tenant_id = n.tenant_id AND t.id = n.record_id
               CROSS JOIN LATERAL (VALUES %3$s) AS m(rule_id, holds)
               WHERE n.record_type = $1 AND m.holds
               OFFSET 0
             ) n
             JOIN trigger_rules r ON r.tenant_id = n.tenant_id AND r.id = n.rule_id
             WHERE NOT coalesce($2 -> r.id::text, '[]'::jsonb) ? n.record_id::text
             GROUP BY r.id, r.tenant_id, r.record_type, r.actions, r.position
             ORDER BY r.position, r.id$q$,
          crm_rule_table(v_type), CASE WHEN v_round = 0 THEN 'new_rows' ELSE v_entries END, v_matchers)
        USING v_type, v_fired, v_pending, v_tenants
      LOOP
        v_fired := jsonb_set(v_fired, ARRAY[v_rule.id::text],
          coalesce(v_fired -> v_rule.id::text, '[]'::jsonb) || to_jsonb(v_rule.ids));
        v_produced := v_produced || crm_run_rule_actions(
          v_rule.tenant_id, v_rule.record_type, v_rule.id, v_rule.actions, v_rule.ids, v_rule.entries, v_rule.actor,
          v_rule.request, v_rule.origin);
      END LOOP;
    END LOOP;
    v_round := v_round + 1;
    EXIT WHEN cardinality(v_produced) = 0 OR v_round >= 8;
    v_pending := v_produced;
  END LOOP;
  PERFORM set_config('crm.rules_running', '', true);
  RETURN NULL;
END
$$;
