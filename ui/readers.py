"""The readers the web app offers: a list the operator sets; nothing a user types reaches the registry.

A reader spec can name an address (``generative:openai:MODEL@URL``, which the server calls with its
API key) or a model folder or hub name (``extractive:<dir>``, loaded and cached for good).  Taking
one from a request would let any user make the server call any address, load any folder and learn
whether a path exists (OWASP A10, server-side request forgery).  So UI and HTTP API users pick a
*name* from :class:`OfferedReaders`:

- the built-in readers that load offline (:data:`rag_qa.readers.registry.BUILTIN_READERS`), or the
  operator's own list instead (``RAGQA_UI_READERS``, which may hold specs the operator trusts);
- plus the operator's named readers (``RAGQA_UI_READER_SPECS``, e.g. ``{"team-llm":
  "generative:openai:llama3@http://10.0.0.5:8000/v1"}``), whose spec never leaves the server: users
  see and send ``team-llm``, and answers name it so.

Anything else is refused (:class:`ReaderNotOffered`) before the registry is asked, so no file is
looked at, no address is called and nothing is cached.  The CLI, the operator's own tool, still
takes any spec.
"""

from __future__ import annotations

import logging

from rag_qa.config import Settings
from rag_qa.readers.registry import BUILTIN_READERS, FACTORIES
from ui.validation import RequestRefused, shown_value

log = logging.getLogger("rag_qa.ui")


class ReaderNotOffered(RequestRefused):
    """A reader name that is not on the operator's list."""


class OfferedReaders:
    """The reader names users may pick, each with the spec the server builds it from."""

    def __init__(self, settings: Settings) -> None:
        names = list(BUILTIN_READERS) if settings.ui_readers is None else [n.strip() for n in settings.ui_readers]
        specs: dict[str, str] = {name: name for name in names if name}
        for name, spec in settings.ui_reader_specs.items():
            if name in specs:
                raise ValueError(f"reader name {name!r} in RAGQA_UI_READER_SPECS is already a reader; "
                                 "pick another name")
            specs[name] = spec.strip()
        for name, spec in specs.items():
            if spec.partition(":")[0] not in FACTORIES:
                raise ValueError(f"reader {name!r} ({spec!r}) is not a reader spec: it must start with "
                                 f"{' or '.join(f'{k!r}' for k in FACTORIES)}")
        if not specs:
            raise ValueError("RAGQA_UI_READERS is empty: the app must offer at least one reader")
        self._specs = specs
        #: what the page starts with: the settings' reader if it is offered, else the first offered one
        self.default = settings.reader if settings.reader in specs else next(iter(specs))
        if self.default != settings.reader:
            log.warning("RAGQA_READER=%s is not among the readers the web app offers (RAGQA_UI_READERS, "
                        "RAGQA_UI_READER_SPECS); the page starts with %s", settings.reader, self.default)

    def names(self) -> list[str]:
        """The names for the Reader list, the default first."""
        return list(dict.fromkeys([self.default, *self._specs]))

    def spec(self, name: object) -> str:
        """The registry spec behind ``name`` (empty: the default); :class:`ReaderNotOffered` for anything else."""
        if name is None or name == "":
            name = self.default
        if not isinstance(name, str) or name not in self._specs:
            raise ReaderNotOffered(f"unknown reader {shown_value(name)}: pick one of {', '.join(self.names())}")
        return self._specs[name]

    def hides_spec(self, name: str) -> bool:
        """True when ``name`` stands for a spec users must not see (an operator's named reader)."""
        return self._specs.get(name, name) != name
