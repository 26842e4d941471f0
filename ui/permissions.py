"""Roles per index and what each allows: ``reader`` < ``editor`` < ``admin``.

A user's roles map index names (the index folder's name, e.g. ``default``) or ``*`` (every index)
to a role.  The entry for the index's own name wins over ``*``, so ``{"*": "reader", "hr":
"editor"}`` reads everything and edits ``hr``, and ``{"*": "admin", "hr": "reader"}`` is an admin
everywhere except ``hr``.  Pure functions: the server checks them in every handler
(:mod:`ui.handlers`), the users file validates against them (:mod:`ui.users_file`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

ANY_INDEX = "*"
_INDEX_KEY = re.compile(r"^(\*|[A-Za-z0-9_-]{1,64})$")  # the names ui.indexes.sanitise_index_name makes


class Role(StrEnum):
    """What a user may do on one index; each role includes the ones before it."""

    READER = "reader"  # ask, search, list documents
    EDITOR = "editor"  # also upload and remove documents
    ADMIN = "admin"  # also create the index

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class Action(StrEnum):
    """The things a handler does, each with the least role it needs."""

    ASK = "ask"
    SEARCH = "search"
    LIST = "list"
    UPLOAD = "upload"
    REMOVE = "remove"
    CREATE = "create-index"


NEEDS: dict[Action, Role] = {
    Action.ASK: Role.READER, Action.SEARCH: Role.READER, Action.LIST: Role.READER,
    Action.UPLOAD: Role.EDITOR, Action.REMOVE: Role.EDITOR, Action.CREATE: Role.ADMIN,
}


def check_index_key(key: str) -> str:
    """``key`` if it can name an index in a users file (a folder name or ``*``), else ``ValueError``."""
    if not _INDEX_KEY.match(key):
        raise ValueError(f"index name {key!r} in a role must be '*' or letters, digits, '-' and '_' (at most 64)")
    return key


def parse_role(value: str) -> Role:
    """The role called ``value``; ``ValueError`` naming the valid ones otherwise."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {value!r}: use one of {', '.join(r.value for r in Role)}") from None


def role_on(roles: Mapping[str, Role], index_name: str) -> Role | None:
    """The user's role on the index called ``index_name``: its own entry, else ``*``, else none."""
    return roles.get(index_name, roles.get(ANY_INDEX))


def allowed(roles: Mapping[str, Role], action: Action, index_name: str) -> bool:
    """True when ``roles`` give at least the role ``action`` needs on ``index_name``."""
    role = role_on(roles, index_name)
    return role is not None and role.rank >= NEEDS[action].rank
