"""The malloc arena cap reaches the process and its children, and yields to an explicit
``MALLOC_ARENA_MAX``. Each case runs in a fresh interpreter: the cap cannot be undone. That
``python -m service`` applies it: tests/service/test_startup.py."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the cap is a glibc feature"
)

PROBE = """
import json, os, subprocess, sys
from service.allocator import limit_malloc_arenas
applied = limit_malloc_arenas(int(sys.argv[1]))
child = subprocess.run(
    [sys.executable, "-c", "import os; print(os.environ.get('MALLOC_ARENA_MAX', ''))"],
    capture_output=True, text=True, check=True,
).stdout.strip()
print(json.dumps({"applied": applied, "child": child}))
"""


def _probe(max_arenas: int, inherited: str | None = None) -> dict[str, object]:
    import json

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if inherited is not None:
        env["MALLOC_ARENA_MAX"] = inherited
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(max_arenas)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_cap_is_set_here_and_exported_to_children() -> None:
    assert _probe(2) == {"applied": True, "child": "2"}


def test_zero_keeps_the_glibc_default() -> None:
    assert _probe(0) == {"applied": False, "child": ""}


def test_an_explicit_environment_variable_wins() -> None:
    assert _probe(2, inherited="4") == {"applied": False, "child": "4"}
