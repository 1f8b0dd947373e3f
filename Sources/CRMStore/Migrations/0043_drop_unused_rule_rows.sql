-- crm_rule_rows (0040, planning tweak in 0041) served the static match query that 0042 withdrew; the
-- engine in force reads records' rows itself. Dropped so the schema shows only what runs.
DROP FUNCTION crm_rule_rows(uuid[], text, uuid[]);
