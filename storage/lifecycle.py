"""``with`` support for the local servers the project starts (Kafka, SeaweedFS S3,
PostgreSQL, the pgstac STAC API): ``start()`` on entry, ``stop()`` on exit."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["StartStop"]


class StartStop:
    """Mixin for a class with ``start() -> self`` and ``stop()``: ``with X() as x:``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
