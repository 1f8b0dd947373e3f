-- Approvals (docs/approvals.md): processes per record type with entry conditions and ordered steps of
-- approvers (the owner's manager N levels up, a user, or a team deciding by first response or
-- unanimously); a pending request locks the record for everyone but admins and its current approvers;
-- approve, reject and recall with comments; final actions on approval or rejection. An opportunity
-- process may gate a stage: moving a matching deal into it needs the process's approval.

CREATE TABLE approval_processes (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  record_type text NOT NULL CHECK (record_type IN ('lead', 'contact', 'account', 'opportunity', 'ticket')),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- Submitting without naming a process picks the first active one (by position) whose entry
  -- conditions hold.
  position integer NOT NULL,
  is_active boolean NOT NULL DEFAULT true,
  -- As trigger_rules.conditions (state operators only: equals, not_equals, greater/less than, has tag).
  entry_conditions jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(entry_conditions) = 'array'),
  -- Opportunities: entering this stage needs this process's approval when the entry conditions hold.
  gated_stage_id uuid,
  -- [{"name", "approver": "manager" | "user" | "team", "level": 1.., "user_id", "team_id", "unanimous"}]
  steps jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array' AND jsonb_array_length(steps) BETWEEN 1 AND 10),
  -- [{"type": "set_field", "field", "column", "value", "from"} | {"type": "move_stage", "stage_id"}]
  on_approve jsonb NOT NULL DEFAULT '[]'::jsonb,
  on_reject jsonb NOT NULL DEFAULT '[]'::jsonb,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  CHECK (gated_stage_id IS NULL OR record_type = 'opportunity')
);
CREATE INDEX approval_processes_in_order ON approval_processes (tenant_id, record_type, position, id)
  WHERE archived_at IS NULL AND is_active;

CREATE TABLE approval_requests (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  process_id uuid NOT NULL,
  record_type text NOT NULL,
  record_id uuid NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'recalled')),
  -- The step waiting for decisions (from 1); the last one decided once the request is closed.
  step integer NOT NULL DEFAULT 1,
  submitted_by uuid NOT NULL,
  submitted_at timestamptz NOT NULL DEFAULT now(),
  comment text CHECK (length(comment) <= 2000),
  decided_at timestamptz,
  -- Set when a trigger rule submitted it.
  rule_id uuid,
  version bigint NOT NULL DEFAULT 1,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, process_id) REFERENCES approval_processes (tenant_id, id),
  CHECK ((status = 'pending') = (decided_at IS NULL))
);
-- One open request per record: the record's lock.
CREATE UNIQUE INDEX approval_requests_one_pending ON approval_requests (tenant_id, record_type, record_id)
  WHERE status = 'pending';
CREATE INDEX approval_requests_by_record ON approval_requests (tenant_id, record_type, record_id, submitted_at DESC);

-- Who decides each step: one row per approver, written when the step starts.
CREATE TABLE approval_decisions (
  tenant_id uuid NOT NULL,
  request_id uuid NOT NULL,
  step integer NOT NULL,
  approver_id uuid NOT NULL,
  -- skipped: the step was decided without them (first response, a rejection, a recall).
  decision text NOT NULL DEFAULT 'pending' CHECK (decision IN ('pending', 'approved', 'rejected', 'skipped')),
  comment text CHECK (length(comment) <= 2000),
  decided_at timestamptz,
  PRIMARY KEY (tenant_id, request_id, step, approver_id),
  FOREIGN KEY (tenant_id, request_id) REFERENCES approval_requests (tenant_id, id),
  FOREIGN KEY (tenant_id, approver_id) REFERENCES users (tenant_id, id)
);
-- ListMyApprovals.
CREATE INDEX approval_decisions_waiting ON approval_decisions (tenant_id, approver_id, request_id) WHERE decision = 'pending';

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['approval_processes', 'approval_requests', 'approval_decisions'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant())', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO crm_app', t);
  END LOOP;
END
$$;

