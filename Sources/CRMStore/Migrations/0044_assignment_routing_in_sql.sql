-- Assignment routing in SQL, so trigger rules can assign (issue 15) through the same rules every other
-- write uses. One implementation: AssignmentStore.Router (creates, captures, imports, tickets, pools and
-- TestAssignment's dry run) calls crm_assignment_route, and the rules engine's `assign` action calls it
-- through crm_apply_assign. Semantics as before (migration 0022): the tenant's active rules of the
-- record type in (position, id) order; the first that matches and can place the record fires — a user
-- rule when its user is active and not out of office, a pool rule always, a team rule when a member is
-- eligible (active, in office, under the rule's open-record cap), picking the one with the fewest
-- assignments per unit of weight after one more (ties: member order).

-- What criteria read in a stored record (AssignmentSubject): leads their source, region, industry,
-- company size, score and tags; accounts the billing (else shipping) address's region, industry,
-- employee count and tags; tickets their channel, type, priority and tags.
CREATE FUNCTION crm_assignment_subject(p_record_type text, p_row jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE p_record_type
    WHEN 'lead' THEN jsonb_build_object(
      'source', p_row->'source', 'region_code', p_row->'region_code', 'industry', p_row->'industry',
      'company_size', p_row->'company_size', 'score', p_row->'score', 'tags', p_row->'tags')
    WHEN 'account' THEN jsonb_build_object(
      'region_code', CASE WHEN jsonb_typeof(p_row->'billing_address') = 'object'
                       THEN nullif(p_row->'billing_address'->>'region_code', '')
                       ELSE nullif(p_row->'shipping_address'->>'region_code', '') END,
      'industry', p_row->'industry', 'company_size', p_row->'employee_count', 'tags', p_row->'tags')
    WHEN 'ticket' THEN jsonb_build_object(
      'channel', p_row->'channel', 'ticket_type', p_row->'type', 'priority', p_row->'priority', 'tags', p_row->'tags')
  END
$$;

-- Whether a subject meets every criterion of a rule (an absent or empty criterion matches everything;
-- a subject without the value a criterion reads does not match it). AssignmentCriteria.evaluate
-- explains the same checks in words for TestAssignment.
CREATE FUNCTION crm_assignment_matches(c jsonb, s jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(
    (coalesce(c->'sources', '[]') = '[]' OR c->'sources' ? (s->>'source'))
    AND (coalesce(c->'region_codes', '[]') = '[]' OR c->'region_codes' ? (s->>'region_code'))
    AND (coalesce(c->'industries', '[]') = '[]'
         OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(c->'industries') i WHERE lower(i) = lower(s->>'industry')))
    AND ((c->'company_size_min') IS NULL AND (c->'company_size_max') IS NULL
         OR (s->>'company_size')::bigint BETWEEN coalesce((c->>'company_size_min')::bigint, -9223372036854775808)
                                             AND coalesce((c->>'company_size_max')::bigint, 9223372036854775807))
    AND ((c->'score_min') IS NULL AND (c->'score_max') IS NULL
         OR (s->>'score')::bigint BETWEEN coalesce((c->>'score_min')::bigint, -9223372036854775808)
                                      AND coalesce((c->>'score_max')::bigint, 9223372036854775807))
    AND (coalesce(c->'tags', '[]') = '[]'
         OR c->'tags' ?| ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'tags', '[]'))))
    AND (coalesce(c->'channels', '[]') = '[]' OR c->'channels' ? (s->>'channel'))
    AND (coalesce(c->'ticket_types', '[]') = '[]' OR c->'ticket_types' ? (s->>'ticket_type'))
    AND (coalesce(c->'priorities', '[]') = '[]' OR c->'priorities' ? (s->>'priority')),
    false)
$$;

