-- gridgov schema, version 6: the open cases apart from the rest.
-- open_case holds one row per incident whose status is open (gridgov.incidents.OPEN_STATUSES), with the columns the
-- open and overdue counts need. Every write of incidents keeps it exact in the same transaction (gridgov/store:
-- insert_incidents, publish_import, record_incident_event), so the dashboard counts open cases from a few hundred
-- thousand rows instead of reading the status of every case ever reported.
-- No primary key: ids come from incident (unique there) and a row is added only when its case is written or turns
-- open, removed when it stops being open; an ART index would double the cost of adding an import's open cases and
-- does not make the one-row delete faster (zone maps on incident_id find it).

CREATE TABLE open_case (
    incident_id BIGINT NOT NULL,
    unit_id INTEGER NOT NULL,
    category_code VARCHAR NOT NULL,
    reported_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL
);

INSERT INTO open_case
SELECT incident_id, unit_id, category_code, reported_at, due_at
FROM incident
WHERE status IN ('reported', 'registered', 'dispatched', 'handled')
ORDER BY incident_id;
