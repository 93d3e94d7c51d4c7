"""Write results.json and the markdown tables (bench/RESULTS.md) from the results dict.

The markdown is built from the JSON-ready dict alone, so it can be regenerated from a saved
results.json (``python -m bench --markdown-from bench/results.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def to_jsonable(value: Any) -> Any:
    """Dataclasses, paths, tuples and dict keys made JSON-friendly (recursively)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return round(value, 4)
    return value


def write_json(results: dict[str, Any], path: Path) -> None:
    """``results`` as indented JSON at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(results), indent=1) + "\n")


def write_markdown(results: dict[str, Any], path: Path, json_path: Path | None = None) -> None:
    """The tables of ``results`` (a dict as written by :func:`write_json`) at ``path``; the
    header links ``json_path`` (default: ``results.json`` beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    json_link = (
        "results.json"
        if json_path is None
        else Path(os.path.relpath(json_path.resolve(), path.parent.resolve())).as_posix()
    )
    path.write_text(render_markdown(to_jsonable(results), json_link))


def render_markdown(results: dict[str, Any], json_link: str = "results.json") -> str:
    """Every section of RESULTS.md, in order; ``json_link`` is where the header says the
    figures are (relative to the markdown file)."""
    sections = [
        _header(results, json_link),
        _targets(results),
        _speed_table(results, threads=1),
        _speedup_table(results),
        _speed_table(results, threads=2),
        _model_table(results),
        _service_tables(results),
        _notes(results),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _header(results: dict[str, Any], json_link: str) -> str:
    machine = results.get("machine", {})
    versions = machine.get("versions", {})
    version_text = ", ".join(f"{name} {v}" for name, v in versions.items() if v)
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Mode **{results.get('mode')}**, {results.get('started_utc')} UTC, "
            f"{_fmt(results.get('elapsed_s'), 0)} s. Produced by `python -m bench` "
            "(see [docs/benchmark.md](../docs/benchmark.md)); every figure is in "
            f"[{Path(json_link).name}]({json_link}). **Quote the ratios**: absolute times vary "
            "between machines.",
            "",
            f"Machine: {machine.get('cpu_model')}, {machine.get('logical_cores')} logical "
            f"cores, {_fmt(machine.get('memory_total_mib'), 0)} MiB; Python "
            f"{machine.get('python')}; {version_text}. Load average (1, 5, 15 min) at start "
            f"{_fmt_load(machine.get('load_average_at_start'))}, at end "
            f"{_fmt_load(machine.get('load_average_at_end'))}.",
            "",
            f"Load: {results.get('load_note', '')}",
        ]
    )


def _fmt_load(load: Any) -> str:
    return "/".join(f"{value:.2f}" for value in load) if load else "–"


def _status(target: dict[str, Any]) -> str:
    met = target.get("met")
    text = "not measured" if met is None else ("**met**" if met else "**missed**")
    return text + (" (placeholder)" if target.get("placeholder") else "")


def _targets(results: dict[str, Any]) -> str:
    rows = [
        [
            t["target"],
            f"`{t['subject']}`",
            _fmt(t.get("value")),
            _fmt(t.get("threshold"), 0),
            _status(t),
            t.get("note", ""),
        ]
        for t in results.get("targets", [])
    ]
    return "## Targets (issue 6)\n\n" + _table(
        ["target", "subject", "value", "threshold", "status", "note"], rows
    )


def _speed_columns(rows: list[dict[str, Any]]) -> list[tuple[float, int]]:
    return sorted({(row["duration_s"], row["batch"]) for row in rows})


