-- PostgreSQL only, after 006_open_case.sql: a case leaves open_case by its id; the dashboard counts per unit.
CREATE UNIQUE INDEX open_case_incident ON open_case (incident_id);
CREATE INDEX open_case_unit ON open_case (unit_id);
