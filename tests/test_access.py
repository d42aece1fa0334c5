"""Users, roles, scopes, masking of personal data, and the case actions of the worker view (library level)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from gridgov import auth, lifecycle, privacy
from gridgov.errors import AccessDenied, InputError, StoreError
from gridgov.store import Store
from tests.fixtures import STREET, add_tiny_roster

AT = datetime(2026, 6, 10, 12, 0)


@pytest.fixture
def store(tiny_store: Store) -> Store:
    add_tiny_roster(tiny_store)
    auth.add_user(tiny_store, "boss", "district-pass", role="manager", at=AT)
    auth.add_user(tiny_store, "street", "street-pass", role="manager", street_code=STREET, at=AT)
    auth.add_user(tiny_store, "plan", "planner-pass", role="planner", at=AT)
    auth.add_user(tiny_store, "w1", "worker1-pass", role="worker", worker_id="W1", at=AT)
    auth.add_user(tiny_store, "w3", "worker3-pass", role="worker", worker_id="W3", at=AT)
    return tiny_store


def _case(store: Store, external_id: str) -> int:
    found = store.df("SELECT incident_id FROM incident WHERE external_id = ?", [external_id])
    return int(found["incident_id"].iloc[0])


def test_passwords_are_hashed_and_checked(store: Store) -> None:
    row = store.user("w1")
    assert row is not None and "worker1-pass" not in row["password_hash"]
    assert auth.authenticate(store, "w1", "worker1-pass") == auth.User("w1", "worker", None, "W1")
    assert auth.authenticate(store, "w1", "wrong-pass") is None
    assert auth.authenticate(store, "nobody", "worker1-pass") is None
    auth.set_password(store, "w1", "a-new-password")
    assert auth.authenticate(store, "w1", "worker1-pass") is None
    assert auth.authenticate(store, "w1", "a-new-password") is not None


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"username": " ", "password": "long-enough", "role": "manager"}, "username"),
    ({"username": "x", "password": "long-enough", "role": "boss"}, "role"),
    ({"username": "x", "password": "short", "role": "manager"}, "password"),
    ({"username": "x", "password": "long-enough", "role": "planner", "street_code": STREET}, "street"),
    ({"username": "x", "password": "long-enough", "role": "worker"}, "worker"),
])
def test_bad_users_are_refused_naming_the_field(store: Store, kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        auth.add_user(store, **kwargs)
    assert err.value.field == field


def test_users_must_point_at_real_streets_and_workers_and_names_are_unique(store: Store) -> None:
    with pytest.raises(StoreError, match="no worker"):
        auth.add_user(store, "ghost", "long-enough", role="worker", worker_id="W99")
    with pytest.raises(StoreError, match="no street"):
        auth.add_user(store, "lost", "long-enough", role="manager", street_code="999")
    with pytest.raises(StoreError, match="already exists"):
        auth.add_user(store, "w1", "long-enough", role="planner")


def test_demo_users_have_the_published_password_until_changed(store: Store) -> None:
    made = auth.create_demo_users(store, at=AT)
    names = {u.username for u in made}
    assert {"manager", "planner", "street-manager", "worker1"} <= names
    assert auth.authenticate(store, "worker1", auth.DEMO_PASSWORD) is not None
    assert set(auth.demo_password_users(store)) == names
    for name in names:
        auth.set_password(store, name, "a-real-password")
    assert auth.demo_password_users(store) == []


def test_each_role_sees_its_own_grids(store: Store) -> None:
    def see(name: str) -> set[str] | None:
        user = auth.get_user(store, name)
        assert user is not None
        return auth.visible_grids(store, user)

    assert see("boss") is None and see("plan") is None  # the whole district
    assert see("street") == {"G1", "G2", "G3", "G4"}  # the tiny district has one street
    assert see("w1") == {"G1", "G2"}  # primary of G1, backup of G2
    assert see("w3") == {"G3"}
    assert auth.User("x", "manager").sees_personal_data and not auth.User("x", "planner").sees_personal_data
    # Adopting or deleting a layout changes every street: not for a street's manager, nor a worker.
    assert [auth.may_change_layouts(auth.get_user(store, n)) for n in ("boss", "plan", "street", "w1")] == [
        True, True, False, False]
    assert not auth.may_change_layouts(None)


def test_a_worker_accepts_and_handles_a_case_in_their_grid_with_who_and_when(store: Store) -> None:
    w3 = auth.get_user(store, "w3")
    assert w3 is not None
    case = _case(store, "T4")  # u3 street_light, reported, grid G3
    assert lifecycle.apply_action(store, w3, case, "accept", at=AT) == "dispatched"
    with pytest.raises(InputError) as err:
        lifecycle.apply_action(store, w3, case, "handle", at=AT)
    assert err.value.field == "note"
    assert lifecycle.apply_action(store, w3, case, "handle", note="lamp replaced", at=AT) == "handled"
    events = store.incident_events(case)
    assert events[["status", "actor"]].values.tolist() == [["accepted", "w3"], ["handled", "w3"]]
    assert events["note"].isna().tolist() == [True, False] and events["note"].iloc[1] == "lamp replaced"
    row = store.df("SELECT status, dispatched_at, handled_at FROM incident WHERE incident_id = ?", [case])
    assert row["status"].iloc[0] == "handled" and row["handled_at"].iloc[0] == pd.Timestamp(AT)
    with pytest.raises(AccessDenied):
        lifecycle.apply_action(store, w3, case, "close", at=AT)  # verifying and closing is the office's
    boss = auth.get_user(store, "boss")
    assert boss is not None
    assert lifecycle.apply_action(store, boss, case, "close", at=AT) == "closed"


def test_a_worker_cannot_touch_another_grids_case_and_learns_nothing_about_it(store: Store) -> None:
    w3 = auth.get_user(store, "w3")
    assert w3 is not None
    other = _case(store, "T3")  # u2 noise, grid G2 (W1's)
    with pytest.raises(AccessDenied) as err:
        lifecycle.apply_action(store, w3, other, "accept", at=AT)
    with pytest.raises(AccessDenied) as missing:
        lifecycle.apply_action(store, w3, 999_999, "accept", at=AT)
    assert str(err.value).replace(str(other), "N") == str(missing.value).replace("999999", "N")
    assert store.incident_events(other).empty


def test_lifecycle_steps_and_races_are_checked(store: Store) -> None:
    w1 = auth.get_user(store, "w1")
    assert w1 is not None
    closed = _case(store, "T1")  # closed in G1
    with pytest.raises(InputError, match="cannot be"):
        lifecycle.apply_action(store, w1, closed, "handle", note="again", at=AT)
    with pytest.raises(InputError) as err:
        lifecycle.apply_action(store, w1, closed, "reopen", at=AT)
    assert err.value.field == "action"
    case = _case(store, "T3")  # dispatched in G2
    store.record_incident_event(case, expected="dispatched", status="handled", at=AT, actor="office", note="x",
                                event="handled")
    with pytest.raises(StoreError, match="is handled now"):  # someone else moved it meanwhile
        store.record_incident_event(case, expected="dispatched", status="handled", at=AT, actor="w1", note="y",
                                    event="handled")


def test_personal_data_is_masked_for_all_but_managers() -> None:
    frame = pd.DataFrame({"reporter_name": ["王小明", None], "reporter_phone": ["13812341234", None], "x": [1, 2]})
    masked = privacy.mask_frame(frame, personal=False)
    assert masked["reporter_name"].tolist() == ["王**", None]
    assert masked["reporter_phone"].tolist() == ["138****1234", None]
    assert privacy.mask_frame(frame, personal=True) is frame


def test_user_commands(tiny_store: Store) -> None:
    path = tiny_store.location
    tiny_store.close()

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gridgov.cli", *args, "--db", str(path)], input=stdin,
                              capture_output=True, text=True, check=False, env=dict(os.environ), timeout=120,
                              cwd=Path(__file__).resolve().parents[1])

    done = run("user", "add", "alice", "--role", "planner", stdin="secret-pass\nsecret-pass\n")
    assert done.returncode == 0, done.stderr
    short = run("user", "add", "bob", "--role", "planner", "--password", "short")
    assert short.returncode == 2 and "password" in short.stderr and "8 characters" in short.stderr
    assert run("user", "passwd", "alice", "--password", "another-pass").returncode == 0
    listed = run("user", "list", "--json")
    assert [u["username"] for u in json.loads(listed.stdout)["users"]] == ["alice"]
    assert "another-pass" not in listed.stdout and "password_hash" not in listed.stdout
    with Store(path) as store:
        assert auth.authenticate(store, "alice", "another-pass") is not None