-- Routes subjects (a JSON array of crm_assignment_subject objects) in order, one row per subject:
-- the rule that fired and its user or pool (all NULL when none did), for a team pick the member's
-- assignments before it and weight (o_turn), and the rules that matched but could not place it
-- (o_passed: [{"rule_id", "why": "unavailable" | "no_member"}]). Turns are taken in memory, so a
-- batch spreads like single records would; unless p_dry_run, each team rule used is locked before
-- its members are read (turns committed before ours count) and the counts are written back once.
CREATE FUNCTION crm_assignment_route(p_tenant uuid, p_record_type text, p_subjects jsonb, p_dry_run boolean)
RETURNS TABLE (o_ordinal integer, o_rule_id uuid, o_user_id uuid, o_pool_id uuid, o_turn jsonb, o_passed jsonb)
LANGUAGE plpgsql
AS $$
DECLARE
  v_rules assignment_rules[];
  v_rule assignment_rules;
  v_subject jsonb;
  v_loaded uuid[] := '{}';
  -- Team members read so far, flat across rules.
  v_m_rule uuid[] := '{}';
  v_m_user uuid[] := '{}';
  v_m_weight integer[] := '{}';
  v_m_assigned bigint[] := '{}';
  v_m_before bigint[] := '{}';
  v_m_eligible boolean[] := '{}';
  -- Open records per user (read for capped rules) and records this call gave each user.
  v_open_user uuid[] := '{}';
  v_open_n bigint[] := '{}';
  v_gave_user uuid[] := '{}';
  v_gave_n bigint[] := '{}';
  v_avail_user uuid[] := '{}';
  v_avail boolean[] := '{}';
  v_i integer;
  v_j integer;
  v_best integer;
  v_open bigint;
