-- Trigger rules: the match query evaluates each entry's predicates once, whatever plan the planner
-- picks. 0045 wrapped the per-entry part in a subquery with OFFSET 0 so the rules would not be joined
-- first; in an import on a fresh database the planner still put trigger_rules outside a nested loop
-- and rescanned that subquery once per rule (EXPLAIN ANALYZE: loops=10, 28 ms for a 200-row
-- statement instead of ~3). A MATERIALIZED CTE is evaluated once. The query now lives in its own
-- function, so the next change to it replaces that function alone.

-- The match query of a round: every rule of the type with the records it matches, in the order the
-- rules run; `p_table` the type's table, `p_entries` the round's entries (SQL), `p_matchers` the
-- VALUES list of (rule, predicate). Parameters: $1 the record type, $2 the rules already run per
-- record, $3 and $4 as crm_rule_round_entries reads them.
CREATE FUNCTION crm_rule_match_sql(p_table text, p_entries text, p_matchers text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT format(
    $q$WITH hits AS MATERIALIZED (
         SELECT n.tenant_id, n.record_id, n.sequence, n.actor_id, n.request_id, n.origin, m.rule_id
         FROM %2$s n
         JOIN %1$I t ON t.tenant_id = n.tenant_id AND t.id = n.record_id
         CROSS JOIN LATERAL (VALUES %3$s) AS m(rule_id, holds)
         WHERE n.record_type = $1 AND m.holds
       )
       SELECT r.id, r.tenant_id, r.record_type, r.actions, array_agg(DISTINCT h.record_id) AS ids,
              array_agg(h.sequence) AS entries, min(h.actor_id::text)::uuid AS actor, min(h.request_id) AS request,
              min(h.origin) AS origin
       FROM hits h
       JOIN trigger_rules r ON r.tenant_id = h.tenant_id AND r.id = h.rule_id
       WHERE NOT coalesce($2 -> r.id::text, '[]'::jsonb) ? h.record_id::text
       GROUP BY r.id, r.tenant_id, r.record_type, r.actions, r.position
       ORDER BY r.position, r.id$q$,
    p_table, p_entries, p_matchers)
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
  v_entries constant text := crm_rule_round_entries();
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
      -- Every rule with the records it matches, in the order the rules run.
      FOR v_rule IN EXECUTE crm_rule_match_sql(
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
