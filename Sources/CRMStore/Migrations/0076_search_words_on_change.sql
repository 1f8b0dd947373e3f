-- search_words (0071) on updates: the statement-level UPDATE triggers captured every updated row's
-- old and new version in transition tables and joined them, for every UPDATE of the five searchable
-- tables — the SLA job's summary updates of a thousand tickets, pool recycling, mass assignment —
-- although an update rarely changes a record's search text. A row-level trigger whose WHEN compares
-- the search text is not even queued for those rows; only a changed text adds its new words. Inserts
-- keep the statement-level trigger (an import batch adds its words in one statement).
CREATE FUNCTION crm_search_words_collect_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  INSERT INTO search_words (tenant_id, word)
  SELECT NEW.tenant_id, found.word FROM crm_search_words_of(NEW.search_text) AS found (word)
  WHERE NOT EXISTS (SELECT 1 FROM search_words known WHERE known.tenant_id = NEW.tenant_id AND known.word = found.word);
  RETURN NULL;
END
$$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['leads', 'contacts', 'accounts', 'opportunities', 'tickets'] LOOP
    EXECUTE format('DROP TRIGGER %I ON %I', t || '_search_words_update', t);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I FOR EACH ROW '
      'WHEN (OLD.search_text IS DISTINCT FROM NEW.search_text) EXECUTE FUNCTION crm_search_words_collect_row()',
      t || '_search_words_update', t);
  END LOOP;
END
$$;
