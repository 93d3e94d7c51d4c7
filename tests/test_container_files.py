"""Dockerfile and docker-compose.yml are checked by reading them (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def test_compose_has_redis_api_and_worker_with_healthchecks() -> None:
    services = _compose()["services"]
    assert {"redis", "api", "worker"} <= set(services)
    for name in ("redis", "api"):
        assert services[name]["healthcheck"]["test"], f"{name} needs a healthcheck"
    assert services["api"]["environment"]["SER_REDIS_URL"].startswith("redis://redis:")
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "--appendonly" in services["redis"]["command"]


def test_compose_volumes_are_declared() -> None:
    compose = _compose()
    used = {
        volume.split(":", 1)[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
    }
    assert used <= set(compose.get("volumes", {}))


def test_dockerfile_is_multi_stage_non_root_and_runs_the_readme_install() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.MULTILINE)) >= 2
    assert re.search(r"^USER ser$", dockerfile, flags=re.MULTILINE)
    assert "RUN make install" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: \$\(RUN_STAMP\)", makefile, flags=re.MULTILINE), "make run installs"
    assert re.search(r"^install: \$\(RUN_STAMP\)", makefile, flags=re.MULTILINE)


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make run" in (ROOT / "README.md").read_text()


def test_the_runtime_stage_runs_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime_stage = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[-1]
    users = re.findall(r"^USER\s+(\S+)", runtime_stage, flags=re.MULTILINE)
    assert users, "the final stage must switch to a non-root USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert runtime_stage.index("USER ") < runtime_stage.index("CMD ")
    assert re.search(rf"useradd --system .*\b{users[-1]}\b", runtime_stage)
    assert "--chown=ser:ser" in runtime_stage  # the app's files belong to that user
    for name, service in _compose()["services"].items():
        assert str(service.get("user", "ser")).split(":")[0] not in {"root", "0"}, name
        assert not service.get("privileged", False), name
