-- gridgov schema, version 4: dashboard users with a role, and who did what to a case.

CREATE TABLE app_user (
    username VARCHAR PRIMARY KEY,
    password_hash VARCHAR NOT NULL,
    role VARCHAR NOT NULL CHECK (role IN ('manager', 'planner', 'worker')),
    street_code VARCHAR,        -- a street manager's street; NULL: the whole district
    worker_id VARCHAR,          -- the roster entry of a grid worker
    demo_password BOOLEAN NOT NULL DEFAULT FALSE,  -- still the published demo password
    created_at TIMESTAMP NOT NULL
);
