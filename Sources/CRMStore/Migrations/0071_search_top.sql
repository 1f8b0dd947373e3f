-- Search ranks inside the index read and stops at a page (docs/search.md, BENCHMARKS.md).
--
-- crm_search_matches (0068) returned every match — 20,000 rows for a common surname over a million
-- contacts — and the search joined each back to its row and scored it before the page was known.
-- Worse, a set-returning function is estimated at 1,000 rows, so for any table the planner hashed or
-- merge-joined the matches against the whole tenant (a sequential scan of 100,000 leads for a full
-- name: 90 ms of a 110 ms search). crm_search_top scores the matches where it finds them (as the
-- owner, in crm_current_tenant() only) and returns one type's best `p_limit` after a keyset position;
-- the search joins those few back as crm_app under the caller's visibility and asks for more only
-- when visibility hid too many. ROWS 20 is what a page asks for, so the join is a loop of primary-key
-- probes.
--
-- Modes:
--   'substring' p_terms = [["text"]] (LIKE-escaped): rows holding the text; score 2 when the text
--               starts with it, 1.5 when a word does, 1 otherwise, plus 1 / (2 + length) (shorter first).
--   'words'     p_terms = [["jon", "john"], ["smith"]]: rows holding one of each group's words, in any
--               order (a typo's corrections, crm_search_corrections); score 0.99 × word similarity to
--               p_query, below 1.
--   'email'     p_query a whole address: leads and contacts that have it, exactly (the email_addresses
--               index, not the trigrams every address shares); score 3.
CREATE FUNCTION crm_search_top(
  p_table text, p_mode text, p_terms jsonb, p_query text, p_owners uuid[], p_pools uuid[], p_after_score float8,
  p_after_id uuid, p_limit integer)
RETURNS TABLE (match_id uuid, match_score float8, match_capped boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp ROWS 20
AS $$
DECLARE
  v_score text;
  v_where text;
  v_text text;
  v_tenant uuid := crm_current_tenant();
  v_in_tenant text;
  v_visible text := '';
  v_owner text := CASE WHEN p_table = 'tickets' THEN 'assignee_id' ELSE 'owner_id' END;
BEGIN
  IF v_tenant IS NULL THEN
    RETURN;
  END IF;
  IF p_table NOT IN ('leads', 'contacts', 'accounts', 'opportunities', 'tickets') THEN
    RAISE EXCEPTION 'crm_search_top: % is not searchable', p_table;
  END IF;
  v_in_tenant := format('tenant_id = %L::uuid', v_tenant);
  IF p_mode = 'substring' THEN
    v_text := p_terms -> 0 ->> 0;
    v_where := format('search_text LIKE %L', '%' || v_text || '%');
    v_score := format(
      'CASE WHEN search_text LIKE %L THEN 2.0::float8 WHEN search_text LIKE %L THEN 1.5::float8 ELSE 1.0::float8 END '
      '+ 1.0::float8 / (2 + length(search_text))', v_text || '%', '% ' || v_text || '%');
  ELSIF p_mode = 'words' THEN
    SELECT string_agg('(' || (
        SELECT string_agg(format('search_text LIKE %L', '%' || alternative || '%'), ' OR ')
        FROM jsonb_array_elements_text(grp) AS alternative) || ')', ' AND ')
    INTO v_where FROM jsonb_array_elements(p_terms) AS grp;
    v_score := format('(0.99 * word_similarity(%L, search_text))::float8', p_query);
  ELSIF p_mode = 'email' THEN
    IF p_table NOT IN ('leads', 'contacts') THEN
      RETURN;
    END IF;
    -- The tenant compared as text, so no index keys on it: the address's posting list (a row or two)
    -- drives the read, not the tenant's (0070).
    v_where := format('email_addresses @> ARRAY[%L]', p_query);
    v_in_tenant := format('tenant_id::text = %L', v_tenant);
    v_score := '3::float8';
  ELSE
    RAISE EXCEPTION 'crm_search_top: unknown mode %', p_mode;
  END IF;
  IF v_where IS NULL THEN
    RETURN;
  END IF;
  -- A caller who sees only some owners' records (p_owners, and pools for pooled types) samples only
  -- those: the conditions narrow, never widen — the search applies the caller's visibility again as
  -- crm_app on what this returns.
  IF p_owners IS NOT NULL THEN
    v_visible := CASE WHEN p_pools IS NOT NULL AND p_table IN ('leads', 'accounts')
      THEN format(' AND (%I = ANY(%L::uuid[]) OR pool_id = ANY(%L::uuid[]))', v_owner, p_owners, p_pools)
      ELSE format(' AND %I = ANY(%L::uuid[])', v_owner, p_owners) END;
  END IF;
  -- At most 1,000 matches of a type are ranked: a word held by 25,000 contacts took 45 ms to score in
  -- full, most of it reading each candidate's row (the search text is the table's last column), and
  -- no one pages through that many (Salesforce's SOSL stops at 2,000; 2,000 here left a common surname
  -- at p99 53 ms over three types, 1,000 at 42 ms — BENCHMARKS.md). They are the first the index hands
  -- back (bitmap order: the table's physical order, older records first); match_capped says the
  -- sample was full, so the search can tell its caller to narrow the query. The tenant is a literal
  -- (crm_current_tenant() in the statement ran for each candidate row: a third of a common surname's
  -- read) and scores are float8 (numeric arithmetic was another third).
  RETURN QUERY EXECUTE format(
    'SELECT id, score, capped FROM (SELECT id, %s AS score, count(*) OVER () >= 1000 AS capped '
    'FROM (SELECT id, search_text FROM %I WHERE %s AND archived_at IS NULL%s AND (%s) LIMIT 1000) sample) matched '
    'WHERE $1 IS NULL OR score < $1 OR (score = $1 AND id > $2) ORDER BY score DESC, id LIMIT $3',
    v_score, p_table, v_in_tenant, v_visible, v_where) USING p_after_score, p_after_id, p_limit;
END
$$;
REVOKE ALL ON FUNCTION crm_search_top(text, text, jsonb, text, uuid[], uuid[], float8, uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_search_top(text, text, jsonb, text, uuid[], uuid[], float8, uuid, integer) TO crm_app;

-- Replaced by crm_search_top's 'email' mode; no released search called it (4833965).
DROP FUNCTION crm_search_email_matches(text, text);

-- The words a tenant's records use (names, companies, subjects; no addresses, no numbers), for
-- correcting a typo word by word. A typo's near matches used to be pg_trgm word similarity over every
-- record's text, and a query with one right word ("rexee rodriguez") is similar to every record that
-- has it: 24,600 candidates over a million contacts, scored one by one (0.8 s). Correcting "rexee" to
-- the words the tenant has ("renee") and then reading the records that hold the corrected words is
-- two index reads. Words are only added (a word whose records are gone corrects to nothing found);
-- no unique key, so concurrent writers of the same new word never wait on each other (a rare
-- duplicate is harmless: readers take distinct words).
CREATE TABLE search_words (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  word text NOT NULL
);
CREATE INDEX search_words_by_tenant ON search_words (tenant_id, word);
CREATE INDEX search_words_trigrams ON search_words USING gin (word gin_trgm_ops);
ALTER TABLE search_words ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON search_words TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON search_words TO crm_app;

-- The words of a search text worth correcting to: three to sixty characters, no digit, no '@'.
CREATE FUNCTION crm_search_words_of(p_text text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT DISTINCT piece FROM regexp_split_to_table(p_text, '\s+') AS piece
  WHERE length(piece) BETWEEN 3 AND 60 AND piece !~ '[0-9@]'
$$;

-- Statement-level, so an import batch adds its new words in one statement.
CREATE FUNCTION crm_search_words_collect() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO search_words (tenant_id, word)
    SELECT DISTINCT changed.tenant_id, found.word
    FROM new_rows AS changed, crm_search_words_of(changed.search_text) AS found (word)
    WHERE NOT EXISTS (
      SELECT 1 FROM search_words known WHERE known.tenant_id = changed.tenant_id AND known.word = found.word);
  ELSE
    INSERT INTO search_words (tenant_id, word)
    SELECT DISTINCT changed.tenant_id, found.word
    FROM new_rows AS changed
    JOIN old_rows AS previous ON previous.tenant_id = changed.tenant_id AND previous.id = changed.id
    CROSS JOIN crm_search_words_of(changed.search_text) AS found (word)
    WHERE changed.search_text IS DISTINCT FROM previous.search_text
      AND NOT EXISTS (
        SELECT 1 FROM search_words known WHERE known.tenant_id = changed.tenant_id AND known.word = found.word);
  END IF;
  RETURN NULL;
END
$$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['leads', 'contacts', 'accounts', 'opportunities', 'tickets'] LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
      'FOR EACH STATEMENT EXECUTE FUNCTION crm_search_words_collect()', t || '_search_words_insert', t);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
      'FOR EACH STATEMENT EXECUTE FUNCTION crm_search_words_collect()', t || '_search_words_update', t);
    EXECUTE format('INSERT INTO search_words (tenant_id, word) '
      'SELECT DISTINCT r.tenant_id, found.word FROM %I r, crm_search_words_of(r.search_text) AS found (word) '
      'EXCEPT SELECT tenant_id, word FROM search_words', t);
  END LOOP;
END
$$;
ANALYZE search_words;

-- For each word of a query (folded): whether the tenant's records use it (or it is too short or has a
-- digit to correct: taken as it is), else up to ten of the tenant's words nearest to it — fewest edits
-- first (Levenshtein), then trigram similarity (at least 0.2: "jonh" and "john" share two of eight
-- trigrams); the search keeps those with the fewest edits counting a swap of neighbours as one
-- (SearchCorrection in CRMCore). Read as the owner: pg_trgm's `%` is not leakproof, so under
-- row-level security crm_app could not use the trigram index.
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;
CREATE FUNCTION crm_search_corrections(p_words text[])
RETURNS TABLE (word_position integer, known boolean, candidates text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET pg_trgm.similarity_threshold = 0.2
AS $$
DECLARE
  i integer;
  v_word text;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_words, 1), 0) LOOP
    v_word := p_words[i];
    word_position := i;
    known := length(v_word) < 3 OR length(v_word) > 60 OR v_word ~ '[0-9@]' OR EXISTS (
      SELECT 1 FROM search_words WHERE tenant_id = crm_current_tenant() AND word = v_word);
    candidates := NULL;
    IF NOT known THEN
      EXECUTE 'SELECT array_agg(word) FROM (SELECT word FROM (SELECT DISTINCT word FROM search_words '
        'WHERE tenant_id = crm_current_tenant() AND word % $1) near '
        'ORDER BY levenshtein(word, $1), similarity(word, $1) DESC, word LIMIT 10) best'
        INTO candidates USING v_word;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;
REVOKE ALL ON FUNCTION crm_search_corrections(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_search_corrections(text[]) TO crm_app;
