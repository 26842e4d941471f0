"""Which indexes a signed-in user may see and use: the catalogue filtered by the users file.

Every handler asks :class:`Access` for the index it is about to touch, with the user name Gradio
attached to the request (``gr.Request.username``), never with anything the page sent about who
the user is.  Without a users file there is no sign-in and everything is allowed (one person on their own machine).
An index the user may not see gets the same answer as one that does not exist, so the refusal
does not reveal other teams' index names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ui.indexes import IndexCatalog, sanitise_index_name
from ui.permissions import Action, Role, allowed, role_on
from ui.users_file import UsersStore

_VERBS = {Action.ASK: "ask questions in", Action.SEARCH: "search", Action.LIST: "open",
          Action.UPLOAD: "upload to", Action.REMOVE: "remove documents from", Action.CREATE: "create"}
NO_INDEX_HINT = ("You do not have access to any index yet. Ask an administrator to give you a role "
                 "(`python -m ui users grant NAME INDEX=reader`).")


class AccessDenied(PermissionError):
    """The signed-in user may not do this; the message says what and what would allow it."""


class Access:
    """Permission checks for one catalogue; ``users`` is ``None`` when sign-in is off."""

    def __init__(self, catalog: IndexCatalog, users: UsersStore | None) -> None:
        self.catalog = catalog
        self.users = users

    @property
    def enabled(self) -> bool:
        return self.users is not None

    def roles(self, user: str | None) -> Mapping[str, Role]:
        """The user's roles (none for an unknown user or when nobody is signed in)."""
        account = self.users.get(user) if self.users is not None else None
        return account.roles if account is not None else {}

    def choices(self, user: str | None) -> list[tuple[str, str]]:
        """The dropdown's (label, path) entries the user may open."""
        everything = self.catalog.choices()
        if not self.enabled:
            return everything
        roles = self.roles(user)
        return [(label, path) for label, path in everything if allowed(roles, Action.LIST, Path(path).name)]

    def index(self, user: str | None, value: str | None, action: Action) -> Path:
        """The index folder for a dropdown value, if ``user`` may do ``action`` there; else :class:`AccessDenied`."""
        if value is not None and not isinstance(value, str):  # the API takes any JSON: an index is a path string
            value = repr(value)
        if not self.enabled:
            return self.catalog.resolve(value)
        name = Path(value).name if value else ""
        visible = {path for _, path in self.choices(user)}
        if not value or value not in visible:
            if not visible:
                raise AccessDenied(NO_INDEX_HINT)
            raise AccessDenied(f"There is no index {name or '(none chosen)'!r} that you may use; pick one from the "
                               "Index list.")
        roles = self.roles(user)
        if not allowed(roles, action, name):
            role = role_on(roles, name)
            needed = "editor" if action in (Action.UPLOAD, Action.REMOVE) else "admin"
            raise AccessDenied(f"You are a {role.value if role else 'guest'} of index {name!r}: to "
                               f"{_VERBS[action]} it you need the {needed} role; ask an administrator.")
        return Path(value)

    def known(self, value: str | None) -> Path | None:
        """The index folder ``value`` names if it is one the app offers at all (for logging a refusal)."""
        if not isinstance(value, str) or not value:
            return None
        return Path(value) if value in {p for _, p in self.catalog.choices()} else None

    def check_create(self, user: str | None, name: str) -> None:
        """:class:`AccessDenied` unless ``user`` may create an index called ``name`` (admin for it, or ``*``)."""
        if not isinstance(name, str):
            raise ValueError("give the new index a name made of letters, digits, '-' or '_'")
        if self.enabled and not allowed(self.roles(user), Action.CREATE, sanitise_index_name(name)):
            raise AccessDenied("Creating an index needs the admin role for it (or for '*'); ask an administrator.")
