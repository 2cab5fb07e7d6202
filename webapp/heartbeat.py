"""A background thread that renews something (a lease, a lock) at a fixed interval while work runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Heartbeat:
    """Calls ``beat()`` every ``interval`` seconds in a daemon thread, from ``start()`` until ``stop()``.

    ``beat`` returns False when there is nothing left to renew (the lease was taken over): the heartbeat stops.
    An exception in ``beat`` is logged and the next beat tries again. A process killed with -9 stops beating,
    which is the point: what it held then expires on its own.
    """

    def __init__(self, beat: Callable[[], bool], interval: float, name: str):
        self.beat, self.interval, self.name = beat, interval, name
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        # Not joined: a beat blocked on a lock held by the very work it renews must not block that work's end.
        self._stopped.set()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if not self.beat():
                    return
            except Exception:  # noqa: BLE001 - a beat that fails (database or Redis away) is retried at the next one
                log.warning("heartbeat %s failed; trying again in %ss", self.name, self.interval, exc_info=True)
