-- crm_match_candidates (0011, 0012, 0014) as static SQL, and names compared with their neighbours.
--
-- Planning: the function built its UNION as text and ran it with EXECUTE, so every call planned it
-- afresh: 4-5 ms of a ~10 ms FindDuplicates in a 1,000,000-lead tenant, as much as the lookups
-- themselves. Now each table has one static query whose lookups are switched on and off by one-time
-- filters on the arguments (`p_x IS NOT NULL`: "One-Time Filter" in EXPLAIN, and a switched-off lookup
-- is never executed), planned once per connection. plan_cache_mode = force_generic_plan keeps the plan
-- cache from re-planning for the arguments' values, which buys nothing when every lookup has exactly
-- one index to use. The name lookups are plain SQL functions, one per table and key, which the planner
-- inlines into the caller's plan (they are neither STRICT nor SECURITY DEFINER, so they can be).
--
-- Names: 0014 kept the first 50 rows of a block that were similar enough, in whatever order the index
-- held them. In the bench tenant a company block ("works s…", "w… textiles") holds ~1,000 names, of
-- which ~5% pass `%`, so a lookup computed ~1,000 similarities (~2 ms per block), and for a common name
-- the 50 it kept were arbitrary: a record with exactly the same name could be left out behind 50
-- merely similar ones. The block indexes now carry the key as a key column (not INCLUDE), so within a
-- block names are in order and a lookup can start at the name itself:
--   - the records with exactly this key (50 at most),
--   - in each of the name's two blocks, the 30 names just after it and the 30 just before it (the ones
--     sharing the longest prefix with it: a typo late in the name sorts next to the original; a typo
--     in the first word keeps the other block, initial + last word, in which the names sort by their
--     first word),
--   - in each block of its other probes (first and last word swapped, either word alone), 30 names;
-- of the neighbours, the ones at least pg_trgm.similarity_threshold similar. At most 180 similarity
-- computations per name, wherever the name falls, and the closest names first.
-- Missed, besides 0014's misses: a similar name more than 30 names away from this one in both of its
-- blocks (a block crowded with names sharing its first word and the next word's initial).

DROP INDEX leads_person_block_1, leads_person_block_2, leads_company_block_1, leads_company_block_2,
  contacts_person_block_1, contacts_person_block_2, accounts_company_block_1, accounts_company_block_2;

CREATE INDEX leads_person_block_1 ON leads (tenant_id, crm_name_block(person_key, 1), person_key) INCLUDE (id)
  WHERE person_key IS NOT NULL;
CREATE INDEX leads_person_block_2 ON leads (tenant_id, crm_name_block(person_key, 2), person_key) INCLUDE (id)
  WHERE person_key IS NOT NULL;
CREATE INDEX leads_company_block_1 ON leads (tenant_id, crm_name_block(company_key, 1), company_key) INCLUDE (id)
  WHERE company_key IS NOT NULL;
CREATE INDEX leads_company_block_2 ON leads (tenant_id, crm_name_block(company_key, 2), company_key) INCLUDE (id)
  WHERE company_key IS NOT NULL;
CREATE INDEX contacts_person_block_1 ON contacts (tenant_id, crm_name_block(person_key, 1), person_key) INCLUDE (id)
  WHERE person_key IS NOT NULL;
CREATE INDEX contacts_person_block_2 ON contacts (tenant_id, crm_name_block(person_key, 2), person_key) INCLUDE (id)
  WHERE person_key IS NOT NULL;
CREATE INDEX accounts_company_block_1 ON accounts (tenant_id, crm_name_block(company_key, 1), company_key) INCLUDE (id)
  WHERE company_key IS NOT NULL;
CREATE INDEX accounts_company_block_2 ON accounts (tenant_id, crm_name_block(company_key, 2), company_key) INCLUDE (id)
  WHERE company_key IS NOT NULL;

CREATE FUNCTION crm_name_matches_leads_person(t uuid, p text) RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  (SELECT id FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(p, 1) AND person_key = p LIMIT 50)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(p, 1) AND person_key > p ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(p, 1) AND person_key < p ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = ANY ((crm_name_probes(p, 1))[2:]) LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(p, 2) AND person_key > p ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(p, 2) AND person_key < p ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = ANY ((crm_name_probes(p, 2))[2:]) LIMIT 30) AS near WHERE person_key % p)
$$;
REVOKE ALL ON FUNCTION crm_name_matches_leads_person(uuid, text) FROM PUBLIC;

