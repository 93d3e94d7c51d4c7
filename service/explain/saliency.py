"""Occlusion saliency of the served model over time-frequency tiles, plus frame attention.

For every tile (see ``occlusion.py``) the model scores the recording with that tile occluded;
the tile's *drop* is how much the predicted label's probability falls (Zeiler & Fergus 2014,
occlusion sensitivity). No gradients are needed, so any ONNX model works. The recording is
scored exactly as ``POST /predict`` scores it: each analysis segment separately, combined by the
duration-weighted mean; a tile only changes the segments it overlaps, so only those are re-run.
All rows of a segment have the same length (no padding) and go to the model in a few batched
calls of at most ``MAX_ROWS_PER_CALL`` rows.

Where the model has a frame-attention head (FLAM), each tile's drop is multiplied by the
attention its time span received relative to uniform attention (1 = the model's pooling weighs
that time like any other; a model without attention, or with flat attention, gets pure
occlusion). Occlusion says what changes the answer; attention says where the pooling listened;
the product keeps tiles on which both agree.

The tile weights (positive drop x relative attention, normalised to sum 1) are merged into
salient regions: the strongest tiles until they hold ``SALIENT_MASS`` of the total weight (at
most ``MAX_SALIENT_SHARE`` of the tiles), runs of adjacent time slices in one band joined, and
runs with the same time span in adjacent bands joined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from service.audio.segment import Segment
from service.explain.occlusion import OcclusionPlan, TileGrid, plan_occlusion, tile_grid
from service.inference.session import OnnxModel
from service.postprocess.estimate import head_values

FloatArray = npt.NDArray[np.float64]

TILE_S: Final[float] = 0.25
"""Target tile length: about one syllable (mean syllable durations in read and conversational
English lie near 0.2-0.25 s; Greenberg 1999), so a tile removes a unit a listener hears."""
MAX_TIME_TILES: Final[int] = 16
"""At most 16 time slices (4 s of speech at ``TILE_S``); longer speech gets wider slices, so the
cost stays bounded (design choice for interactive latency, measured in docs/explain.md)."""
N_BANDS: Final[int] = 6
"""Six mel-spaced bands (0-365-921-1768-3056-5016-8000 Hz at 16 kHz): F0 and F1 region, F1-F2,
F2, F3, and two bands of high-frequency (fricative, spectral-balance) energy."""
MAX_ROWS_PER_CALL: Final[int] = 32
"""Rows per ONNX call: bounds the activation memory of a batch (32 rows of 6 s through the
compact CNN need about 80 MB) while keeping the per-call overhead small."""
SALIENT_MASS: Final[float] = 0.5
"""Salient regions hold at least half of the total tile weight (design choice: the smallest set
of tiles that carries most of the evidence)."""
MAX_SALIENT_SHARE: Final[float] = 0.25
"""... but never more than a quarter of the tiles, so "salient" stays selective."""


@dataclass(frozen=True)
class Region:
    """One salient region: a time span and a frequency band, with its share of the weight."""

    start_s: float
    end_s: float
    low_hz: float
    high_hz: float
    weight: float


@dataclass(frozen=True)
class Saliency:
    """Saliency of one recording for the label at ``label_index``.

    Attributes:
        grid: the tiles.
        label_index: index of the explained label in the categorical head.
        base_probabilities: whole-recording probabilities without occlusion, shape ``(C,)``.
        tile_probabilities: whole-recording probabilities with each tile occluded, shape
            ``(n_tiles, C)``.
        drop: base minus occluded probability of the label, shape ``(n_tiles,)``.
        attention_relative: attention of each tile's time span relative to uniform, shape
            ``(n_tiles,)`` (all 1 without an attention head).
        weight: ``max(drop, 0) * attention_relative`` normalised to sum 1 (all 0 when no tile
            lowers the label), shape ``(n_tiles,)``.
        model_calls: ONNX calls made.
        used_attention: the model has an attention head and its weights were used.
        plan: the occlusion plan (reused for deletion curves and figures).
    """

    grid: TileGrid
    label_index: int
    base_probabilities: FloatArray
    tile_probabilities: FloatArray
    drop: FloatArray
    attention_relative: FloatArray
    weight: FloatArray
    model_calls: int
    used_attention: bool
    plan: OcclusionPlan


def explanation_grid(speech_start_s: float, speech_end_s: float, sampling_rate_hz: int) -> TileGrid:
    """Tiles over the speech span: slices of at least ``TILE_S`` (at most ``MAX_TIME_TILES``
    of them; the whole span when it is shorter) x ``N_BANDS`` bands."""
    duration_s = max(speech_end_s - speech_start_s, 1.0 / sampling_rate_hz)
    n_times = min(MAX_TIME_TILES, max(1, math.floor(duration_s / TILE_S + 1e-9)))
    return tile_grid(speech_start_s, speech_end_s, n_times, N_BANDS, sampling_rate_hz)


def occlusion_saliency(
    signal: npt.NDArray[np.floating],
    segments: Sequence[Segment],
    model: OnnxModel,
    grid: TileGrid,
    label_index: int | None = None,
) -> Saliency:
    """Score every single-tile occlusion of ``signal`` (mono, model rate, ``(samples,)``).

    Args:
        signal: the model-rate signal the pipeline analysed.
        segments: the pipeline's analysis segments (one for audio within one window).
        model: the served model.
        grid: the tiles (e.g. :func:`explanation_grid`).
        label_index: the label to explain; default the top label of the unoccluded recording.
    """
    plan = plan_occlusion(signal, model.manifest.sampling_rate_hz, grid)
    scores = score_occlusions(plan, segments, model, [[tile] for tile in range(grid.n_tiles)])
    label = int(np.argmax(scores.base)) if label_index is None else label_index
    drop = scores.base[label] - scores.variants[:, label]
    relative = _attention_per_tile(scores.attention, segments, grid, model)
    positive = np.maximum(drop, 0.0) * relative
    total = float(positive.sum())
    return Saliency(
        grid=grid,
        label_index=label,
        base_probabilities=scores.base,
        tile_probabilities=scores.variants,
        drop=drop,
        attention_relative=relative,
        weight=positive / total if total > 0 else np.zeros_like(positive),
        model_calls=scores.model_calls,
        used_attention=scores.attention is not None and model.manifest.heads.attention is not None,
        plan=plan,
    )


@dataclass(frozen=True)
class OcclusionScores:
    """Whole-recording probabilities: ``base`` ``(C,)``, ``variants`` ``(V, C)``; attention
    rows of the unoccluded segments (``None`` without an attention head)."""

    base: FloatArray
    variants: FloatArray
    attention: list[FloatArray] | None
    model_calls: int


def score_occlusions(
    plan: OcclusionPlan,
    segments: Sequence[Segment],
    model: OnnxModel,
    tile_sets: Sequence[Sequence[int]],
) -> OcclusionScores:
    """Probabilities of the recording with each set of tiles in ``tile_sets`` occluded.

    Each segment is run once unoccluded and once per tile set that changes it; the
    whole-recording probabilities are the duration-weighted mean over segments (as /predict).
    """
    rate_hz = plan.sampling_rate_hz
    spans = [(round(s.start_s * rate_hz), round(s.end_s * rate_hz)) for s in segments]
    weights = np.array([b - a for a, b in spans], dtype=np.float64)
    weights /= weights.sum()
    changes = [plan.change(tiles) for tiles in tile_sets]
    base_rows: list[FloatArray] = []
    variants = np.zeros((len(tile_sets), len(model.manifest.heads.categorical.labels)))
    attention: list[FloatArray] = []
    calls = 0
    for (a, b), weight in zip(spans, weights, strict=True):
        touched = [i for i, (off, d) in enumerate(changes) if off < b and off + d.shape[0] > a]
        rows = [plan.signal[a:b]] + [_changed_piece(plan.signal, changes[i], a, b) for i in touched]
        probabilities, first_attention, n_calls = _run_rows(model, rows)
        calls += n_calls
        base_rows.append(probabilities[0])
        variants += weight * probabilities[0]
        variants[touched] += weight * (probabilities[1:] - probabilities[0])
        if first_attention is not None:
            attention.append(first_attention)
    base = np.tensordot(weights, np.stack(base_rows), axes=1)
    return OcclusionScores(base, variants, attention or None, calls)


def _changed_piece(
    signal: FloatArray, change: tuple[int, FloatArray], a: int, b: int
) -> FloatArray:
    """``signal[a:b]`` minus the part of ``change`` that falls inside it."""
    offset, delta = change
    piece = signal[a:b].copy()
    start, stop = max(a, offset), min(b, offset + delta.shape[0])
    piece[start - a : stop - a] -= delta[start - offset : stop - offset]
    return piece


def _run_rows(
    model: OnnxModel, rows: list[FloatArray]
) -> tuple[FloatArray, FloatArray | None, int]:
    """Probabilities ``(rows, C)`` of equal-length rows, the first row's attention, calls."""
    length = rows[0].shape[0]
    probabilities: list[FloatArray] = []
    first_attention: FloatArray | None = None
    calls = 0
    for first in range(0, len(rows), MAX_ROWS_PER_CALL):
        batch = np.stack(rows[first : first + MAX_ROWS_PER_CALL]).astype(np.float32)
        lengths = np.full(batch.shape[0], length, dtype=np.int64)
        outputs = model.run(batch, lengths)
        calls += 1
        probabilities.extend(v.probabilities for v in head_values(outputs, model.manifest))
        if first == 0 and outputs.attention is not None:
            first_attention = np.asarray(outputs.attention[0], dtype=np.float64)
    return np.stack(probabilities), first_attention, calls


