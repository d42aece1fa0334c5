-- gridgov schema, version 5: clients of the intake API (hotline systems, apps), each with its own key.

CREATE TABLE api_client (
    client_id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    key_sha256 VARCHAR NOT NULL,   -- SHA-256 of the key; the key itself is shown once, never stored
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL
);
