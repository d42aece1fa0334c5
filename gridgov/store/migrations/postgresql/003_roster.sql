-- PostgreSQL only, after 003_roster.sql.
CREATE INDEX roster_reject_batch ON roster_reject (batch_id, row_no);
