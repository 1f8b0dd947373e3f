-- A ticket's comments, Message-IDs, clock logs and summaries, and escalation firings are written only
-- by TicketStore, in the transaction that holds the ticket's row lock, and tickets are never deleted
-- (archive only): their foreign keys to tickets guarded nothing the code does not, and cost a
-- referential check per row. Worse, PostgreSQL caches each backend's plan for that check from the
-- first use: a crmd started on an empty tenant planned `SELECT 1 FROM tickets WHERE tenant_id = $1
-- AND id = $2 FOR KEY SHARE` as a scan of tickets_by_status filtered on id (equal costs on an empty
-- table) and kept it, so every comment scanned all of the tenant's tickets (AddComment fell to 51/s
-- at 40,000 tickets in scripts/bench-service.sh; auto_explain showed the plan).
ALTER TABLE ticket_comments DROP CONSTRAINT ticket_comments_tenant_id_ticket_id_fkey;
ALTER TABLE ticket_message_ids DROP CONSTRAINT ticket_message_ids_tenant_id_ticket_id_fkey;
ALTER TABLE sla_events DROP CONSTRAINT sla_events_tenant_id_ticket_id_fkey;
ALTER TABLE sla_instances DROP CONSTRAINT sla_instances_tenant_id_ticket_id_fkey;
ALTER TABLE escalation_firings DROP CONSTRAINT escalation_firings_tenant_id_ticket_id_fkey;