CREATE FUNCTION crm_name_matches_leads_company(t uuid, p text) RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  (SELECT id FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(p, 1) AND company_key = p LIMIT 50)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(p, 1) AND company_key > p ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(p, 1) AND company_key < p ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = ANY ((crm_name_probes(p, 1))[2:]) LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(p, 2) AND company_key > p ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(p, 2) AND company_key < p ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = ANY ((crm_name_probes(p, 2))[2:]) LIMIT 30) AS near WHERE company_key % p)
$$;
REVOKE ALL ON FUNCTION crm_name_matches_leads_company(uuid, text) FROM PUBLIC;

CREATE FUNCTION crm_name_matches_contacts_person(t uuid, p text) RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  (SELECT id FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(p, 1) AND person_key = p LIMIT 50)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(p, 1) AND person_key > p ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(p, 1) AND person_key < p ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = ANY ((crm_name_probes(p, 1))[2:]) LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(p, 2) AND person_key > p ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(p, 2) AND person_key < p ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = ANY ((crm_name_probes(p, 2))[2:]) LIMIT 30) AS near WHERE person_key % p)
$$;
REVOKE ALL ON FUNCTION crm_name_matches_contacts_person(uuid, text) FROM PUBLIC;

CREATE FUNCTION crm_name_matches_accounts_company(t uuid, p text) RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  (SELECT id FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(p, 1) AND company_key = p LIMIT 50)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(p, 1) AND company_key > p ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(p, 1) AND company_key < p ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = ANY ((crm_name_probes(p, 1))[2:]) LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(p, 2) AND company_key > p ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(p, 2) AND company_key < p ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = ANY ((crm_name_probes(p, 2))[2:]) LIMIT 30) AS near WHERE company_key % p)
$$;
REVOKE ALL ON FUNCTION crm_name_matches_accounts_company(uuid, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION crm_match_candidates(
  p_table text, p_email_column text, p_emails text[], p_phones text[], p_domain text, p_company text, p_person text,
  p_registration text)
RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  t constant uuid := crm_current_tenant();
  by_email_keys constant boolean := p_email_column = 'email_keys' AND cardinality(p_emails) > 0;
  by_email_addresses constant boolean := p_email_column = 'email_addresses' AND cardinality(p_emails) > 0;
  by_phone constant boolean := cardinality(p_phones) > 0;
BEGIN
  IF p_email_column IS NOT NULL AND p_email_column NOT IN ('email_keys', 'email_addresses') THEN
    RAISE EXCEPTION 'no match lookup for %.%', p_table, p_email_column;
  END IF;
  CASE p_table
  WHEN 'leads' THEN
    RETURN QUERY
      (SELECT id FROM leads WHERE by_email_keys AND tenant_id = t AND email_keys && p_emails LIMIT 200)
      UNION (SELECT id FROM leads WHERE by_email_addresses AND tenant_id = t AND email_addresses && p_emails LIMIT 200)
      UNION (SELECT id FROM leads WHERE by_phone AND tenant_id = t AND phone_numbers && p_phones LIMIT 200)
      UNION (SELECT id FROM leads WHERE p_domain IS NOT NULL AND tenant_id = t AND domain = p_domain LIMIT 200)
      UNION (SELECT id FROM leads WHERE p_registration IS NOT NULL AND tenant_id = t AND registration_id = p_registration
        LIMIT 200)
      UNION SELECT * FROM crm_name_matches_leads_company(t, p_company)
      UNION SELECT * FROM crm_name_matches_leads_person(t, p_person);
  WHEN 'contacts' THEN
    RETURN QUERY
      (SELECT id FROM contacts WHERE by_email_keys AND tenant_id = t AND email_keys && p_emails LIMIT 200)
      UNION (SELECT id FROM contacts WHERE by_email_addresses AND tenant_id = t AND email_addresses && p_emails LIMIT 200)
      UNION (SELECT id FROM contacts WHERE by_phone AND tenant_id = t AND phone_numbers && p_phones LIMIT 200)
      UNION SELECT * FROM crm_name_matches_contacts_person(t, p_person);
  WHEN 'accounts' THEN
    RETURN QUERY
      (SELECT id FROM accounts WHERE by_phone AND tenant_id = t AND phone = ANY (p_phones) LIMIT 200)
      UNION (SELECT id FROM accounts WHERE p_domain IS NOT NULL AND tenant_id = t AND domain = p_domain LIMIT 200)
      UNION (SELECT id FROM accounts WHERE p_registration IS NOT NULL AND tenant_id = t
        AND registration_id = p_registration LIMIT 200)
      UNION SELECT * FROM crm_name_matches_accounts_company(t, p_company);
  ELSE
    RAISE EXCEPTION 'no match lookup for %', p_table;
  END CASE;
END
$$;
