"""Keep a child process running: restart it (with backoff) whenever it exits, until stopped.

Used by ``python -m service`` for the embedded Valkey and its workers. Children run in their own
session (a Ctrl-C in the terminal reaches only the API, which then stops them in order) and, on
Linux, get SIGTERM if this process dies, so none is left behind.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

RESTART_DELAY_START_S: Final = 0.5
RESTART_DELAY_MAX_S: Final = 30.0
STABLE_RUN_S: Final = 30.0
"""A child that ran this long before exiting is restarted after the shortest delay again."""
_PR_SET_PDEATHSIG: Final = 1
_log = logging.getLogger(__name__)


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_parent_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return set_parent_death_signal


class Supervised:
    """One child process (``argv``), restarted whenever it exits until :meth:`stop`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.stop_timeout_s = stop_timeout_s
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._lock = threading.Lock()
        self._preexec = _parent_death_signal()
        self._thread = threading.Thread(target=self._run, name=f"supervise-{name}", daemon=True)

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    def start(self) -> None:
        """Start the child (in the supervising thread) and return once it is spawned."""
        self._thread.start()
        self._started.wait()

    def stop(self) -> None:
        """SIGTERM the child, SIGKILL it after ``stop_timeout_s``, and stop restarting it."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                _log.warning(
                    "%s did not stop in %.0f s; killing it", self.name, self.stop_timeout_s
                )
                process.kill()
                process.wait()
        self._thread.join(timeout=self.stop_timeout_s)

    def _run(self) -> None:
        delay_s = RESTART_DELAY_START_S
        while not self._stopping.is_set():
            started_s = time.monotonic()
            exit_code = self._run_once()
            if self._stopping.is_set():
                break
            ran_s = time.monotonic() - started_s
            delay_s = RESTART_DELAY_START_S if ran_s > STABLE_RUN_S else delay_s
            _log.warning(
                "%s exited with %s after %.1f s; restarting in %.1f s",
                self.name,
                exit_code,
                ran_s,
                delay_s,
            )
            self._stopping.wait(delay_s)
            delay_s = min(delay_s * 2.0, RESTART_DELAY_MAX_S)
            self.restarts += 1

    def _run_once(self) -> int | None:
        with self._lock:
            if self._stopping.is_set():
                self._started.set()
                return None
            self._process = subprocess.Popen(
                self.argv,
                env=self.env,
                start_new_session=True,
                preexec_fn=self._preexec,  # only prctl(PR_SET_PDEATHSIG)
            )
        self._started.set()
        _log.info("%s started", self.name, extra={"pid": self._process.pid})
        return self._process.wait()