BEGIN
  v_rules := ARRAY(
    SELECT r FROM assignment_rules r
    WHERE r.tenant_id = p_tenant AND r.record_type = p_record_type AND r.archived_at IS NULL AND r.is_active
    ORDER BY r.position, r.id);
  FOR v_subject, o_ordinal IN SELECT e.value, e.n::integer FROM jsonb_array_elements(p_subjects) WITH ORDINALITY e(value, n) ORDER BY e.n
  LOOP
    o_rule_id := NULL;
    o_user_id := NULL;
    o_pool_id := NULL;
    o_turn := NULL;
    o_passed := '[]';
    FOREACH v_rule IN ARRAY v_rules LOOP
      CONTINUE WHEN NOT crm_assignment_matches(v_rule.criteria, v_subject);
      IF v_rule.action = 'pool' THEN
        o_rule_id := v_rule.id;
        o_pool_id := v_rule.pool_id;
        EXIT;
      ELSIF v_rule.action = 'user' THEN
        v_i := array_position(v_avail_user, v_rule.user_id);
        IF v_i IS NULL THEN
          v_avail_user := v_avail_user || v_rule.user_id;
          v_avail := v_avail || EXISTS (
            SELECT 1 FROM users u WHERE u.tenant_id = p_tenant AND u.id = v_rule.user_id AND u.is_active
              AND (u.out_of_office_until IS NULL OR u.out_of_office_until <= now()));
          v_i := cardinality(v_avail_user);
        END IF;
        IF v_avail[v_i] THEN
          o_rule_id := v_rule.id;
          o_user_id := v_rule.user_id;
          EXIT;
        END IF;
        o_passed := o_passed || jsonb_build_object('rule_id', v_rule.id, 'why', 'unavailable');
      ELSE
        IF NOT v_rule.id = ANY(v_loaded) THEN
          IF NOT p_dry_run THEN
            PERFORM 1 FROM assignment_rules r WHERE r.tenant_id = p_tenant AND r.id = v_rule.id FOR UPDATE;
          END IF;
          SELECT v_m_rule || coalesce(array_agg(m.rule_id ORDER BY m.position), '{}'),
                 v_m_user || coalesce(array_agg(m.user_id ORDER BY m.position), '{}'),
                 v_m_weight || coalesce(array_agg(m.weight ORDER BY m.position), '{}'),
                 v_m_assigned || coalesce(array_agg(m.assigned ORDER BY m.position), '{}'),
                 v_m_before || coalesce(array_agg(m.assigned ORDER BY m.position), '{}'),
                 v_m_eligible || coalesce(array_agg(
                   coalesce(u.is_active AND (u.out_of_office_until IS NULL OR u.out_of_office_until <= now()), false)
                   ORDER BY m.position), '{}')
            INTO v_m_rule, v_m_user, v_m_weight, v_m_assigned, v_m_before, v_m_eligible
          FROM assignment_rule_members m
          LEFT JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
          WHERE m.tenant_id = p_tenant AND m.rule_id = v_rule.id;
          IF v_rule.open_record_cap IS NOT NULL THEN
            -- Open records: not archived; leads not converted or disqualified; tickets not solved or closed.
            SELECT v_open_user || coalesce(array_agg(o.owner), '{}'), v_open_n || coalesce(array_agg(o.n), '{}')
              INTO v_open_user, v_open_n
            FROM (
              SELECT m.user_id AS owner, (CASE p_record_type
                WHEN 'lead' THEN (SELECT count(*) FROM leads l WHERE l.tenant_id = p_tenant AND l.owner_id = m.user_id
                                    AND l.archived_at IS NULL AND l.status NOT IN ('converted', 'disqualified'))
                WHEN 'ticket' THEN (SELECT count(*) FROM tickets t WHERE t.tenant_id = p_tenant AND t.assignee_id = m.user_id
                                      AND t.archived_at IS NULL AND t.status IN ('new', 'open', 'pending', 'on_hold'))
                ELSE (SELECT count(*) FROM accounts a WHERE a.tenant_id = p_tenant AND a.owner_id = m.user_id
                        AND a.archived_at IS NULL) END) AS n
              FROM assignment_rule_members m
              WHERE m.tenant_id = p_tenant AND m.rule_id = v_rule.id AND m.user_id <> ALL(v_open_user)
            ) o;
          END IF;
          v_loaded := v_loaded || v_rule.id;
        END IF;
        v_best := NULL;
        FOR v_i IN 1 .. coalesce(cardinality(v_m_rule), 0) LOOP
          CONTINUE WHEN v_m_rule[v_i] <> v_rule.id OR NOT v_m_eligible[v_i];
          IF v_rule.open_record_cap IS NOT NULL THEN
            v_open := coalesce(v_open_n[array_position(v_open_user, v_m_user[v_i])], 0)
                      + coalesce(v_gave_n[array_position(v_gave_user, v_m_user[v_i])], 0);
            CONTINUE WHEN v_open >= v_rule.open_record_cap;
          END IF;
          IF v_best IS NULL
             OR (v_m_assigned[v_i] + 1)::float8 / v_m_weight[v_i] < (v_m_assigned[v_best] + 1)::float8 / v_m_weight[v_best] THEN
            v_best := v_i;
          END IF;
        END LOOP;
        IF v_best IS NULL THEN
          o_passed := o_passed || jsonb_build_object('rule_id', v_rule.id, 'why', 'no_member');
          CONTINUE;
        END IF;
        o_rule_id := v_rule.id;
        o_user_id := v_m_user[v_best];
        o_turn := jsonb_build_object('assigned', v_m_assigned[v_best], 'weight', v_m_weight[v_best]);
        v_m_assigned[v_best] := v_m_assigned[v_best] + 1;
        v_j := array_position(v_gave_user, o_user_id);
        IF v_j IS NULL THEN
          v_gave_user := v_gave_user || o_user_id;
          v_gave_n := v_gave_n || 1::bigint;
        ELSE
          v_gave_n[v_j] := v_gave_n[v_j] + 1;
        END IF;
        EXIT;
      END IF;
    END LOOP;
    RETURN NEXT;
  END LOOP;
  IF NOT p_dry_run THEN
    UPDATE assignment_rule_members m SET assigned = t.assigned
    FROM unnest(v_m_rule, v_m_user, v_m_assigned, v_m_before) AS t(rule_id, user_id, assigned, before)
    WHERE m.tenant_id = p_tenant AND m.rule_id = t.rule_id AND m.user_id = t.user_id AND t.assigned <> t.before;
  END IF;
