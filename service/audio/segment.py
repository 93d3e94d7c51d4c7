"""Where the model looks: cut a recording into analysis segments (pure functions).

Audio no longer than one window is one segment (for a model trained on speech-cropped clips,
``crop_to_speech``: the stretch from its first to its last speech). Longer audio is cut along
speech: speech regions are padded and merged into spans, each span longer than a window is
covered by windows every ``hop_s`` with the last one aligned to the span's end (nothing is
dropped), and fragments shorter than ``min_segment_s`` are dropped unless nothing else is left.
Without any speech the whole recording is one span (whether to refuse it is the pipeline's
decision).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

SPEECH_PAD_S: Final[float] = 0.1
"""Padding added on both sides of each speech region: about three 30 ms detector frames, so
onsets and releases the energy-based detector misses (weak fricatives) stay in the segment."""
SPAN_MERGE_GAP_S: Final[float] = 1.0
"""Padded regions closer than this become one span. Silent pauses fall into brief (< 0.2 s),
medium (0.2-1 s) and long (> 1 s) groups (Campione & Véronis 2002, "A large-scale multilingual
study of silent pause duration"); only long pauses separate utterances here."""
_EPSILON_S: Final[float] = 1e-9  # float tolerance on times (far below one sample)


class TimeSpan(Protocol):
    """Anything with a start and an end in seconds (speech regions, segments)."""

    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float: ...


@dataclass(frozen=True, order=True)
class Segment:
    """One analysis window, in seconds from the start of the recording."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s


def plan_segments(
    duration_s: float,
    speech_regions: Sequence[TimeSpan],
    window_s: float,
    hop_s: float,
    min_segment_s: float,
    *,
    pad_s: float = SPEECH_PAD_S,
    merge_gap_s: float = SPAN_MERGE_GAP_S,
    crop_to_speech: bool = False,
    crop_margin_s: float = SPEECH_PAD_S,
) -> tuple[Segment, ...]:
    """Segments (sorted, within ``[0, duration_s]``, each at most ``window_s`` long).

    ``crop_to_speech``: speech that fits one window is one segment from its first to its last
    region (:func:`speech_extent` with ``crop_margin_s`` of silence kept on each side,
    widened to ``min_segment_s`` if shorter) instead of the whole recording; without speech
    the whole recording is still analysed.

    Raises:
        ValueError: negative duration, non-positive window or hop, or ``hop_s > window_s``
            (windows would leave gaps).
    """
    _check_windowing(duration_s, window_s, hop_s, min_segment_s)
    extent = (
        speech_extent(duration_s, speech_regions, pad_s=crop_margin_s) if crop_to_speech else None
    )
    if extent is not None and extent.duration_s <= window_s + _EPSILON_S:
        return (_widened(extent, min_segment_s, duration_s),)
    if duration_s <= window_s:
        return (Segment(0.0, duration_s),)
    spans = speech_spans(duration_s, speech_regions, pad_s=pad_s, merge_gap_s=merge_gap_s)
    if not spans:
        spans = (Segment(0.0, duration_s),)
    pieces = [window for span in spans for window in _windows(span, window_s, hop_s)]
    kept = [piece for piece in pieces if piece.duration_s >= min_segment_s - _EPSILON_S]
    return tuple(kept) if kept else tuple(pieces)


def speech_spans(
    duration_s: float,
    speech_regions: Sequence[TimeSpan],
    *,
    pad_s: float = SPEECH_PAD_S,
    merge_gap_s: float = SPAN_MERGE_GAP_S,
) -> tuple[Segment, ...]:
    """Speech regions padded by ``pad_s``, clipped to ``[0, duration_s]``, sorted, and merged
    where the gap between them is shorter than ``merge_gap_s``."""
    padded = sorted(
        Segment(max(0.0, region.start_s - pad_s), min(duration_s, region.end_s + pad_s))
        for region in speech_regions
    )
    spans: list[Segment] = []
    for span in padded:
        if span.end_s <= span.start_s:
            continue
        if spans and span.start_s - spans[-1].end_s < merge_gap_s:
            spans[-1] = Segment(spans[-1].start_s, max(spans[-1].end_s, span.end_s))
        else:
            spans.append(span)
    return tuple(spans)


def speech_extent(
    duration_s: float, speech_regions: Sequence[TimeSpan], *, pad_s: float = SPEECH_PAD_S
) -> Segment | None:
    """From the first speech region's start to the last one's end, padded by ``pad_s`` and
    clipped to ``[0, duration_s]``; ``None`` without speech.

    What a model trained on speech-cropped clips (``windowing.crop_to_speech``) looks at:
    leading and trailing silence removed, pauses inside kept.
    """
    spans = speech_spans(duration_s, speech_regions, pad_s=pad_s, merge_gap_s=math.inf)
    return spans[0] if spans else None


def _widened(segment: Segment, min_duration_s: float, duration_s: float) -> Segment:
    """``segment`` grown evenly on both sides to ``min_duration_s`` (within the recording)."""
    missing_s = min_duration_s - segment.duration_s
    if missing_s <= 0:
        return segment
    start_s = min(max(0.0, segment.start_s - missing_s / 2), max(0.0, duration_s - min_duration_s))
    return Segment(start_s, min(duration_s, start_s + min_duration_s))


def _check_windowing(
    duration_s: float, window_s: float, hop_s: float, min_segment_s: float
) -> None:
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be finite and >= 0, got {duration_s}")
    if window_s <= 0 or hop_s <= 0 or hop_s > window_s:
        raise ValueError(f"need 0 < hop_s <= window_s, got hop_s={hop_s}, window_s={window_s}")
    if min_segment_s < 0:
        raise ValueError(f"min_segment_s must be >= 0, got {min_segment_s}")


def _windows(span: Segment, window_s: float, hop_s: float) -> list[Segment]:
    """Windows of ``window_s`` every ``hop_s`` over ``span``, the last one ending at its end."""
    if span.duration_s <= window_s + _EPSILON_S:
        return [span]
    count_before_last = math.ceil((span.duration_s - window_s) / hop_s - _EPSILON_S)
    starts = [span.start_s + index * hop_s for index in range(count_before_last)]
    starts.append(span.end_s - window_s)
    return [Segment(start, min(start + window_s, span.end_s)) for start in starts]