-- The approvers of one step for a record owned by p_owner: the owner's manager p_step.level levels up
-- (the manager of the owner's team, or of the team above when the owner manages their own), a user,
-- or a team's active members. Inactive users are left out; an empty result means nobody can decide.
CREATE FUNCTION crm_approval_approvers(p_tenant uuid, p_step jsonb, p_owner uuid) RETURNS SETOF uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  v_person uuid := p_owner;
  v_team uuid;
  v_manager uuid;
  v_level integer := coalesce((p_step->>'level')::integer, 1);
BEGIN
  CASE p_step->>'approver'
  WHEN 'user' THEN
    RETURN QUERY SELECT u.id FROM users u WHERE u.tenant_id = p_tenant AND u.id = (p_step->>'user_id')::uuid AND u.is_active;
  WHEN 'team' THEN
    RETURN QUERY SELECT u.id FROM users u
      WHERE u.tenant_id = p_tenant AND u.team_id = (p_step->>'team_id')::uuid AND u.is_active ORDER BY u.id;
  WHEN 'manager' THEN
    FOR i IN 1..v_level LOOP
      SELECT u.team_id INTO v_team FROM users u WHERE u.tenant_id = p_tenant AND u.id = v_person;
      v_manager := NULL;
      -- Up the team tree to the first manager who is not the person themself.
      WHILE v_team IS NOT NULL AND v_manager IS NULL LOOP
        SELECT CASE WHEN t.manager_id IS DISTINCT FROM v_person THEN t.manager_id END, t.parent_team_id
          INTO v_manager, v_team
        FROM teams t WHERE t.tenant_id = p_tenant AND t.id = v_team;
      END LOOP;
      IF v_manager IS NULL THEN RETURN; END IF;
      v_person := v_manager;
    END LOOP;
    RETURN QUERY SELECT u.id FROM users u WHERE u.tenant_id = p_tenant AND u.id = v_person AND u.is_active;
  END CASE;
END
$$;

-- The record's owner (a ticket's assignee), for approver resolution.
CREATE FUNCTION crm_record_owner(p_tenant uuid, p_record_type text, p_record_id uuid) RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  v_owner uuid;
BEGIN
  EXECUTE format('SELECT (to_jsonb(t) ->> %L)::uuid FROM %I t WHERE t.tenant_id = $1 AND t.id = $2',
    CASE WHEN p_record_type = 'ticket' THEN 'assignee_id' ELSE 'owner_id' END, crm_rule_table(p_record_type))
    INTO v_owner USING p_tenant, p_record_id;
  RETURN v_owner;
END
$$;

-- Submits a record for approval, as crm's SubmitForApproval and the rules' submit_for_approval action
-- do: picks the process (p_process, else the first active one whose entry conditions hold), opens the
-- request, names step 1's approvers and writes the record's history entry (an 'approval_submitted'
-- event). Returns the request id, or NULL — when no process applies, the record already has an open
-- request, or step 1 has no approver — with the reason in p_why (crmd turns it into an error; a rule
-- skips the record).
CREATE FUNCTION crm_approval_submit(
  p_tenant uuid, p_record_type text, p_record_id uuid, p_process uuid, p_submitter uuid, p_comment text,
  p_request text, p_origin text, p_rule uuid, OUT request_id uuid, OUT why text
)
LANGUAGE plpgsql
AS $$
DECLARE
  v_process record;
  v_row jsonb;
  v_owner uuid;
  v_count integer;
BEGIN
  EXECUTE format('SELECT crm_rule_record(%L, to_jsonb(t)) FROM %I t WHERE t.tenant_id = $1 AND t.id = $2',
    p_record_type, crm_rule_table(p_record_type)) INTO v_row USING p_tenant, p_record_id;
  IF v_row IS NULL THEN why := 'no_record'; RETURN; END IF;
  SELECT p.* INTO v_process FROM approval_processes p
  WHERE p.tenant_id = p_tenant AND p.record_type = p_record_type AND p.archived_at IS NULL AND p.is_active
    AND (p_process IS NULL OR p.id = p_process)
    AND crm_rule_conditions_hold(p.entry_conditions, '[]'::jsonb, v_row)
  ORDER BY p.position, p.id LIMIT 1;
  IF v_process IS NULL THEN why := 'no_process'; RETURN; END IF;
  IF EXISTS (SELECT 1 FROM approval_requests r WHERE r.tenant_id = p_tenant AND r.record_type = p_record_type
             AND r.record_id = p_record_id AND r.status = 'pending') THEN
    why := 'pending'; RETURN;
  END IF;
  v_owner := coalesce((v_row ->> CASE WHEN p_record_type = 'ticket' THEN 'assignee_id' ELSE 'owner_id' END)::uuid, p_submitter);
  request_id := crm_uuid_v7();
  INSERT INTO approval_requests (tenant_id, id, process_id, record_type, record_id, submitted_by, comment, rule_id)
  VALUES (p_tenant, request_id, v_process.id, p_record_type, p_record_id, p_submitter, p_comment, p_rule);
  INSERT INTO approval_decisions (tenant_id, request_id, step, approver_id)
  SELECT p_tenant, request_id, 1, a FROM crm_approval_approvers(p_tenant, v_process.steps -> 0, v_owner) a;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count = 0 THEN
    DELETE FROM approval_requests r WHERE r.tenant_id = p_tenant AND r.id = request_id;
    request_id := NULL;
    why := 'no_approver';
    RETURN;
  END IF;
  INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin, rule_id, event_name)
  VALUES (p_tenant, p_record_type, p_record_id, 'event', p_submitter, p_request,
          jsonb_build_array(
            jsonb_build_object('field', 'approval_request_id', 'old', NULL, 'new', request_id::text),
            jsonb_build_object('field', 'approval_process', 'old', NULL, 'new', v_process.name),
            jsonb_build_object('field', 'approval_status', 'old', NULL, 'new', 'pending'),
            jsonb_build_object('field', 'approval_step', 'old', NULL, 'new', v_process.steps -> 0 ->> 'name'),
            jsonb_build_object('field', 'approval_comment', 'old', NULL, 'new', p_comment)),
          p_origin, p_rule, 'approval_submitted');
