"""Users, roles and what each may see.

Three kinds of people use gridgov (``docs/access.md``):

* **manager**: a whole district (no street) or one street; sees reporters' names and phones;
* **planner**: the whole district, layouts and figures; never reporters' personal data;
* **worker**: linked to a roster entry; sees only the grids they hold (primary or backup) in the current layout.

Passwords are stored as salted hashes (``werkzeug.security``, scrypt). The demo creates documented users whose
passwords are public (:data:`DEMO_USERS`); a server refuses to start while any user still has one, unless it is
told it serves a demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from werkzeug.security import check_password_hash, generate_password_hash

from gridgov.errors import AccessDenied, InputError, StoreError

if TYPE_CHECKING:
    from gridgov.store import Store

Role = Literal["manager", "planner", "worker"]
ROLES: tuple[Role, ...] = ("manager", "planner", "worker")
MIN_PASSWORD = 8
#: A hash that no password matches, checked when a user does not exist so that a wrong name takes as long as a
#: wrong password.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    """A signed-in person: the name, role and scope (never the password hash)."""

    username: str
    role: Role
    street_code: str | None = None
    worker_id: str | None = None

    @property
    def sees_personal_data(self) -> bool:
        """Reporters' names and phones are shown unmasked to managers only."""
        return self.role == "manager"

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "street_code": self.street_code,
                "worker_id": self.worker_id}


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"must be at least {MIN_PASSWORD} characters", field="password")


def add_user(store: Store, username: str, password: str, *, role: str, street_code: str | None = None,
             worker_id: str | None = None, demo_password: bool = False, at: datetime | None = None) -> User:
    """Create a user after checking the role and its scope.

    Raises
    ------
    InputError
        Blank name, unknown role, short password, a street for a non-manager, a worker without a roster entry.
    StoreError
        The name is taken, or the street or worker does not exist.
    """
    username = username.strip()
    if not username:
        raise InputError("must not be blank", field="username")
    if role not in ROLES:
        raise InputError(f"must be one of {', '.join(ROLES)}, got {role!r}", field="role")
    _check_password(password)
    if street_code and role != "manager":
        raise InputError("only a manager is limited to a street", field="street")
    if role == "worker" and not worker_id:
        raise InputError("a worker user needs the roster id it belongs to", field="worker")
    if worker_id and role != "worker":
        raise InputError("only a worker user links to a roster entry", field="worker")
    if street_code and street_code not in set(store.admin_areas("street")["code"].astype(str)):
        raise StoreError(f"no street with code {street_code!r}")
    if worker_id and store.worker(worker_id) is None:
        raise StoreError(f"no worker {worker_id!r} in the roster")
    store.insert_user({"username": username, "password_hash": generate_password_hash(password), "role": role,
                       "street_code": street_code or None, "worker_id": worker_id or None,
                       "demo_password": demo_password, "created_at": at or datetime.now().replace(microsecond=0)})
    return User(username=username, role=role, street_code=street_code or None,  # type: ignore[arg-type]
                worker_id=worker_id or None)


def set_password(store: Store, username: str, password: str) -> None:
    """Give a user a new password (it is no longer a demo password)."""
    _check_password(password)
    store.set_password_hash(username, generate_password_hash(password), demo_password=False)


def authenticate(store: Store, username: str, password: str) -> User | None:
    """The user when the password matches, else None (same work either way)."""
    row = store.user(username.strip()) if username else None
    ok = check_password_hash(row["password_hash"] if row else _DUMMY_HASH, password or "")
    if not row or not ok:
        return None
    return User(username=row["username"], role=row["role"], street_code=row["street_code"],
                worker_id=row["worker_id"])


def get_user(store: Store, username: str) -> User | None:
    """A user by name (for a session that is already signed in)."""
    row = store.user(username)
    if row is None:
        return None
    return User(username=row["username"], role=row["role"], street_code=row["street_code"],
                worker_id=row["worker_id"])


def demo_password_users(store: Store) -> list[str]:
    """Users who still have a published demo password: a real deployment must not start with them."""
    users = store.users()
    return sorted(users.loc[users["demo_password"].astype(bool), "username"])


#: The demo's users and their public passwords (``docs/access.md``). Worker users are created for the roster's
#: first workers with a grid.
DEMO_PASSWORD = "gridgov-demo"
DEMO_USERS: tuple[tuple[str, Role], ...] = (("manager", "manager"), ("planner", "planner"))


def create_demo_users(store: Store, *, at: datetime | None = None, street_manager: bool = True,
                      workers: int = 2) -> list[User]:
    """Create the demo's users, all with :data:`DEMO_PASSWORD`: a district manager, a planner, a manager of the
    first street (``manager-<street code>``) and ``worker1``… for the first workers holding a grid."""
    made = [add_user(store, name, DEMO_PASSWORD, role=role, demo_password=True, at=at) for name, role in DEMO_USERS]
    if street_manager:
        streets = store.admin_areas("street")
        if len(streets):
            code = str(streets["code"].iloc[0])
            made.append(add_user(store, "street-manager", DEMO_PASSWORD, role="manager", street_code=code,
                                 demo_password=True, at=at))
    layout_id = store.current_layout_id()
    if layout_id is not None and workers:
        held = store.assignments(layout_id)
        held = held[(held["role"] == "primary") & held["active"].astype(bool)]
        for i, wid in enumerate(sorted(held["worker_id"].unique())[:workers], start=1):
            made.append(add_user(store, f"worker{i}", DEMO_PASSWORD, role="worker", worker_id=str(wid),
                                 demo_password=True, at=at))
    return made


# --------------------------------------------------------------------------------------------------------------------
# Scope
# --------------------------------------------------------------------------------------------------------------------

def visible_grids(store: Store, user: User, layout_id: int | None = None) -> set[str] | None:
    """Grid codes of a layout (default the current one) the user may see; None means all of them.

    A worker sees the grids they hold (primary or backup), a street manager the grids of their street, a district
    manager and a planner all grids.
    """
    layout_id = layout_id if layout_id is not None else store.current_layout_id()
    if user.role == "worker":
        if layout_id is None or not user.worker_id:
            return set()
        held = store.assignments(layout_id)
        return set(held.loc[held["worker_id"] == user.worker_id, "grid_code"].astype(str))
    if user.role == "manager" and user.street_code:
        if layout_id is None:
            return set()
        grids = store.layout_grids(layout_id)
        return set(grids.loc[grids["street_code"] == user.street_code, "grid_code"].astype(str))
    return None


def may_change_layouts(user: User | None) -> bool:
    """Adopting, renaming and deleting layouts changes the whole district: planners and district managers only
    (not a street's manager)."""
    return user is not None and (user.role == "planner" or (user.role == "manager" and not user.street_code))


def require(user: User | None, *roles: Role) -> User:
    """The user if signed in with one of ``roles`` (any role when none given); raises :class:`AccessDenied`."""
    if user is None:
        raise AccessDenied("sign in first")
    if roles and user.role not in roles:
        raise AccessDenied(f"a {user.role} may not do this")
    return user
