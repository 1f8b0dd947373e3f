-- The GIN indexes duplicate detection reads on every create, capture, import batch and FindDuplicates
-- stop deferring their inserts. With fastupdate on (the default) new entries wait in a pending list
-- of up to 4 MB that every search scans in full: during an import each exact-key probe read ~170
-- pages (2 ms) and the import ran at ~470 rows/s, and a lookup's latency depended on how recently the
-- list was flushed. Inserting straight into the index costs writes a little; lookups stay flat.
-- (Tag indexes keep fastupdate: only list filters read them.)

ALTER INDEX leads_by_email SET (fastupdate = off);
ALTER INDEX leads_by_email_key SET (fastupdate = off);
ALTER INDEX leads_by_phone SET (fastupdate = off);
ALTER INDEX leads_company_key_trgm SET (fastupdate = off);
ALTER INDEX leads_person_key_trgm SET (fastupdate = off);
ALTER INDEX contacts_by_email SET (fastupdate = off);
ALTER INDEX contacts_by_email_key SET (fastupdate = off);
ALTER INDEX contacts_by_phone SET (fastupdate = off);
ALTER INDEX contacts_person_key_trgm SET (fastupdate = off);
ALTER INDEX accounts_company_key_trgm SET (fastupdate = off);

-- Move what is pending now into the indexes proper.
SELECT gin_clean_pending_list(index::regclass)
FROM unnest(ARRAY[
  'leads_by_email', 'leads_by_email_key', 'leads_by_phone', 'leads_company_key_trgm', 'leads_person_key_trgm',
  'contacts_by_email', 'contacts_by_email_key', 'contacts_by_phone', 'contacts_person_key_trgm',
  'accounts_company_key_trgm']) AS index;
