-- Assignment rules route tickets too (criteria on channel, type, priority and tags; a user, or a
-- team rotation capped at each agent's open tickets).
ALTER TABLE assignment_rules DROP CONSTRAINT assignment_rules_record_type_check;
ALTER TABLE assignment_rules ADD CONSTRAINT assignment_rules_record_type_check
  CHECK (record_type IN ('lead', 'account', 'ticket'));
ALTER TABLE assignment_rules ADD CONSTRAINT assignment_rules_no_ticket_pools CHECK (record_type <> 'ticket' OR action <> 'pool');