END
$$;

-- The history note naming the assignment rule that placed a record, as Swift writes it.
CREATE FUNCTION crm_assignment_note(p_tenant uuid, p_rule uuid) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT jsonb_build_object('field', 'assignment_rule', 'old', NULL, 'new', jsonb_build_object('id', r.id, 'name', r.name))
  FROM assignment_rules r WHERE r.tenant_id = p_tenant AND r.id = p_rule
$$;

-- A trigger rule's `assign` action: routes records (leads, accounts, tickets; archived ones are left)
-- through the tenant's assignment rules, in id order, and gives each to the user or pool the first
-- rule that can place it names — a lead or account moved into a pool leaves its owner and claim, and
-- the move is in the pool's returns like any other; a ticket changes assignee. A record no rule
-- places, or already where its rule sends it, is left as it is. Each change's history entry names the
-- assignment rule (`assignment_rule`) and the trigger rule (p_rule). Returns the entries' sequences.
CREATE FUNCTION crm_apply_assign(
  p_tenant uuid, p_record_type text, p_ids uuid[], p_actor uuid, p_request text, p_origin text, p_rule uuid
) RETURNS bigint[]
LANGUAGE plpgsql
AS $$
DECLARE
  v_ids uuid[];
  v_subjects jsonb;
  v_placed uuid[];
  v_rules uuid[];
  v_users uuid[];
  v_pools uuid[];
  v_made bigint[];
