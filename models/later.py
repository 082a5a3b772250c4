"""Ledger writes that need not hold up a case: they run on a thread of their own while the
activity that asked for them returns.

Only writes whose loss the ledger mends by itself come here: an email's `sent` settle once
SendGrid accepted it (models/notification_store.py). Should the worker die before it
lands, the claim stays `claimed`, as after a crash between the provider's answer and a settle
made in line, and the claim sweep settles it from the provider's records
(models/claim_sweep.py). A settle in line costs a case one database round trip per message
on its critical path (README, Benchmarks).

Reads in this process see these writes: before any connection is handed out (SQLAlchemy's
`engine_connect`, on every engine but the autocommit pool of the ledger's own statements),
the writes asked for until then are waited for. So the API, the CLI and the tests that read
the ledger in the worker's process find a message settled once its activity has returned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("dunning.ledger")

# An execution option of the engines whose connections do not wait (the writes' own pool,
# models.store.Statements): a claim must not queue behind another message's settle.
NO_WAIT = "dunning_later_no_wait"
# A write that fails is tried again after each of these pauses (seconds), then left to the
# claim sweep: PostgreSQL restarting, or a failover.
RETRY_AFTER = (0.2, 1.0, 5.0)
# How long a read waits for the writes before it: longer means the database is in trouble,
# and the read goes ahead (it may then see a message still `claimed`).
WAIT_AT_MOST = 10.0


class _Queue:
    """One thread, first in first out: a read waits for the writes asked for before it, not
    for a queue that never empties under load."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-later")
        self._done = threading.Condition()
        self._asked = 0
        self._finished = 0
        self._inside = threading.local()

    def submit(self, write: Callable[[], object], what: str) -> None:
        with self._done:
            self._asked += 1
        self._pool.submit(self._run, write, what)

    def wait(self, timeout: float = WAIT_AT_MOST) -> bool:
        """Wait for every write asked for until now; False when `timeout` ran out first."""
        if getattr(self._inside, "writer", False):
            return True
        with self._done:
            target = self._asked
            return self._done.wait_for(lambda: self._finished >= target, timeout)

    def _run(self, write: Callable[[], object], what: str) -> None:
        self._inside.writer = True
        try:
            for pause in (*RETRY_AFTER, None):
                try:
                    write()
                    return
                except DBAPIError as exc:
                    if pause is None:
                        log.warning("%s did not land (%s); the claim sweep will", what, exc)
                        return
                    time.sleep(pause)
        except Exception:  # a bug must not kill the thread that every later write needs
            log.exception("%s failed", what)
        finally:
            with self._done:
                self._finished += 1
                self._done.notify_all()


_QUEUE = _Queue()


def run_later(write: Callable[[], object], what: str) -> None:
    """Run `write` on the ledger's later-writes thread; `what` names it in the log."""
    _QUEUE.submit(write, what)


def wait_for_writes(timeout: float = WAIT_AT_MOST) -> bool:
    """Wait for the later writes asked for until now (tests, shutdown, engine disposal)."""
    return _QUEUE.wait(timeout)


@event.listens_for(Engine, "engine_connect")
def _read_after_writes(conn: Connection) -> None:
    if not conn.get_execution_options().get(NO_WAIT):
        _QUEUE.wait()