END
$$;

-- Sets one field on records, as a rule's set_field action and an approval's final action do; writes
-- each changed record's history entry (naming p_rule when a rule acts). Returns the entries' sequences.
CREATE FUNCTION crm_apply_set_field(
  p_tenant uuid, p_record_type text, p_ids uuid[], p_action jsonb, p_actor uuid, p_request text, p_origin text, p_rule uuid
) RETURNS bigint[]
LANGUAGE plpgsql
AS $$
DECLARE
  v_made bigint[];
BEGIN
  EXECUTE format(
    $q$WITH old AS (
         SELECT t.id, to_jsonb(t) -> %2$L AS value FROM %1$I t
         WHERE t.tenant_id = $1 AND t.id = ANY($2) AND ($10::jsonb IS NULL OR $10 ? (to_jsonb(t) ->> %2$L))
         FOR UPDATE
       ), changed AS (
         UPDATE %1$I t SET %2$I = (jsonb_populate_record(t, jsonb_build_object(%2$L, $3))).%2$I,
           version = t.version + 1, updated_at = now()
         FROM old WHERE t.tenant_id = $1 AND t.id = old.id AND old.value IS DISTINCT FROM $3
         RETURNING t.id, old.value
       ), logged AS (
         INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin, rule_id)
         SELECT $1, $4, c.id, 'update', $5, $6, jsonb_build_array(jsonb_build_object('field', $7::text, 'old', c.value, 'new', $3)),
                $8, $9
         FROM changed c
         RETURNING sequence
       )
       SELECT array_agg(sequence) FROM logged$q$, crm_rule_table(p_record_type), p_action->>'column')
    INTO v_made
    USING p_tenant, p_ids, p_action->'value', p_record_type, p_actor, p_request, p_action->>'field', p_origin, p_rule,
          nullif(p_action->'from', 'null'::jsonb);
  IF v_made IS NOT NULL THEN PERFORM set_config('crm.rules_touched', 'on', true); END IF;
  RETURN coalesce(v_made, '{}');
END
$$;

-- The rules engine again (0037), its set_field now the shared crm_apply_set_field, with one more
-- action: {"type": "submit_for_approval", "process_id": null | id}.
CREATE OR REPLACE FUNCTION crm_run_trigger_rules() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  v_round integer := 0;
  v_pending bigint[];
  v_produced bigint[];
  v_made bigint[];
  v_source text;
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
  LOOP
    v_produced := '{}';
    -- Round 0 matches the statement's own entries; later rounds the entries the last round wrote.
    v_source := CASE WHEN v_round = 0 THEN 'new_rows'
      ELSE '(SELECT * FROM change_log c WHERE c.tenant_id = $1 AND c.sequence = ANY($7))' END;
    FOR v_rule IN
      SELECT r.* FROM trigger_rules r
      WHERE r.archived_at IS NULL AND r.is_active AND (
        (v_round = 0 AND (r.tenant_id, r.record_type) IN (SELECT n.tenant_id, n.record_type FROM new_rows n))
        OR (v_round > 0 AND (r.tenant_id, r.record_type) IN (
          SELECT c.tenant_id, c.record_type FROM change_log c WHERE c.sequence = ANY(v_pending))))
      ORDER BY r.position, r.id
    LOOP
      v_table := crm_rule_table(v_rule.record_type);
      EXECUTE format(
        $q$SELECT array_agg(DISTINCT n.record_id), min(n.actor_id::text)::uuid, min(n.request_id), min(n.origin)
           FROM %2$s n JOIN %1$I t ON t.tenant_id = n.tenant_id AND t.id = n.record_id
           WHERE n.tenant_id = $1 AND n.record_type = $2
             AND ((n.operation = 'create' AND $3) OR (n.operation = 'update' AND $4))
             AND NOT n.record_id = ANY($6)
             AND crm_rule_conditions_hold($5, n.changes, crm_rule_record($2, to_jsonb(t)))$q$, v_table, v_source)
        INTO v_ids, v_actor, v_request, v_origin
        USING v_rule.tenant_id, v_rule.record_type, v_rule.on_create, v_rule.on_update, v_rule.conditions,
              ARRAY(SELECT jsonb_array_elements_text(coalesce(v_fired -> v_rule.id::text, '[]')))::uuid[], v_pending;
      CONTINUE WHEN v_ids IS NULL;
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
            replace(v_source, '$7', '$6'))
            INTO v_made
            USING v_rule.tenant_id, v_ids, v_rule.id, v_action->>'name', v_rule.record_type, v_pending;
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
    v_round := v_round + 1;
    EXIT WHEN cardinality(v_produced) = 0 OR v_round >= 8;
    v_pending := v_produced;
  END LOOP;
  PERFORM set_config('crm.rules_running', '', true);
  RETURN NULL;
END
$$;