BEGIN
  IF p_record_type NOT IN ('lead', 'account', 'ticket') THEN RETURN '{}'; END IF;
  EXECUTE format(
    $q$SELECT coalesce(array_agg(t.id ORDER BY t.id), '{}'),
              coalesce(jsonb_agg(crm_assignment_subject($3, to_jsonb(t)) ORDER BY t.id), '[]')
       FROM (SELECT * FROM %I t WHERE t.tenant_id = $1 AND t.id = ANY($2) AND t.archived_at IS NULL ORDER BY t.id FOR UPDATE) t$q$,
    crm_rule_table(p_record_type))
    INTO v_ids, v_subjects
    USING p_tenant, p_ids, p_record_type;
  SELECT coalesce(array_agg(v_ids[r.o_ordinal] ORDER BY r.o_ordinal), '{}'), array_agg(r.o_rule_id ORDER BY r.o_ordinal),
         array_agg(r.o_user_id ORDER BY r.o_ordinal), array_agg(r.o_pool_id ORDER BY r.o_ordinal)
    INTO v_placed, v_rules, v_users, v_pools
  FROM crm_assignment_route(p_tenant, p_record_type, v_subjects, false) r
  WHERE r.o_rule_id IS NOT NULL;
  IF cardinality(v_placed) = 0 THEN RETURN '{}'; END IF;
  IF p_record_type = 'ticket' THEN
    WITH p AS (
      SELECT * FROM unnest(v_placed, v_rules, v_users) AS p(id, rule_id, user_id)
    ), old AS (
      SELECT t.id, t.assignee_id, p.rule_id, p.user_id FROM tickets t JOIN p ON t.id = p.id
      WHERE t.tenant_id = p_tenant AND t.assignee_id IS DISTINCT FROM p.user_id
    ), changed AS (
      UPDATE tickets t SET assignee_id = o.user_id, version = t.version + 1, updated_at = now()
      FROM old o WHERE t.tenant_id = p_tenant AND t.id = o.id
      RETURNING t.id, o.assignee_id AS before, o.user_id AS after, o.rule_id
    ), logged AS (
      INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin, rule_id)
      SELECT p_tenant, 'ticket', c.id, 'update', p_actor, p_request,
             jsonb_build_array(jsonb_build_object('field', 'assignee_id', 'old', c.before, 'new', c.after),
                               crm_assignment_note(p_tenant, c.rule_id)),
             p_origin, p_rule
      FROM changed c
      RETURNING sequence
    )
    SELECT array_agg(sequence) INTO v_made FROM logged;
  ELSE
    EXECUTE format(
      $q$WITH p AS (
           SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[]) AS p(id, rule_id, user_id, pool_id)
         ), old AS (
           SELECT t.id, t.owner_id, t.pool_id, p.rule_id, p.user_id AS to_user, p.pool_id AS to_pool
           FROM %1$I t JOIN p ON t.id = p.id
           WHERE t.tenant_id = $1 AND (t.owner_id IS DISTINCT FROM p.user_id OR t.pool_id IS DISTINCT FROM p.pool_id)
         ), changed AS (
           UPDATE %1$I t SET owner_id = o.to_user, pool_id = o.to_pool,
             claimed_from_pool_id = CASE WHEN o.to_pool IS NULL THEN t.claimed_from_pool_id END,
             claimed_at = CASE WHEN o.to_pool IS NULL THEN t.claimed_at END,
             version = t.version + 1, updated_at = now()
           FROM old o WHERE t.tenant_id = $1 AND t.id = o.id
           RETURNING t.id, o.owner_id AS old_owner, o.pool_id AS old_pool, o.to_user, o.to_pool, o.rule_id
         ), returned AS (
           INSERT INTO pool_returns (tenant_id, pool_id, record_type, record_id, user_id, kind, reason_code, actor_id)
           SELECT $1, c.to_pool, $6, c.id, c.old_owner, 'move', 'assignment_rule', $7 FROM changed c WHERE c.to_pool IS NOT NULL
         ), logged AS (
           INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin, rule_id)
           SELECT $1, $6, c.id, 'update', $7, $8, jsonb_path_query_array(jsonb_build_array(
                    CASE WHEN c.old_owner IS DISTINCT FROM c.to_user THEN
                      jsonb_build_object('field', 'owner_id', 'old', c.old_owner, 'new', c.to_user) END,
                    CASE WHEN c.old_pool IS DISTINCT FROM c.to_pool THEN
                      jsonb_build_object('field', 'pool_id', 'old', c.old_pool, 'new', c.to_pool) END,
                    crm_assignment_note($1, c.rule_id)), '$[*] ? (@ != null)'),
                  $9, $10
           FROM changed c
           RETURNING sequence
         )
         SELECT array_agg(sequence) FROM logged$q$, crm_rule_table(p_record_type))
      INTO v_made
      USING p_tenant, v_placed, v_rules, v_users, v_pools, p_record_type, p_actor, p_request, p_origin, p_rule;
  END IF;
  IF v_made IS NOT NULL THEN PERFORM set_config('crm.rules_touched', 'on', true); END IF;
  RETURN coalesce(v_made, '{}');
END
$$;

