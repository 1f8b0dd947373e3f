-- Similar names are looked up by block, not by trigram over the whole tenant.
--
-- `company_key % $` and `person_key % $` on the trigram GIN indexes had to recheck every row sharing
-- enough trigrams with the name: in a 1,000,000-lead tenant `person_key % 'james smith'` rechecked
-- ~12,000 rows in ~3,000 heap pages (26-130 ms), far from a 10 ms FindDuplicates. And most of what it
-- found were other people: at similarity 0.5 "wei martin" matches "na martin" and "christopher russo"
-- matches "christopher yang".
--
-- A name's blocks are its first word with the initial of its second word, and the initial of its
-- first word with its last word ("john smith" → "john s", "j smith"; "harbor freight logistics" →
-- "harbor f", "h logistics"): two records of one person or company keep at least one block through a
-- typo or another spelling in one of the words ("jon smith", "john smyth", "j. smith", "john f.
-- smith"), or a word added at the end ("harbor freight"). Lookups probe the blocks of the name, of the
-- name with its first and last word swapped ("smith john", family name first), and of its first and
-- last word alone ("navy labs" finds "navy"), then keep the rows at least as similar as
-- pg_trgm.similarity_threshold (set by the caller). Each block index carries the key and the id, so
-- the similarity is computed on index tuples: an index-only scan of one block, no heap page read. A
-- name lookup keeps 50 rows per block (exact keys keep 200): a common name ("joao muller" ~130 times
-- in a 1M-lead tenant) otherwise brought ~550 candidates, each then read and scored by the caller.
-- Missed: names that differ in both blocks — rarely similar ≥ 0.5 anyway, except an initial whose
-- surname is also misspelled ("k. andersson" for "karen anderson") and a one-word name looking for
-- longer ones ("navy" does not find "navy labs"; the other way round it does).

CREATE FUNCTION crm_name_block(key text, side int) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE side
  WHEN 1 THEN split_part(key, ' ', 1) || ' ' || left(split_part(key, ' ', 2), 1)
  ELSE left(split_part(key, ' ', 1), 1) || ' ' || split_part(key, ' ', -1)
END;

CREATE FUNCTION crm_name_probes(key text, side int) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY[
  crm_name_block(key, side),
  crm_name_block(split_part(key, ' ', -1) || ' ' || split_part(key, ' ', 1), side),
  crm_name_block(split_part(key, ' ', 1), side),
  crm_name_block(split_part(key, ' ', -1), side)];

DROP INDEX leads_person_key_trgm;
DROP INDEX leads_company_key_trgm;
DROP INDEX contacts_person_key_trgm;
DROP INDEX accounts_company_key_trgm;

CREATE INDEX leads_person_block_1 ON leads (tenant_id, crm_name_block(person_key, 1)) INCLUDE (person_key, id)
  WHERE person_key IS NOT NULL;
CREATE INDEX leads_person_block_2 ON leads (tenant_id, crm_name_block(person_key, 2)) INCLUDE (person_key, id)
  WHERE person_key IS NOT NULL;
CREATE INDEX leads_company_block_1 ON leads (tenant_id, crm_name_block(company_key, 1)) INCLUDE (company_key, id)
  WHERE company_key IS NOT NULL;
CREATE INDEX leads_company_block_2 ON leads (tenant_id, crm_name_block(company_key, 2)) INCLUDE (company_key, id)
  WHERE company_key IS NOT NULL;
CREATE INDEX contacts_person_block_1 ON contacts (tenant_id, crm_name_block(person_key, 1)) INCLUDE (person_key, id)
  WHERE person_key IS NOT NULL;
CREATE INDEX contacts_person_block_2 ON contacts (tenant_id, crm_name_block(person_key, 2)) INCLUDE (person_key, id)
  WHERE person_key IS NOT NULL;
CREATE INDEX accounts_company_block_1 ON accounts (tenant_id, crm_name_block(company_key, 1)) INCLUDE (company_key, id)
  WHERE company_key IS NOT NULL;
CREATE INDEX accounts_company_block_2 ON accounts (tenant_id, crm_name_block(company_key, 2)) INCLUDE (company_key, id)
  WHERE company_key IS NOT NULL;

-- crm_match_candidates (0011, 0012) with the name lookups by block; the other keys as before.
CREATE OR REPLACE FUNCTION crm_match_candidates(
  p_table text, p_email_column text, p_emails text[], p_phones text[], p_domain text, p_company text, p_person text,
  p_registration text)
RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  parts text[] := '{}';
  name_lookup constant text :=
    '(SELECT id FROM %1$I WHERE tenant_id = $1 AND %2$I IS NOT NULL AND crm_name_block(%2$I, %3$s) = ANY(crm_name_probes(%4$s, %3$s))'
    ' AND %2$I %% %4$s LIMIT 50)';
BEGIN
  IF p_table NOT IN ('leads', 'contacts', 'accounts') THEN
    RAISE EXCEPTION 'no match lookup for %', p_table;
  END IF;
  IF p_email_column IS NOT NULL AND p_email_column NOT IN ('email_keys', 'email_addresses') THEN
    RAISE EXCEPTION 'no match lookup for %.%', p_table, p_email_column;
  END IF;
  IF p_email_column IS NOT NULL AND p_table <> 'accounts' AND cardinality(p_emails) > 0 THEN
    parts := parts || format('(SELECT id FROM %I WHERE tenant_id = $1 AND %I && $2 LIMIT 200)', p_table, p_email_column);
  END IF;
  IF cardinality(p_phones) > 0 THEN
    parts := parts || CASE WHEN p_table = 'accounts'
      THEN '(SELECT id FROM accounts WHERE tenant_id = $1 AND phone = ANY($3) LIMIT 200)'
      ELSE format('(SELECT id FROM %I WHERE tenant_id = $1 AND phone_numbers && $3 LIMIT 200)', p_table) END;
  END IF;
  IF p_domain IS NOT NULL AND p_table <> 'contacts' THEN
    parts := parts || format('(SELECT id FROM %I WHERE tenant_id = $1 AND domain = $4 LIMIT 200)', p_table);
  END IF;
  IF p_company IS NOT NULL AND p_table <> 'contacts' THEN
    parts := parts || format(name_lookup, p_table, 'company_key', 1, '$5') || format(name_lookup, p_table, 'company_key', 2, '$5');
  END IF;
  IF p_person IS NOT NULL AND p_table <> 'accounts' THEN
    parts := parts || format(name_lookup, p_table, 'person_key', 1, '$6') || format(name_lookup, p_table, 'person_key', 2, '$6');
  END IF;
  IF p_registration IS NOT NULL AND p_table <> 'contacts' THEN
    parts := parts || format('(SELECT id FROM %I WHERE tenant_id = $1 AND registration_id = $7 LIMIT 200)', p_table);
  END IF;
  IF cardinality(parts) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE array_to_string(parts, ' UNION ')
    USING crm_current_tenant(), p_emails, p_phones, p_domain, p_company, p_person, p_registration;
END
$$;