def _attention_per_tile(
    attention: list[FloatArray] | None,
    segments: Sequence[Segment],
    grid: TileGrid,
    model: OnnxModel,
) -> FloatArray:
    """Attention of each tile's time slice relative to uniform (1 without attention)."""
    head = model.manifest.heads.attention
    if attention is None or head is None:
        return np.ones(grid.n_tiles)
    times_s, relative = _relative_attention_track(attention, segments, head.frame_hop_s)
    per_slice = np.ones(grid.n_times)
    for t in range(grid.n_times):
        inside = (times_s >= grid.time_edges_s[t]) & (times_s < grid.time_edges_s[t + 1])
        if inside.any():
            per_slice[t] = float(np.mean(relative[inside]))
    return np.repeat(per_slice, grid.n_bands)


def _relative_attention_track(
    attention: list[FloatArray], segments: Sequence[Segment], frame_hop_s: float
) -> tuple[FloatArray, FloatArray]:
    """Frame centre times (s) and attention x valid frames (1 = uniform), all segments."""
    times: list[FloatArray] = []
    values: list[FloatArray] = []
    for row, segment in zip(attention, segments, strict=True):
        valid = min(row.shape[0], max(1, math.ceil(segment.duration_s / frame_hop_s - 1e-9)))
        weights = row[:valid] / max(float(row[:valid].sum()), 1e-12)
        times.append(segment.start_s + (np.arange(valid) + 0.5) * frame_hop_s)
        values.append(weights * valid)
    return np.concatenate(times), np.concatenate(values)


