-- gridgov schema, version 2: unit adjacency computed once and stored with the units it describes.
-- Node measures and shared lengths are in the CRS named by meta.graph_crs (metres).

CREATE TABLE unit_node (
    unit_id INTEGER PRIMARY KEY,
    x DOUBLE NOT NULL,
    y DOUBLE NOT NULL,
    area_m2 DOUBLE NOT NULL,
    perimeter_m DOUBLE NOT NULL
);

CREATE TABLE unit_adjacency (
    unit_a INTEGER NOT NULL,
    unit_b INTEGER NOT NULL,
    shared_m DOUBLE NOT NULL,
    PRIMARY KEY (unit_a, unit_b)
);