def _speed_table(results: dict[str, Any], threads: int) -> str:
    rows = [row for row in results.get("model_speed", []) if row["threads"] == threads]
    if not rows:
        return ""
    columns = _speed_columns(rows)
    by_key = {(r["model"], r["duration_s"], r["batch"]): r for r in rows}
    body = [
        [f"`{model['key']}` ({model['role']})"]
        + [_cell(by_key.get((model["key"], d, b))) for d, b in columns]
        for model in results.get("models", [])
        if any(r["model"] == model["key"] for r in rows)
    ]
    header = ["model"] + [f"{d:g} s" + (f" ×{b}" if b > 1 else "") for d, b in columns]
    title = (
        f"## Model-only inference, {threads} thread{'s' if threads > 1 else ''}: "
        "ms per clip (median; ×N = batch of N clips, time divided by N)"
    )
    return f"{title}\n\n{_table(header, body)}"


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    return f"{_fmt(row['per_clip']['median_ms'], 2)} (n={row['per_call']['count']})"


def _speedup_table(results: dict[str, Any]) -> str:
    ratios = [r for r in results.get("ratios", {}).get("model_speed", []) if r["threads"] == 1]
    if not ratios:
        return ""
    peers = sorted({r["peer"] for r in ratios})
    columns = _speed_columns(ratios)
    by_key = {(r["model"], r["peer"], r["duration_s"], r["batch"]): r["speedup"] for r in ratios}
    models = list(dict.fromkeys(r["model"] for r in ratios))
    body = [
        [f"`{model}`"]
        + [_ratios_cell([by_key.get((model, peer, d, b)) for peer in peers]) for d, b in columns]
        for model in models
    ]
    header = ["model"] + [f"{d:g} s" + (f" ×{b}" if b > 1 else "") for d, b in columns]
    return (
        f"## Speed-up over the peers, 1 thread (peer time / model time; {' / '.join(peers)})"
        f"\n\n{_table(header, body)}"
    )


def _ratios_cell(values: list[float | None]) -> str:
    if all(value is None for value in values):
        return "–"
    return " / ".join(_fmt(value, 1) + ("×" if value is not None else "") for value in values)


def _model_table(results: dict[str, Any]) -> str:
    body = [
        [
            f"`{m['key']}`",
            m["role"],
            _fmt(m.get("size_mib")),
            " / ".join(_fmt(ms, 0) for ms in m.get("load_ms_by_threads", {}).values()),
            m.get("description", ""),
        ]
        for m in results.get("models", [])
    ]
    return "## Models\n\n" + _table(
        ["model", "role", "ONNX MiB", "session open ms (1 / 2 threads)", "what"], body
    )


def _service_tables(results: dict[str, Any]) -> str:
    service = results.get("service")
    if not service:
        return ""
    if "skipped" in service:
        return f"## Service (HTTP)\n\nSkipped: {service['skipped']}"
    parts = [
        "## Service (HTTP, end to end: upload, decode, resample, speech activity, quality, "
        "model, post-processing, JSON)",
        _load_table(_with_explain(service), service.get("memory_after_case", [])),
        _stage_table(_with_explain(service)),
        _scaling_table(results.get("ratios", {}).get("throughput_scaling", [])),
        _vs_peers_table(results.get("ratios", {}).get("service_vs_peers", [])),
        _explain(service),
        _memory_table(service),
    ]
    return "\n\n".join(part for part in parts if part)


def _with_explain(service: dict[str, Any]) -> list[dict[str, Any]]:
    explain = service.get("explain")
    return [*service.get("predict", []), *([explain] if explain else [])]


def _case_key(entry: dict[str, Any]) -> tuple[str, float, int]:
    return entry["route"], entry["duration_s"], entry["concurrency"]


def _load_table(results: list[dict[str, Any]], trace: list[dict[str, Any]]) -> str:
    peaks = {_case_key(entry): entry.get("peak_rss_mib") for entry in trace}
    body = []
    for r in results:
        latency = r.get("latency") or {}
        body.append(
            [
                f"`{r['route']}`",
                f"{r['duration_s']:g} s",
                str(r["concurrency"]),
                f"{r['ok']}/{r['requests']}",
                _fmt(latency.get("median_ms")),
                _fmt(latency.get("p95_ms")),
                _fmt(latency.get("p99_ms")),
                _fmt(r["throughput_rps"], 2),
                _fmt(r["audio_s_per_s"], 1),
                _fmt(peaks.get(_case_key(r)), 0),
                ", ".join(f"{k}: {v}" for k, v in r.get("errors", {}).items()) or "–",
            ]
        )
    header = [
        "route",
        "clip",
        "concurrency",
        "ok/sent",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "req/s",
        "audio s/s",
        "server peak RSS MiB after",
        "errors",
    ]
    return _table(header, body)


