-- Trigger rules (docs/rules.md): per tenant and record type, when a record is created or updated and
-- every condition holds, run actions — set a field, add a tag, create a task, emit a custom event —
-- in the same transaction as the change.
--
-- They run in PostgreSQL, from a statement-level trigger on change_log: every write path (single
-- creates and updates, imports, merges, pool moves, background jobs, and record types yet to come)
-- writes its change there, so every path runs the rules by construction, and an import batch's
-- thousand rows are matched by one query per rule, not one per row. The API validates a rule's
-- fields and values before it is stored (crm's field catalogue); this file trusts what it stores.

-- Which rule wrote an entry (its actions' changes, its custom events), and a custom event's name.
ALTER TABLE change_log ADD COLUMN rule_id uuid;
ALTER TABLE change_log ADD COLUMN event_name text CHECK (length(event_name) <= 100);
ALTER TABLE change_log DROP CONSTRAINT change_log_operation_check;
ALTER TABLE change_log ADD CONSTRAINT change_log_operation_check
  CHECK (operation IN ('create', 'update', 'archive', 'restore', 'merge', 'event')) NOT VALID;
ALTER TABLE change_log VALIDATE CONSTRAINT change_log_operation_check;
ALTER TABLE change_log ADD CONSTRAINT change_log_event_named CHECK ((operation = 'event') = (event_name IS NOT NULL));

CREATE TABLE trigger_rules (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  record_type text NOT NULL CHECK (record_type IN ('lead', 'contact', 'account', 'opportunity', 'ticket')),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- Rules run in ascending position; ties by id.
  position integer NOT NULL,
  is_active boolean NOT NULL DEFAULT true,
  on_create boolean NOT NULL,
  on_update boolean NOT NULL,
  -- [{"field": API name, "column": stored key, "op": "equals"|"not_equals"|"changed"|"changed_to"|
  --   "changed_from"|"greater_than"|"less_than"|"contains_tag", "value": JSON}]; all must hold.
  conditions jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(conditions) = 'array'),
  -- [{"type": "set_field", "field", "column", "value", "from": [values the field may be moved from] or null} |
  --  {"type": "add_tag", "tag"} |
  --  {"type": "create_task", "subject", "description", "priority", "due_in_hours", "assignee_id"} |
  --  {"type": "emit_event", "name"}], run in order.
  actions jsonb NOT NULL CHECK (jsonb_typeof(actions) = 'array' AND jsonb_array_length(actions) BETWEEN 1 AND 10),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  CHECK (on_create OR on_update)
);
CREATE INDEX trigger_rules_in_order ON trigger_rules (tenant_id, record_type, position, id)
  WHERE archived_at IS NULL AND is_active;

ALTER TABLE trigger_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON trigger_rules TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON trigger_rules TO crm_app;

-- The table a rule's record type lives in.
CREATE FUNCTION crm_rule_table(p_record_type text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE p_record_type
    WHEN 'lead' THEN 'leads' WHEN 'contact' THEN 'contacts' WHEN 'account' THEN 'accounts'
    WHEN 'opportunity' THEN 'opportunities' WHEN 'ticket' THEN 'tickets' END
$$;

-- A record's row as conditions read it: its columns, plus an opportunity's amount as one number.
CREATE FUNCTION crm_rule_record(p_record_type text, p_row jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
    WHEN p_record_type = 'opportunity' AND p_row->>'amount_units' IS NOT NULL THEN
      p_row || jsonb_build_object('amount',
        (p_row->>'amount_units')::numeric + coalesce((p_row->>'amount_nanos')::numeric, 0) / 1000000000)
    ELSE p_row END
$$;

-- Whether every condition holds for a change (`p_changes`, the change-log entry's field changes) to
-- a record (`p_record`, from crm_rule_record). Values compare as JSON; greater/less than compare
-- numbers as numbers and strings (ISO dates) as text; a missing value never matches them.
CREATE FUNCTION crm_rule_conditions_hold(p_conditions jsonb, p_changes jsonb, p_record jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
  v_condition jsonb;
  v_column text;
  v_value jsonb;
  v_current jsonb;
  v_change jsonb;
  v_holds boolean;
BEGIN
  FOR v_condition IN SELECT jsonb_array_elements(p_conditions) LOOP
    v_column := v_condition->>'column';
    v_value := v_condition->'value';
    v_current := p_record->v_column;
    IF jsonb_typeof(v_current) = 'null' THEN v_current := NULL; END IF;
    SELECT c INTO v_change FROM jsonb_array_elements(p_changes) c WHERE c->>'field' = v_condition->>'field' LIMIT 1;
    v_holds := CASE v_condition->>'op'
      WHEN 'equals' THEN v_current IS NOT NULL AND v_current = v_value
      WHEN 'not_equals' THEN v_current IS NULL OR v_current <> v_value
      WHEN 'changed' THEN v_change IS NOT NULL
      WHEN 'changed_to' THEN v_change IS NOT NULL AND v_change->'new' = v_value
      WHEN 'changed_from' THEN v_change IS NOT NULL AND v_change->'old' = v_value
      WHEN 'greater_than' THEN CASE jsonb_typeof(v_current)
        WHEN 'number' THEN (v_current #>> '{}')::numeric > (v_value #>> '{}')::numeric
        WHEN 'string' THEN (v_current #>> '{}') > (v_value #>> '{}')
        ELSE false END
      WHEN 'less_than' THEN CASE jsonb_typeof(v_current)
        WHEN 'number' THEN (v_current #>> '{}')::numeric < (v_value #>> '{}')::numeric
        WHEN 'string' THEN (v_current #>> '{}') < (v_value #>> '{}')
        ELSE false END
      WHEN 'contains_tag' THEN coalesce(p_record->'tags' ? (v_value #>> '{}'), false)
      ELSE false END;
    IF NOT v_holds THEN RETURN false; END IF;
  END LOOP;
  RETURN true;
END
$$;

-- The rules engine: after each statement that writes change-log entries, every active rule of the
-- tenant whose record type, event and conditions match the entries runs its actions on the matching
-- records, set-wise, in position order. A rule's changes are change-log entries naming it (rule_id);
-- the next round matches the rules against those, and so on, up to eight rounds. Loop protection: in
-- one statement's cascade a rule runs at most once per record, so the work is bounded by rules ×
-- records however the rules feed each other. The cascade runs in the outermost invocation (the
-- entries its own actions write do not start another: crm.rules_running).
-- When a rule changed a record, crm.rules_touched is 'on' for the rest of the transaction: the store
-- then reads back what it returns.
CREATE FUNCTION crm_run_trigger_rules() RETURNS trigger
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
          EXECUTE format(
            $q$WITH old AS (
                 SELECT t.id, to_jsonb(t) -> %2$L AS value FROM %1$I t
                 WHERE t.tenant_id = $1 AND t.id = ANY($2)
                   AND ($10::jsonb IS NULL OR $10 ? (to_jsonb(t) ->> %2$L))
                 FOR UPDATE
               ), changed AS (
                 UPDATE %1$I t SET %2$I = (jsonb_populate_record(t, jsonb_build_object(%2$L, $3))).%2$I,
                   version = t.version + 1, updated_at = now()
                 FROM old WHERE t.tenant_id = $1 AND t.id = old.id AND old.value IS DISTINCT FROM $3
                 RETURNING t.id, old.value
               ), logged AS (
                 INSERT INTO change_log (tenant_id, record_type, record_id, operation, actor_id, request_id, changes, origin,
                                         rule_id)
                 SELECT $1, $4, c.id, 'update', $5, $6,
                        jsonb_build_array(jsonb_build_object('field', $7::text, 'old', c.value, 'new', $3)), $8, $9
                 FROM changed c
                 RETURNING sequence
               )
               SELECT array_agg(sequence) FROM logged$q$, v_table, v_action->>'column')
            INTO v_made
            USING v_rule.tenant_id, v_ids, v_action->'value', v_rule.record_type, v_actor, v_request, v_action->>'field',
                  v_origin, v_rule.id, nullif(v_action->'from', 'null'::jsonb);
          IF v_made IS NOT NULL THEN PERFORM set_config('crm.rules_touched', 'on', true); END IF;
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

CREATE TRIGGER change_log_runs_rules AFTER INSERT ON change_log
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_run_trigger_rules();
