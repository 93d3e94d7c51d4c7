"""The quick mode's pieces on tiny inputs: timing, clips, model-only speed on a tiny contract
model, HTTP load accounting, ratios, targets, and the JSON and markdown writers."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.__main__ import main, parse_env
from bench.clips import SAMPLING_RATE_HZ, make_clips, trim_silence
from bench.compare import service_ratios, service_targets, speed_ratios, speed_targets
from bench.http_load import LoadResult, multipart_upload, run_load
from bench.model_speed import SpeedRow, measure_speed, plan_cases
from bench.models import BenchModel, served_models
from bench.modes import QUICK, SpeedPlan, TimingBudget
from bench.process_memory import read_memory
from bench.report import render_markdown, to_jsonable, write_json, write_markdown
from bench.service_bench import ServiceFigures
from bench.timing import TimingStats, summarise_ms, time_calls
from tests.onnx_factory import TinyModelSpec, build_model

TINY_PLAN = SpeedPlan(
    durations_s=(1.0, 3.0),
    batch_size_by_duration_s={3.0: 2},
    threads=(1, 2),
    two_thread_durations_s=(3.0,),
    budget=TimingBudget(warmup=1, min_repeats=2, max_repeats=3, budget_s=0.01, max_s=1.0),
)


def test_summary_percentiles_of_known_values() -> None:
    stats = summarise_ms([float(v) for v in range(1, 101)])
    assert stats.count == 100
    assert stats.median_ms == pytest.approx(50.5)
    assert stats.p95_ms == pytest.approx(95.05)
    assert stats.min_ms == 1.0
    assert stats.scaled(0.5).median_ms == pytest.approx(25.25)
    with pytest.raises(ValueError, match="no measurements"):
        summarise_ms([])


def test_time_calls_respects_min_and_max_repeats() -> None:
    calls: list[int] = []
    roomy = TimingBudget(warmup=2, min_repeats=4, max_repeats=6, budget_s=10.0, max_s=10.0)
    assert time_calls(lambda: calls.append(1), roomy).count == 6
    assert len(calls) == 8  # 2 warm-up + 6 timed
    calls.clear()
    spent = TimingBudget(warmup=2, min_repeats=4, max_repeats=6, budget_s=0.0, max_s=10.0)
    assert time_calls(lambda: calls.append(1), spent).count == 4
    assert len(calls) == 5  # a warm-up longer than the budget ends the warm-up
    capped = TimingBudget(warmup=0, min_repeats=50, max_repeats=60, budget_s=0.0, max_s=0.0)
    assert time_calls(lambda: None, capped).count == 1


def test_clips_are_consecutive_real_speech_of_exact_length(data_dir: Path) -> None:
    clips = make_clips(data_dir, {1.0: 2, 3.0: 1})
    assert [c.signal.size for c in clips[1.0]] == [SAMPLING_RATE_HZ, SAMPLING_RATE_HZ]
    assert clips[3.0][0].signal.size == 3 * SAMPLING_RATE_HZ
    np.testing.assert_array_equal(clips[1.0][0].signal, clips[3.0][0].signal[:SAMPLING_RATE_HZ])
    assert clips[3.0][0].sources[0] == "03-01-01-01-01-01-01.flac"
    assert float(np.sqrt(np.mean(clips[1.0][0].signal ** 2))) > 0.005  # speech, not silence
    assert clips[1.0][0].flac_bytes()[:4] == b"fLaC"


def test_trim_silence_drops_quiet_ends() -> None:
    tone = 0.5 * np.sin(np.linspace(0, 400 * np.pi, 3200)).astype(np.float32)
    padded = np.concatenate([np.zeros(1600, np.float32), tone, np.zeros(960, np.float32)])
    assert trim_silence(padded).size == tone.size


def test_plan_cases_adds_batches_and_second_thread_only_where_asked() -> None:
    cases = [(c.threads, c.duration_s, c.batch) for c in plan_cases(TINY_PLAN)]
    assert cases == [(1, 1.0, 1), (1, 3.0, 1), (1, 3.0, 2), (2, 3.0, 1), (2, 3.0, 2)]


def _speed_rows(tmp_path: Path, data_dir: Path) -> tuple[list[SpeedRow], list[BenchModel]]:
    ours = served_models(build_model(tmp_path, TinyModelSpec(name="ours")).parents[1])
    peer_dir = build_model(tmp_path / "peer", TinyModelSpec(name="peer-model"))
    peer = BenchModel("distilhubert", "peer", "a tiny stand-in peer", peer_dir / "model.onnx")
    models = [*ours, peer]
    clips = make_clips(data_dir, {1.0: 1, 3.0: 2})
    rows, _ = measure_speed(models, clips, TINY_PLAN)
    return rows, models


def test_measure_speed_times_every_case_of_every_model(tmp_path: Path, data_dir: Path) -> None:
    rows, models = _speed_rows(tmp_path, data_dir)
    assert len(rows) == 2 * len(plan_cases(TINY_PLAN))
    batched = next(r for r in rows if r.batch == 2 and r.model == "ours@1.0.0")
    assert batched.per_clip.median_ms == pytest.approx(batched.per_call.median_ms / 2)
    assert all(2 <= r.per_call.count <= 3 for r in rows)
    ratios = speed_ratios(rows, models)
    assert {(r["model"], r["peer"]) for r in ratios} == {("ours@1.0.0", "distilhubert")}
    assert len(ratios) == len(plan_cases(TINY_PLAN))


def _serve(handler: httpx.MockTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=handler, base_url="http://bench.test")


def test_run_load_counts_answers_and_reads_stage_times() -> None:
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        if len(seen) % 5 == 0:
            return httpx.Response(422, json={"code": "no_speech"})
        timing = {"timing_ms": {"decode": 1.0, "total": 4.0}}
        return httpx.Response(200, json={**timing, "explanation": {"timing_ms": {"cues": 2.0}}})

    upload = multipart_upload(b"fLaC-bytes", "clip.flac", 3.0)
    assert upload.content_type.startswith("multipart/form-data; boundary=")

    async def drive() -> tuple[int, int, float]:
        async with _serve(httpx.MockTransport(answer)) as client:
            result = await run_load(client, "/predict", upload, 1, 10, 30.0)
        assert result.latency is not None
        assert result.errors == {"422": 2}
        assert result.server_timing_ms == {"decode": 1.0, "total": 4.0, "explanation.cues": 2.0}
        return result.requests, result.ok, result.audio_s_per_s / result.throughput_rps

    requests, ok, audio_s_per_request = asyncio.run(drive())
    assert (requests, ok) == (10, 8)
    assert audio_s_per_request == pytest.approx(3.0)
    assert b'name="file"; filename="clip.flac"' in seen[0]


def _service(rows: list[SpeedRow]) -> ServiceFigures:
    fast = summarise_ms([5.0, 6.0, 7.0])
    load = [
        _load(3.0, 1, fast, 100.0),
        _load(3.0, 16, summarise_ms([40.0, 50.0]), 350.0),
    ]
    served = {"models": [{"name": "ours", "version": "1.0.0", "default": True}]}
    memory = read_memory(os.getpid())
    return ServiceFigures(
        "models", served, {"registry_load_ms": 12.0, "models": ["ours@1.0.0"]}, 900.0,
        memory, memory, [], 0.0, load, None, "POST /explain does not exist yet", 0,
    )  # fmt: skip


def _load(duration_s: float, concurrency: int, latency: TimingStats, rps: float) -> LoadResult:
    return LoadResult(
        "/predict", duration_s, concurrency, 10, 10, {}, 1.0, latency, rps, rps * duration_s,
        {"total": 5.0},
    )  # fmt: skip


def test_report_writes_json_and_markdown_with_targets(tmp_path: Path, data_dir: Path) -> None:
    rows, models = _speed_rows(tmp_path, data_dir)
    service = _service(rows)
    results = {
        "mode": QUICK.name,
        "machine": {"cpu_model": "test cpu", "versions": {"onnxruntime": "x"}},
        "load_note": "idle",
        "plan": QUICK,
        "models": [{**vars(m), "size_mib": m.size_mib} for m in models],
        "model_speed": rows,
        "service": service,
        "ratios": {
            "model_speed": speed_ratios(rows, models),
            "service_vs_peers": service_ratios(rows, service),
        },
        "targets": speed_targets(rows, models) + service_targets(rows, service, False),
        "notes": ["a note"],
    }
    write_json(results, tmp_path / "results.json")
    write_markdown(results, tmp_path / "RESULTS.md")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["plan"]["speed"]["budget"]["min_repeats"] == QUICK.speed.budget.min_repeats
    scaling = next(t for t in saved["targets"] if t["target"].startswith("throughput"))
    assert (scaling["subject"], scaling["value"], scaling["met"]) == ("ours@1.0.0", 3.5, True)
    faster = next(t for t in saved["targets"] if t["target"].startswith("end-to-end"))
    assert faster["met"] is False  # 6 ms p50 against a tiny "peer" far below 1 ms
    speed = [t for t in saved["targets"] if t["target"].startswith("model-only")]
    assert [t["value"] is None for t in speed] == [False, True]  # no wav2vec2-base here
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "## Targets (issue 6)" in markdown
    row = "| throughput at concurrency 16 >= 3x concurrency 1 (3 s clip) | `ours@1.0.0` | 3.5 |"
    assert row in markdown
    assert "POST /explain does not exist yet" in markdown
    assert "- a note" in markdown
    assert render_markdown(to_jsonable(results)) == markdown


def test_markdown_can_be_regenerated_from_saved_json(tmp_path: Path) -> None:
    saved = {"mode": "quick", "targets": [], "notes": ["from json"]}
    (tmp_path / "results.json").write_text(json.dumps(saved))
    main(["--markdown-from", str(tmp_path / "results.json"), "--markdown", str(tmp_path / "R.md")])
    assert "- from json" in (tmp_path / "R.md").read_text()


def test_markdown_links_the_json_it_was_made_from(tmp_path: Path) -> None:
    saved = {"mode": "full", "targets": [], "notes": []}
    json_path = tmp_path / "results-full.json"
    json_path.write_text(json.dumps(saved))
    main(["--markdown-from", str(json_path), "--markdown", str(tmp_path / "docs" / "R.md")])
    header = (tmp_path / "docs" / "R.md").read_text()
    assert "[results-full.json](../results-full.json)" in header
    assert "(results.json)" not in header


def test_service_env_pairs_are_parsed_and_checked() -> None:
    assert parse_env(["SER_MAX_BATCH_SEGMENTS=8", "A=x=y"]) == {
        "SER_MAX_BATCH_SEGMENTS": "8",
        "A": "x=y",
    }
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        parse_env(["SER_MAX_BATCH_SEGMENTS"])