def _stage_table(results: list[dict[str, Any]]) -> str:
    timed = [r for r in results if r.get("server_timing_ms")]
    if not timed:
        return ""
    stages = list(dict.fromkeys(stage for r in timed for stage in r["server_timing_ms"]))
    body = [
        [f"`{r['route']}`", f"{r['duration_s']:g} s"]
        + [_fmt(r["server_timing_ms"].get(s), 2) for s in stages]
        for r in timed
    ]
    return "Service stage times at concurrency 1 (median of its own `timing_ms`, ms):\n\n" + (
        _table(["route", "clip", *stages], body)
    )


def _scaling_table(scaling: list[dict[str, Any]]) -> str:
    if not scaling:
        return ""
    body = [
        [
            f"{s['duration_s']:g} s",
            str(s["concurrency"]),
            _fmt(s["ratio_to_concurrency_1"], 2) + "×",
        ]
        for s in scaling
    ]
    return "Throughput against concurrency 1 (`/predict`):\n\n" + _table(
        ["clip", "concurrency", "throughput / throughput at concurrency 1"], body
    )


def _vs_peers_table(ratios: list[dict[str, Any]]) -> str:
    if not ratios:
        return ""
    body = [
        [
            f"`{r['route']}`",
            f"{r['duration_s']:g} s",
            r["peer"],
            _fmt(r["peer_model_only_ms"]),
            _fmt(r["service_p50_ms"]),
            _fmt(r["ratio"], 2) + "×",
        ]
        for r in ratios
    ]
    return "End-to-end p50 (concurrency 1) against the peers' model-only time (1 thread):\n\n" + (
        _table(["route", "clip", "peer", "peer model-only ms", "service p50 ms", "ratio"], body)
    )


def _explain(service: dict[str, Any]) -> str:
    note = service.get("explain_note")
    return f"`POST /explain`: {note}" if note else ""


def _memory_table(service: dict[str, Any]) -> str:
    ready = service.get("memory_at_ready") or {}
    end = service.get("memory_at_end") or {}
    registry = service.get("registry_load") or {}
    rows = [
        ["spawn to /readyz 200", _fmt(service.get("ready_ms"), 0) + " ms"],
        [
            "import of the inference code (fresh process)",
            _fmt(registry.get("import_ms"), 0) + " ms",
        ],
        ["load_registry alone (fresh process)", _fmt(registry.get("registry_load_ms"), 0) + " ms"],
        [
            "import of the rest of the app afterwards",
            _fmt(registry.get("app_import_ms"), 0) + " ms",
        ],
        ["models", ", ".join(registry.get("models", []))],
        ["peak RSS when ready", _fmt(ready.get("peak_rss_mib")) + " MiB"],
        ["peak RSS after the load", _fmt(end.get("peak_rss_mib")) + " MiB"],
        ["RSS after the load", _fmt(end.get("rss_mib")) + " MiB"],
        ["RSS of its child processes", _fmt(service.get("children_rss_mib")) + " MiB"],
        [
            "peak RSS of a process that loads the registry and imports the app",
            _fmt(registry.get("peak_rss_mib")) + " MiB",
        ],
    ]
    return "Start-up and memory of the service process:\n\n" + _table(["figure", "value"], rows)


def _notes(results: dict[str, Any]) -> str:
    notes = results.get("notes", [])
    return "## Notes\n\n" + "\n".join(f"- {note}" for note in notes) if notes else ""
