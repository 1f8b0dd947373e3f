-- Company names go back to 0015's lookup: the neighbour scans around the swapped form (0017) are for
-- names written family name first, which people's names are and company names rarely are ("Johnson
-- Hiroshi" for "Hiroshi Johnson"; not "Textiles Works" for "Works Textiles"). For companies they cost
-- the four scans' similarity computations on every FindDuplicates call (one caller's p99 in the 1M-lead
-- bench tenant 9.0 → 10.6 ms with them) for matches the swapped blocks' first 30 names still catch
-- when the block is not crowded.

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

