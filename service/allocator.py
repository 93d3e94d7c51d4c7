"""Bound the number of glibc malloc arenas of a service process (``SER_MALLOC_ARENA_MAX``).

The API runs the synchronous pipeline in up to ``SER_MAX_CONCURRENT_REQUESTS`` worker threads.
glibc's malloc gives concurrently allocating threads their own arenas (up to 8 per core on
64-bit systems) and keeps memory freed into an arena for reuse there, so the peak resident set
grows with the number of threads that ever held a long upload's arrays at the same time.
Capping the arenas makes the threads share and reuse freed memory; the GNU C Library manual
("Malloc Tunable Parameters": ``M_ARENA_MAX``, the ``MALLOC_ARENA_MAX`` environment variable)
documents both knobs. Measured with ``python -m bench.memory`` (docs/benchmark.md, "Memory
under long uploads").

The cap is applied to the running process with ``mallopt`` (arenas created later obey it) and
exported as ``MALLOC_ARENA_MAX`` for the processes it starts (uvicorn workers, job workers),
whose glibc reads it at start. A ``MALLOC_ARENA_MAX`` already in the environment wins: glibc
applied it before Python started. Elsewhere than glibc (musl, macOS) nothing happens.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Final

M_ARENA_MAX: Final = -8
"""``mallopt`` parameter number of the arena cap in glibc's ``<malloc.h>``."""
ENVIRONMENT_VARIABLE: Final = "MALLOC_ARENA_MAX"


def limit_malloc_arenas(max_arenas: int) -> bool:
    """Cap this process's and its future children's malloc arenas at ``max_arenas``.

    ``0`` leaves glibc's default. Returns whether this call set a cap on this process
    (``False`` with ``0``, an inherited ``MALLOC_ARENA_MAX``, or a C library without
    ``mallopt``).
    """
    if max_arenas <= 0 or ENVIRONMENT_VARIABLE in os.environ:
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    os.environ[ENVIRONMENT_VARIABLE] = str(max_arenas)
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, max_arenas))
