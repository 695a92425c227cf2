"""Accounts: users with roles, hashed passwords, revocable API tokens — and who may do what.

Passwords are hashed with scrypt and a random salt. An API token is shown once when it is made;
only its SHA-256 is stored, so a leaked database leaks no usable token. A revoked token stops
working at once.

The access rules (:func:`check_order_action`, :func:`staff`) are object-level: a gridworker
acts only on orders of their own grids, a dispatcher on orders of their street, a department
only on its own summons; planners and reporters do not act on work orders at all.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from dispatch import schema as t
from dispatch.errors import Forbidden, InputError, NotFound
from dispatch.services import Actor
from dispatch.storage import MAX_ID

ROLES = ("reporter", "gridworker", "grid_leader", "dispatcher", "department", "planner", "admin")
STAFF = ("gridworker", "grid_leader", "dispatcher", "department", "admin")
# the one roster link each staff role takes (other roles take none)
ROLE_FIELD = {"gridworker": "gridworker_id", "grid_leader": "gridworker_id",
              "department": "department", "dispatcher": "street_code"}
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,100}$")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
TOKEN_BYTES = 32

# action → roles that may take it (before the object-level check)
ORDER_ACTIONS = {
    "accept": ("gridworker", "grid_leader", "dispatcher", "admin"),
    "start": ("gridworker", "grid_leader", "dispatcher", "admin"),
    "resolve": ("gridworker", "grid_leader", "dispatcher", "admin"),
    "verify": ("grid_leader", "dispatcher", "admin"),
    "close": ("dispatcher", "admin"),
    "reopen": ("dispatcher", "admin"),
    "transfer": ("dispatcher", "admin"),
    "reject": ("grid_leader", "dispatcher", "admin"),
    "merge": ("dispatcher", "admin"),
    "whistle": ("grid_leader", "dispatcher", "admin"),
    "meeting": ("grid_leader", "dispatcher", "admin"),
    "duty": ("department", "admin"),
}


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    gridworker_id: int | None = None
    department: str | None = None
    street_code: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.role)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def check_username(username) -> None:
    """Refuse a username that is not 3-100 letters, digits or ``_ . @ -``."""
    if not isinstance(username, str) or not USERNAME.match(username):
        raise InputError("username: 3-100 letters, digits or _ . @ -", field="username")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        check = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(check.hex(), digest)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users and tokens, stored in the service's database."""

    def __init__(self, db, clock):
        self.db = db
        self.clock = clock

    def add_user(self, username: str, password: str, role: str, *, gridworker_id=None,
                 department=None, street_code=None) -> User:
        check_username(username)
        if not isinstance(password, str) or len(password) < 8:
            raise InputError("password: at least 8 characters", field="password")
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}", field="role")
        given = {"gridworker_id": gridworker_id, "department": department,
                 "street_code": street_code}
        for field, value in given.items():
            if field == ROLE_FIELD.get(role) and value in (None, ""):
                raise InputError(f"a {role} account needs {field}", field=field)
            if field != ROLE_FIELD.get(role) and value not in (None, ""):
                raise InputError(f"a {role} account takes no {field}", field=field)
        try:
            with self.db.unit_of_work() as uow:
                _check_link(uow, role, given)
                uid = uow.execute(insert(t.users).values(
                    username=username, password_hash=hash_password(password), role=role,
                    gridworker_id=gridworker_id, department=department,
                    street_code=street_code, active=True, created_at=self.clock())
                    .returning(t.users.c.id)).scalar_one()
        except IntegrityError:
            raise InputError(f"username {username!r} is taken", field="username") from None
        return User(uid, username, role, gridworker_id, department, street_code)

    def authenticate(self, username: str, password: str) -> User | None:
        with self.db.read() as uow:
            row = uow.execute(select(t.users).where(t.users.c.username == username,
                                                    t.users.c.active)).first()
        if row is None or not verify_password(password or "", row.password_hash):
            return None
        return _user(row)

    def user(self, user_id: int) -> User:
        with self.db.read() as uow:
            row = uow.execute(select(t.users).where(t.users.c.id == user_id,
                                                    t.users.c.active)).first()
        if row is None:
            raise NotFound(f"no user {user_id}")
        return _user(row)

    def create_token(self, username: str, name: str = "api") -> str:
        """A new API token for ``username``; the plain token is returned once, never stored."""
        longest = t.api_tokens.c.name.type.length
        if not isinstance(name, str) or not 0 < len(name) <= longest:
            raise InputError(f"token name: 1-{longest} characters", field="name")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self.db.unit_of_work() as uow:
            user = uow.execute(select(t.users.c.id, t.users.c.active).where(
                t.users.c.username == username)).first()
            if user is None:
                raise NotFound(f"no user {username!r}")
            if not user.active:
                raise InputError(f"user {username!r} is deactivated: a token for them would "
                                 "never be accepted", field="username")
            uid = user.id
            uow.execute(insert(t.api_tokens).values(
                user_id=uid, name=name, token_hash=_token_hash(token), prefix=token[:8],
                created_at=self.clock()))
        return token

    def revoke_token(self, token_or_prefix: str) -> int:
        """Revoke a token (given whole, or by the 8-character prefix shown in listings)."""
        column = t.api_tokens.c
        match = (column.token_hash == _token_hash(token_or_prefix)) | (
            column.prefix == token_or_prefix)
        with self.db.unit_of_work() as uow:
            done = uow.execute(update(t.api_tokens).where(match, column.revoked_at.is_(None))
                               .values(revoked_at=self.clock()))
        if done.rowcount == 0:
            raise NotFound("no such active token")
        return done.rowcount

    def user_for_token(self, token: str | None) -> User | None:
        if not token:
            return None
        with self.db.read() as uow:
            row = uow.execute(select(t.users).join(t.api_tokens).where(
                t.api_tokens.c.token_hash == _token_hash(token),
                t.api_tokens.c.revoked_at.is_(None), t.users.c.active)).first()
        return _user(row) if row is not None else None


