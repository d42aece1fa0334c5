-- gridgov schema, version 1. Times are naive local time of the district, TIMESTAMP (microseconds).
-- Geometries are EPSG:4326 (lon/lat); areas are computed in the district's metric CRS (meta.metric_crs).

CREATE TABLE meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE TABLE admin_area (
    code VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    name_en VARCHAR,
    level VARCHAR NOT NULL CHECK (level IN ('district', 'street', 'community')),
    parent_code VARCHAR,
    area_m2 DOUBLE NOT NULL,
    geom GEOMETRY NOT NULL
);

CREATE TABLE unit (
    unit_id INTEGER PRIMARY KEY,
    community_code VARCHAR NOT NULL,
    land_use VARCHAR NOT NULL DEFAULT 'residential',
    area_m2 DOUBLE NOT NULL,
    households INTEGER NOT NULL DEFAULT 0,
    population INTEGER NOT NULL DEFAULT 0,
    geom GEOMETRY NOT NULL
);

CREATE TABLE layout (
    layout_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    status VARCHAR NOT NULL CHECK (status IN ('current', 'scenario', 'archived')),
    params JSON,
    created_at TIMESTAMP NOT NULL,
    parent_id INTEGER
);

CREATE TABLE layout_unit (
    layout_id INTEGER NOT NULL,
    unit_id INTEGER NOT NULL,
    grid_code VARCHAR NOT NULL,
    PRIMARY KEY (layout_id, unit_id)
);

CREATE TABLE layout_grid (
    layout_id INTEGER NOT NULL,
    grid_code VARCHAR NOT NULL,
    community_code VARCHAR NOT NULL,
    street_code VARCHAR,
    n_units INTEGER NOT NULL,
    area_m2 DOUBLE NOT NULL,
    households INTEGER NOT NULL,
    population INTEGER NOT NULL,
    geom GEOMETRY NOT NULL,
    PRIMARY KEY (layout_id, grid_code)
);

CREATE TABLE worker (
    worker_id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    phone VARCHAR,
    hours_per_week DOUBLE NOT NULL CHECK (hours_per_week > 0),
    base_community VARCHAR,
    active BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE assignment (
    layout_id INTEGER NOT NULL,
    grid_code VARCHAR NOT NULL,
    worker_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL CHECK (role IN ('primary', 'backup')),
    manual BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (layout_id, grid_code, worker_id)
);

CREATE TABLE category (
    code VARCHAR PRIMARY KEY,
    name_zh VARCHAR NOT NULL,
    name_en VARCHAR NOT NULL,
    class VARCHAR NOT NULL CHECK (class IN ('component', 'event')),
    sla_hours DOUBLE NOT NULL,
    handling_minutes DOUBLE NOT NULL
);

CREATE TABLE import_batch (
    batch_id INTEGER PRIMARY KEY,
    file VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL UNIQUE,
    source VARCHAR,
    params JSON,
    rows_in BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    imported_at TIMESTAMP NOT NULL
);

CREATE TABLE reject (
    batch_id INTEGER NOT NULL,
    row_no BIGINT NOT NULL,
    field VARCHAR,
    reason VARCHAR NOT NULL,
    raw JSON
);

-- incident_id is our identity; (source, external_id) is the caller's and is deduplicated on import.
-- The grid of an incident under any layout is a join through layout_unit on unit_id.
CREATE TABLE incident (
    incident_id BIGINT PRIMARY KEY,
    source VARCHAR NOT NULL,
    external_id VARCHAR,
    category_code VARCHAR NOT NULL,
    reported_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('reported', 'registered', 'dispatched', 'handled', 'closed', 'cancelled')),
    dispatched_at TIMESTAMP,
    handled_at TIMESTAMP,
    closed_at TIMESTAMP,
    lon DOUBLE NOT NULL,
    lat DOUBLE NOT NULL,
    unit_id INTEGER NOT NULL,
    address VARCHAR,
    description VARCHAR,
    reporter_name VARCHAR,
    reporter_phone VARCHAR,
    batch_id INTEGER
);

CREATE TABLE incident_event (
    incident_id BIGINT NOT NULL,
    event_at TIMESTAMP NOT NULL,
    status VARCHAR NOT NULL,
    actor VARCHAR,
    note VARCHAR
);
