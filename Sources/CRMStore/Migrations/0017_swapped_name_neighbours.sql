-- Family name first, in a crowded block: the name lookups of 0015 compared a name with its neighbours
-- in its own two blocks, but the blocks of its swapped form ("johnson hiroshi" → "hiroshi johnson",
-- how the same person is often stored) only with the first 30 names of each block in index order. In a
-- 1,000,000-lead tenant the block "hiroshi j" holds hundreds of names, and "johnson hiroshi" found
-- none of the 122 records "hiroshi johnson" (found trying `crm duplicates find` as a user). The swapped
-- form now gets neighbour scans of its own — the 30 names from it onwards and the 30 before it, in
-- both of its blocks — and only the probes of either word alone keep the first 30 names of their blocks.

CREATE FUNCTION crm_name_swapped(key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN split_part(key, ' ', -1) || ' ' || split_part(key, ' ', 1);

CREATE OR REPLACE FUNCTION crm_name_matches_leads_person(t uuid, p text) RETURNS SETOF uuid
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
    AND crm_name_block(person_key, 2) = crm_name_block(p, 2) AND person_key > p ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(p, 2) AND person_key < p ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(crm_name_swapped(p), 1) AND person_key >= crm_name_swapped(p) ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(crm_name_swapped(p), 1) AND person_key < crm_name_swapped(p) ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(crm_name_swapped(p), 2) AND person_key >= crm_name_swapped(p) ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(crm_name_swapped(p), 2) AND person_key < crm_name_swapped(p) ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = ANY ((crm_name_probes(p, 1))[3:]) LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = ANY ((crm_name_probes(p, 2))[3:]) LIMIT 30) AS near WHERE person_key % p)
$$;

CREATE OR REPLACE FUNCTION crm_name_matches_leads_company(t uuid, p text) RETURNS SETOF uuid
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
    AND crm_name_block(company_key, 2) = crm_name_block(p, 2) AND company_key > p ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(p, 2) AND company_key < p ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(crm_name_swapped(p), 1) AND company_key >= crm_name_swapped(p) ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(crm_name_swapped(p), 1) AND company_key < crm_name_swapped(p) ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(crm_name_swapped(p), 2) AND company_key >= crm_name_swapped(p) ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(crm_name_swapped(p), 2) AND company_key < crm_name_swapped(p) ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = ANY ((crm_name_probes(p, 1))[3:]) LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM leads WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = ANY ((crm_name_probes(p, 2))[3:]) LIMIT 30) AS near WHERE company_key % p)
$$;

CREATE OR REPLACE FUNCTION crm_name_matches_contacts_person(t uuid, p text) RETURNS SETOF uuid
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
    AND crm_name_block(person_key, 2) = crm_name_block(p, 2) AND person_key > p ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(p, 2) AND person_key < p ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(crm_name_swapped(p), 1) AND person_key >= crm_name_swapped(p) ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = crm_name_block(crm_name_swapped(p), 1) AND person_key < crm_name_swapped(p) ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(crm_name_swapped(p), 2) AND person_key >= crm_name_swapped(p) ORDER BY person_key LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = crm_name_block(crm_name_swapped(p), 2) AND person_key < crm_name_swapped(p) ORDER BY person_key DESC LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 1) = ANY ((crm_name_probes(p, 1))[3:]) LIMIT 30) AS near WHERE person_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, person_key FROM contacts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(person_key, 2) = ANY ((crm_name_probes(p, 2))[3:]) LIMIT 30) AS near WHERE person_key % p)
$$;

CREATE OR REPLACE FUNCTION crm_name_matches_accounts_company(t uuid, p text) RETURNS SETOF uuid
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
    AND crm_name_block(company_key, 2) = crm_name_block(p, 2) AND company_key > p ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(p, 2) AND company_key < p ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(crm_name_swapped(p), 1) AND company_key >= crm_name_swapped(p) ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = crm_name_block(crm_name_swapped(p), 1) AND company_key < crm_name_swapped(p) ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(crm_name_swapped(p), 2) AND company_key >= crm_name_swapped(p) ORDER BY company_key LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = crm_name_block(crm_name_swapped(p), 2) AND company_key < crm_name_swapped(p) ORDER BY company_key DESC LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 1) = ANY ((crm_name_probes(p, 1))[3:]) LIMIT 30) AS near WHERE company_key % p)
  UNION ALL
  (SELECT id FROM (SELECT id, company_key FROM accounts WHERE p IS NOT NULL AND tenant_id = t
    AND crm_name_block(company_key, 2) = ANY ((crm_name_probes(p, 2))[3:]) LIMIT 30) AS near WHERE company_key % p)
$$;