def _check_link(uow, role: str, given: dict) -> None:
    """The roster entry a staff account is linked to must exist: a gridworker on the roster, a
    known department, a street of the active boundary version."""
    field = ROLE_FIELD.get(role)
    if field is None:
        return
    value = given[field]
    if field == "gridworker_id":
        found = (isinstance(value, int) and not isinstance(value, bool)
                 and 0 < value <= MAX_ID and uow.execute(select(t.gridworkers.c.id).where(
                     t.gridworkers.c.id == value, t.gridworkers.c.removed_at.is_(None))
                 ).first() is not None)
        what = f"gridworker #{value} on the roster"
    elif field == "department":
        found = uow.execute(select(t.departments.c.code).where(
            t.departments.c.code == value)).first() is not None
        what = f"department {value!r}"
    else:
        v, f = t.boundary_versions.c, t.boundary_features.c
        found = uow.execute(select(f.id).join(t.boundary_versions, v.id == f.version_id).where(
            v.active, f.layer == "streets", f.code == value)).first() is not None
        what = f"street {value!r} in the active boundary version"
    if not found:
        raise InputError(f"no {what}", field=field)


def _user(row) -> User:
    return User(row.id, row.username, row.role, row.gridworker_id, row.department,
                row.street_code)


# --- access rules -----------------------------------------------------------------------------


def staff(user: User | None) -> User:
    """The user, if they are staff; else :class:`Forbidden`."""
    if user is None or not user.is_staff:
        raise Forbidden("this needs a staff account")
    return user


def check_order_action(db, user: User | None, order: dict, action: str,
                       department: str | None = None) -> None:
    """Refuse ``action`` on ``order`` (a summary dict) unless ``user`` may take it there."""
    if user is None:
        raise Forbidden("log in or send an API token")
    allowed = ORDER_ACTIONS.get(action, ())
    if user.role not in allowed:
        raise Forbidden(f"a {user.role} may not {action} work orders")
    if user.role == "admin":
        return
    if user.role == "dispatcher":
        if order["street_code"] != user.street_code:
            raise Forbidden(f"order #{order['id']} is not in your street")
    elif user.role == "department":
        if department != user.department:
            raise Forbidden(f"only {department}'s own account may answer its summons")
    elif order["grid_code"] not in grids_of(db, user.gridworker_id) and (
            order["assignee_id"] != user.gridworker_id):
        raise Forbidden(f"order #{order['id']} is not in one of your grids")


def check_community(db, user: User, community_code: str | None) -> None:
    """Refuse unless ``user`` works in the community: a gridworker or grid leader in one of its
    grids, a dispatcher in its street (codes nest: street, community, grid); an admin anywhere.
    A thing that belongs to no community (``None``: a station's shelf, an order in no
    community) is for an admin only."""
    if community_code is not None and not isinstance(community_code, str):
        raise InputError("community_code must be text", field="community_code")
    if user.role == "admin":
        return
    if community_code is None:
        raise Forbidden("this belongs to no community: only an admin may act on it")
    if user.role == "dispatcher":
        mine = bool(user.street_code) and community_code.startswith(user.street_code)
    else:
        mine = any(grid.startswith(community_code) for grid in grids_of(db, user.gridworker_id))
    if not mine:
        raise Forbidden(f"community {community_code} is not one you work in")


def grids_of(db, gridworker_id: int | None) -> set[str]:
    if gridworker_id is None:
        return set()
    with db.read() as uow:
        return set(uow.execute(select(t.gridworker_grids.c.grid_code).where(
            t.gridworker_grids.c.gridworker_id == gridworker_id)).scalars())
