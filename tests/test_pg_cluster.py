"""The throwaway PostgreSQL cluster the backend tests run on (``tests/pg_cluster.py``)."""

from __future__ import annotations

import psycopg
import pytest

from tests.pg_cluster import ThrowawayCluster


def test_database_serves_postgis(pg_cluster: ThrowawayCluster) -> None:
    url = pg_cluster.create_database("cluster_postgis")
    assert url == f"postgresql://gridgov@127.0.0.1:{pg_cluster.port}/cluster_postgis"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE EXTENSION postgis")
        version = con.execute("SELECT postgis_version()").fetchone()
        assert version is not None and version[0].startswith("3.")
        assert con.execute("SHOW fsync").fetchone() == ("off",)
        assert con.execute("SHOW max_connections").fetchone() == ("200",)
    pg_cluster.drop_database("cluster_postgis")


def test_database_copies_its_template(pg_cluster: ThrowawayCluster) -> None:
    with psycopg.connect(pg_cluster.create_database("cluster_source"), autocommit=True) as con:
        con.execute("CREATE TABLE unit (unit_id integer); INSERT INTO unit VALUES (7)")
    with psycopg.connect(pg_cluster.create_database("cluster_copy", template="cluster_source")) as con:
        assert con.execute("SELECT unit_id FROM unit").fetchall() == [(7,)]
    pg_cluster.drop_database("cluster_copy")
    pg_cluster.drop_database("cluster_source")


@pytest.mark.parametrize("name", ["Upper", "two words", "x; DROP DATABASE postgres", ""])
def test_database_name_is_checked(pg_cluster: ThrowawayCluster, name: str) -> None:
    with pytest.raises(ValueError, match="`name` must be a database name"):
        pg_cluster.create_database(name)


def test_stop_removes_the_folder(pg_available: None) -> None:
    cluster = ThrowawayCluster()
    assert (cluster.data / "PG_VERSION").exists()
    with psycopg.connect(cluster.url("postgres")) as con:
        assert con.execute("SELECT 1").fetchone() == (1,)
    cluster.stop()
    assert not cluster.folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url("postgres"), connect_timeout=5)
    cluster.stop()
