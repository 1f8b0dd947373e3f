-- Search across records (docs/search.md): one folded text per record — names, company, emails, phone
-- digits, domains, subjects — in a trigram index per table, so a substring ("销售易" in
-- "北京销售易科技有限公司"), an accent- or case-insensitive match ("muller" for "Müller") and a small
-- typo (word similarity) all use the index. Trigrams see CJK characters because the cluster's
-- LC_CTYPE (C.UTF-8, set by initdb here and by crmd's embedded cluster) classifies them as letters.

CREATE EXTENSION IF NOT EXISTS unaccent;

-- Lower case without accents. IMMUTABLE for the indexes: the dictionary is named, not looked up
-- through search_path.
CREATE FUNCTION crm_search_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, coalesce($1, ''))) $$;

-- A list's elements joined by spaces (array_to_string is only STABLE in general, not for text[]).
CREATE FUNCTION crm_search_join(text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(array_to_string($1, ' '), '') $$;

-- Phone numbers as their digits, so "+1 (415) 555-0100" is found by "4155550100" or "555 0100".
CREATE FUNCTION crm_search_digits(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT regexp_replace(coalesce($1, ''), '[^0-9 ]', '', 'g') $$;

CREATE FUNCTION crm_lead_search(first_name text, last_name text, company text, emails text[], phones text[], domain text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT crm_search_fold(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(company, '')) || ' '
    || lower(crm_search_join(emails)) || ' ' || crm_search_digits(crm_search_join(phones)) || ' ' || lower(coalesce(domain, ''))
$$;

CREATE FUNCTION crm_contact_search(first_name text, last_name text, emails text[], phones text[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT crm_search_fold(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) || ' '
    || lower(crm_search_join(emails)) || ' ' || crm_search_digits(crm_search_join(phones))
$$;

CREATE FUNCTION crm_account_search(name text, domain text, phone text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT crm_search_fold(name) || ' ' || lower(coalesce(domain, '')) || ' ' || crm_search_digits(phone) $$;

CREATE FUNCTION crm_ticket_search(number bigint, subject text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '#' || number::text || ' ' || crm_search_fold(subject) $$;

CREATE INDEX leads_search ON leads
  USING gin (tenant_id, crm_lead_search(first_name, last_name, company, email_addresses, phone_numbers, domain) gin_trgm_ops)
  WHERE archived_at IS NULL;
CREATE INDEX contacts_search ON contacts
  USING gin (tenant_id, crm_contact_search(first_name, last_name, email_addresses, phone_numbers) gin_trgm_ops)
  WHERE archived_at IS NULL;
CREATE INDEX accounts_search ON accounts USING gin (tenant_id, crm_account_search(name, domain, phone) gin_trgm_ops)
  WHERE archived_at IS NULL;
CREATE INDEX opportunities_search ON opportunities USING gin (tenant_id, crm_search_fold(name) gin_trgm_ops)
  WHERE archived_at IS NULL;
CREATE INDEX tickets_search ON tickets USING gin (tenant_id, crm_ticket_search(number, subject) gin_trgm_ops)
  WHERE archived_at IS NULL;
