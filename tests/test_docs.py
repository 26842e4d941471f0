"""Generated documentation is current: docs/configuration.md is what the Settings fields say."""

from __future__ import annotations

from rag_qa import config_reference
from rag_qa.config import Settings


def test_the_configuration_reference_is_up_to_date() -> None:
    committed = config_reference.PATH.read_text(encoding="utf-8")
    assert committed == config_reference.render(), "docs/configuration.md is out of date: run `make docs`"
    assert all(f"`RAGQA_{name.upper()}`" in committed for name in Settings.model_fields)
