-- gridgov schema, version 3: roster imports are recorded like incident imports, with their rejected rows.

CREATE TABLE roster_batch (
    batch_id INTEGER PRIMARY KEY,
    file VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL UNIQUE,
    rows_in BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    imported_at TIMESTAMP NOT NULL
);

CREATE TABLE roster_reject (
    batch_id INTEGER NOT NULL,
    row_no BIGINT NOT NULL,
    field VARCHAR,
    reason VARCHAR NOT NULL,
    message VARCHAR,
    raw JSON
);