def salient_regions(saliency: Saliency) -> list[Region]:
    """Strongest tiles merged into regions (see the module docstring), heaviest first."""
    selected = _select_tiles(saliency.weight)
    grid = saliency.grid
    chosen = np.zeros((grid.n_times, grid.n_bands), dtype=np.bool_)
    chosen.flat[selected] = True
    weights = saliency.weight.reshape(grid.n_times, grid.n_bands)
    runs = _band_runs(chosen)
    regions = [
        Region(
            start_s=float(grid.time_edges_s[t0]),
            end_s=float(grid.time_edges_s[t1]),
            low_hz=float(grid.band_edges_hz[b0]),
            high_hz=float(grid.band_edges_hz[b1]),
            weight=float(weights[t0:t1, b0:b1].sum()),
        )
        for t0, t1, b0, b1 in _merge_adjacent_bands(runs)
    ]
    return sorted(regions, key=lambda region: -region.weight)


def _select_tiles(weight: FloatArray) -> list[int]:
    """Heaviest tiles until ``SALIENT_MASS`` of the weight, at most ``MAX_SALIENT_SHARE``."""
    if float(weight.sum()) <= 0:
        return []
    order = np.argsort(-weight, kind="stable")
    limit = max(1, math.floor(MAX_SALIENT_SHARE * weight.shape[0]))
    chosen: list[int] = []
    mass = 0.0
    for tile in order[:limit]:
        if weight[tile] <= 0 or mass >= SALIENT_MASS:
            break
        chosen.append(int(tile))
        mass += float(weight[tile])
    return chosen


def _band_runs(chosen: npt.NDArray[np.bool_]) -> list[tuple[int, int, int]]:
    """``(t0, t1, band)`` for every run of consecutive chosen time slices in one band."""
    runs: list[tuple[int, int, int]] = []
    for band in range(chosen.shape[1]):
        flags = np.concatenate(([False], chosen[:, band], [False])).astype(np.int8)
        edges = np.flatnonzero(np.diff(flags)).reshape(-1, 2)
        runs.extend((int(t0), int(t1), band) for t0, t1 in edges)
    return runs


def _merge_adjacent_bands(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Join runs with the same time span in adjacent bands: ``(t0, t1, b0, b1)``."""
    merged: list[tuple[int, int, int, int]] = []
    for t0, t1, band in sorted(runs, key=lambda run: (run[0], run[1], run[2])):
        if merged and merged[-1][:2] == (t0, t1) and merged[-1][3] == band:
            merged[-1] = (t0, t1, merged[-1][2], band + 1)
        else:
            merged.append((t0, t1, band, band + 1))
    return merged


def deletion_curve(
    saliency: Saliency,
    segments: Sequence[Segment],
    model: OnnxModel,
    order: Sequence[int],
    counts: Sequence[int],
) -> FloatArray:
    """The explained label's probability with the first ``k`` tiles of ``order`` occluded,
    for each ``k`` in ``counts`` (the deletion test of faithfulness, Petsiuk et al. 2018).

    Returns:
        Shape ``(len(counts),)``; ``k = 0`` gives the unoccluded probability.
    """
    tile_sets = [list(order[:count]) for count in counts]
    scores = score_occlusions(saliency.plan, segments, model, tile_sets)
    return np.asarray(scores.variants[:, saliency.label_index], dtype=np.float64)


def saliency_order(saliency: Saliency) -> list[int]:
    """Tiles from most to least salient (by weight, then by drop; stable)."""
    keys = np.lexsort((-saliency.drop, -saliency.weight))
    return [int(tile) for tile in keys]
