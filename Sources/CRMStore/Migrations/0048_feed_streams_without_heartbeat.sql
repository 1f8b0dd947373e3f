-- The change feed's sequencer streams from its slot (docs/changes.md): the server's keepalives tell it
-- how far WAL has been decoded, so an idle feed confirms past other tables' WAL without writing a
-- heartbeat of its own. The heartbeat table leaves the publication and the database.
ALTER PUBLICATION crm_change_feed DROP TABLE change_feed_heartbeat;
DROP TABLE change_feed_heartbeat;