-- The rules engine of 0042 with one more action: {"type": "assign"}.
CREATE OR REPLACE FUNCTION crm_run_trigger_rules() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  v_round integer := 0;
  v_pending bigint[];
  v_produced bigint[];
  v_made bigint[];
  v_type text;
  v_tenants uuid[];
  v_fired jsonb := '{}'::jsonb;
  v_rule record;
  v_action jsonb;
  v_table text;
  v_ids uuid[];
  v_actor uuid;
  v_request text;
  v_origin text;
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
    -- Round 0 matches the statement's own entries; later rounds the entries the last round wrote.
    FOR v_type IN
      SELECT DISTINCT n.record_type FROM new_rows n WHERE v_round = 0
      UNION SELECT DISTINCT c.record_type FROM change_log c
      WHERE v_round > 0 AND c.tenant_id = ANY(v_tenants) AND c.sequence = ANY(v_pending)
    LOOP
    CONTINUE WHEN crm_rule_table(v_type) IS NULL;
    v_table := crm_rule_table(v_type);
    -- Every rule of the type with the records it matches, in the order the rules run: one query, each
    -- record's row read (and made JSON) once, whatever the number of rules.
    FOR v_rule IN EXECUTE format(
        $q$SELECT r.id, r.tenant_id, r.record_type, r.actions, array_agg(DISTINCT n.record_id) AS ids,
                  min(n.actor_id::text)::uuid AS actor, min(n.request_id) AS request, min(n.origin) AS origin
           FROM %2$s n
           JOIN %1$I t ON t.tenant_id = n.tenant_id AND t.id = n.record_id
           CROSS JOIN LATERAL (SELECT crm_rule_record(n.record_type, to_jsonb(t)) AS row) x
           JOIN trigger_rules r ON r.tenant_id = n.tenant_id AND r.record_type = n.record_type AND r.archived_at IS NULL
             AND r.is_active AND ((n.operation = 'create' AND r.on_create) OR (n.operation = 'update' AND r.on_update))
           WHERE n.record_type = $1
             AND NOT coalesce($2 -> r.id::text, '[]'::jsonb) ? n.record_id::text
             AND NOT EXISTS (
               SELECT 1 FROM jsonb_array_elements(r.conditions) c
               LEFT JOIN LATERAL (
                 SELECT e.value AS change FROM jsonb_array_elements(n.changes) e WHERE e.value->>'field' = c.value->>'field' LIMIT 1
               ) ch ON true
               WHERE NOT crm_rule_condition_holds(c.value, ch.change, x.row))
           GROUP BY r.id, r.tenant_id, r.record_type, r.actions, r.position
           ORDER BY r.position, r.id$q$,
        v_table,
        CASE WHEN v_round = 0 THEN 'new_rows'
          ELSE '(SELECT * FROM change_log c WHERE c.tenant_id = ANY($4) AND c.sequence = ANY($3))' END)
      USING v_type, v_fired, v_pending, v_tenants
    LOOP
      v_ids := v_rule.ids;
      v_actor := v_rule.actor;
      v_request := v_rule.request;
      v_origin := v_rule.origin;
      v_fired := jsonb_set(v_fired, ARRAY[v_rule.id::text],
        coalesce(v_fired -> v_rule.id::text, '[]'::jsonb) || to_jsonb(v_ids));
      FOR v_action IN SELECT jsonb_array_elements(v_rule.actions) LOOP
        v_made := NULL;
        CASE v_action->>'type'
        WHEN 'set_field' THEN
          v_made := crm_apply_set_field(v_rule.tenant_id, v_rule.record_type, v_ids, v_action, v_actor, v_request, v_origin,
                                        v_rule.id);
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
            USING v_rule.tenant_id, v_ids, v_action->>'tag', v_rule.record_type, v_actor, v_request, v_origin, v_rule.id;
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
            v_table, CASE WHEN v_rule.record_type = 'ticket' THEN 'assignee_id' ELSE 'owner_id' END)
            INTO v_made
            USING v_rule.tenant_id, v_ids, v_action->>'assignee_id', v_rule.record_type, v_actor, v_action->>'subject',
                  v_action->>'description', (v_action->>'due_in_hours')::integer, coalesce(v_action->>'priority', 'normal'),
                  v_request, v_origin, v_rule.id;
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
            CASE WHEN v_round = 0 THEN 'new_rows' ELSE '(SELECT * FROM change_log c WHERE c.tenant_id = $1 AND c.sequence = ANY($6))' END)
            INTO v_made
            USING v_rule.tenant_id, v_ids, v_rule.id, v_action->>'name', v_rule.record_type, v_pending;
        WHEN 'assign' THEN
          v_made := crm_apply_assign(v_rule.tenant_id, v_rule.record_type, v_ids, v_actor, v_request, v_origin, v_rule.id);
        WHEN 'submit_for_approval' THEN
          -- Each matching record without an open request, through the process named or the first whose
          -- entry conditions hold; a record no process takes (or without an approver) is left as it is.
          PERFORM crm_approval_submit(v_rule.tenant_id, v_rule.record_type, r, (v_action->>'process_id')::uuid, v_actor,
                                      NULL, v_request, v_origin, v_rule.id)
          FROM unnest(v_ids) r;
        END CASE;
        v_produced := v_produced || coalesce(v_made, '{}');
      END LOOP;
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
