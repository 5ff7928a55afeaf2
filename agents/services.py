"""The storage a node's agents share, opened lazily once per worker."""

from __future__ import annotations

from functools import cached_property

from gravitas.schemas.settings import Settings
from gravitas.storage.ledger import EffectLedger


class NodeServices:
    """Handles to the node's stores; each is opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @cached_property
    def ledger(self) -> EffectLedger:
        """The effect ledger (SQLite, shared by the node's worker processes)."""
        return EffectLedger(self.data_dir / "ledger.sqlite")

    def close(self) -> None:
        """Close everything that was opened."""
        if "ledger" in self.__dict__:
            self.ledger.close()
