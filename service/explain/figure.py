"""The explanation as a figure: spectrogram with salient regions, F0 and loudness, cue table.

Drawn with matplotlib's object API on the Agg (raster) or SVG canvas, never pyplot: no global
state, no display, safe in worker threads. matplotlib is imported on first use, so a service
that is never asked for a figure does not pay for the import.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from service.explain.occlusion import stft
from service.explain.summary import CUE_WORDS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from service.explain.explanation import Explanation

FigureFormat = Literal["png", "svg"]
MEDIA_TYPES: Final[dict[str, str]] = {"png": "image/png", "svg": "image/svg+xml"}
FIGURE_SIZE_IN: Final[tuple[float, float]] = (10.0, 9.5)
DPI: Final[int] = 100  # 1000 x 950 pixels
SPECTROGRAM_N_FFT: Final[int] = 512
SPECTROGRAM_RANGE_DB: Final[float] = 80.0  # dynamic range shown (a typical spectrogram display)


def render_figure(
    explanation: Explanation, signal: np.ndarray, figure_format: FigureFormat
) -> bytes:
    """The figure as PNG or SVG bytes.

    Args:
        explanation: what to draw.
        signal: the model-rate mono signal, shape ``(samples,)``, that was explained.
        figure_format: ``"png"`` or ``"svg"``.
    """
    figure = _figure()
    spectrum_ax, tracks_ax, table_ax = figure.subplots(
        3, 1, gridspec_kw={"height_ratios": [3.0, 1.6, 3.2]}
    )
    rate_hz = explanation.saliency.plan.sampling_rate_hz
    _spectrogram(spectrum_ax, signal, rate_hz, explanation)
    _tracks(tracks_ax, explanation, signal.shape[0] / rate_hz)
    _cue_table(table_ax, explanation)
    figure.suptitle(_title(explanation), fontsize=11)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=figure_format, dpi=DPI)
    return buffer.getvalue()


def _figure() -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE_IN)
    figure.subplots_adjust(left=0.08, right=0.92, top=0.94, bottom=0.02, hspace=0.3)
    return figure


def _title(explanation: Explanation) -> str:
    predicted = explanation.predicted
    score = "not judged" if predicted.score is None else f"{predicted.score:.0%}"
    return (
        f"{explanation.label} ({predicted.probability:.0%}): cue consistency {score} "
        f"({predicted.consistent} of {predicted.compared} cues)"
    )


def _spectrogram(ax: Axes, signal: np.ndarray, rate_hz: int, explanation: Explanation) -> None:
    from matplotlib.patches import Rectangle

    power_db = 20 * np.log10(np.abs(stft(np.asarray(signal, float), SPECTROGRAM_N_FFT)) + 1e-10)
    top_db = float(power_db.max())
    duration_s = signal.shape[0] / rate_hz
    ax.imshow(
        power_db.T,
        origin="lower",
        aspect="auto",
        extent=(0.0, duration_s, 0.0, rate_hz / 2),
        vmin=top_db - SPECTROGRAM_RANGE_DB,
        vmax=top_db,
        cmap="magma",
    )
    for rank, region in enumerate(explanation.regions, start=1):
        ax.add_patch(
            Rectangle(
                (region.start_s, region.low_hz),
                region.end_s - region.start_s,
                region.high_hz - region.low_hz,
                fill=False,
                edgecolor="cyan",
                linewidth=1.0 + 4.0 * region.weight,
            )
        )
        ax.text(
            region.start_s,
            region.high_hz,
            f" {rank}: {region.weight:.0%}",
            color="cyan",
            va="top",
            fontsize=8,
        )
    ax.set_ylabel("frequency (Hz)")
    ax.set_title("spectrogram and salient regions (occlusion saliency)", fontsize=9)


def _tracks(ax: Axes, explanation: Explanation, duration_s: float) -> None:
    tracks = explanation.tracks
    times_s = np.arange(tracks.frame_count) * tracks.hop_s
    f0_hz = np.where(tracks.pitch.voiced, tracks.pitch.f0_hz, np.nan)
    ax.plot(times_s, f0_hz, color="tab:blue", linewidth=1.2, label="F0 (Hz)")
    ax.set_ylabel("F0 (Hz)", color="tab:blue")
    ax.set_xlim(0.0, duration_s)
    loudness_ax = ax.twinx()
    loudness_ax.plot(times_s, tracks.spectral.loudness, color="tab:orange", linewidth=0.8)
    loudness_ax.set_ylabel("loudness (sone)", color="tab:orange")
    for start_s, end_s in explanation.salient_spans_s:
        ax.axvspan(start_s, end_s, color="cyan", alpha=0.2)
    ax.set_xlabel("time (s); shaded: salient spans where the cues are measured")


TABLE_HEADER: Final[tuple[str, ...]] = (
    "cue",
    "unit",
    "salient",
    "elsewhere",
    "neutral",
    "z",
    "expected",
    "fits",
)
TABLE_WIDTHS: Final[tuple[int, ...]] = (36, 14, 9, 10, 9, 6, 9, 4)


def _cue_table(ax: Axes, explanation: Explanation) -> None:
    """The cue table as one monospaced text block (one text artist: fast to lay out)."""
    ax.axis("off")
    rows = [TABLE_HEADER] + [
        (
            CUE_WORDS[cue.name],
            cue.unit.split(" (")[0],
            _number(cue.inside),
            _number(cue.elsewhere),
            _number(None if cue.reference is None else cue.reference.mean),
            "" if cue.z is None else f"{cue.z:+.1f}",
            cue.expectation.direction,
            {True: "yes", False: "no", None: ""}[cue.consistent],
        )
        for cue in explanation.cues
    ]
    lines = [
        " ".join(cell.ljust(width) for cell, width in zip(row, TABLE_WIDTHS, strict=True))
        for row in rows
    ]
    ax.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=8.5, va="top")
    ax.set_title(
        f"cues: salient spans, elsewhere, {explanation.norms.group} neutral norm "
        f"({explanation.norms.source}); fits = z points the expected way",
        fontsize=9,
        loc="left",
    )


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
