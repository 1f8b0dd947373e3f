-- Merging duplicates: a merged record is archived with a pointer to the record it was merged into,
-- and the change log gets a 'merge' operation for the survivor's entry.

ALTER TABLE leads ADD COLUMN merged_into uuid;
ALTER TABLE contacts ADD COLUMN merged_into uuid;
ALTER TABLE accounts ADD COLUMN merged_into uuid;

ALTER TABLE change_log DROP CONSTRAINT change_log_operation_check;
ALTER TABLE change_log ADD CONSTRAINT change_log_operation_check
  CHECK (operation IN ('create', 'update', 'archive', 'restore', 'merge'));

-- A merged lead's or contact's captures are re-pointed to the survivor, so a replayed capture names it.
GRANT UPDATE ON captures TO crm_app;
