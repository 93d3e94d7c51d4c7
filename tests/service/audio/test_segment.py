"""Segment planning: examples with exact values, then properties over random speech layouts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.audio.segment import Segment, plan_segments, speech_extent, speech_spans
from service.speech.activity import SpeechRegion

WINDOW_S, HOP_S, MIN_SEGMENT_S = 4.0, 2.0, 0.5  # the contract's example manifest
TOLERANCE_S = 1e-9


def _plan(duration_s: float, regions: list[SpeechRegion]) -> list[tuple[float, float]]:
    segments = plan_segments(duration_s, regions, WINDOW_S, HOP_S, MIN_SEGMENT_S)
    return [(round(s.start_s, 6), round(s.end_s, 6)) for s in segments]


def test_audio_within_one_window_is_one_segment() -> None:
    assert _plan(3.2, [SpeechRegion(1.0, 2.0)]) == [(0.0, 3.2)]
    assert _plan(4.0, []) == [(0.0, 4.0)]


def test_long_speech_span_gets_hopped_windows_with_the_last_aligned_to_its_end() -> None:
    # speech 1.0-10.0 s, padded by 0.1 s -> span 0.9-10.1 s (9.2 s)
    assert _plan(12.0, [SpeechRegion(1.0, 10.0)]) == [
        (0.9, 4.9),
        (2.9, 6.9),
        (4.9, 8.9),
        (6.1, 10.1),
    ]


def test_speech_spans_merge_close_regions_and_keep_far_ones_apart() -> None:
    regions = [SpeechRegion(1.0, 2.0), SpeechRegion(2.5, 3.0), SpeechRegion(8.0, 9.0)]
    assert speech_spans(20.0, regions) == (Segment(0.9, 3.1), Segment(7.9, 9.1))


def test_short_fragments_are_dropped_when_real_segments_exist() -> None:
    regions = [SpeechRegion(1.0, 3.0), SpeechRegion(10.0, 10.2)]  # spans 2.2 s and 0.4 s
    assert _plan(20.0, regions) == [(0.9, 3.1)]


def test_short_fragments_are_kept_when_they_are_all_there_is() -> None:
    assert _plan(20.0, [SpeechRegion(10.0, 10.2)]) == [(9.9, 10.3)]


def test_no_speech_falls_back_to_windows_over_everything() -> None:
    assert _plan(9.0, []) == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (5.0, 9.0)]


def test_spans_are_clipped_to_the_recording() -> None:
    assert _plan(6.0, [SpeechRegion(0.0, 6.0)]) == [(0.0, 4.0), (2.0, 6.0)]


def _cropped(duration_s: float, regions: list[SpeechRegion]) -> list[tuple[float, float]]:
    segments = plan_segments(
        duration_s, regions, WINDOW_S, HOP_S, MIN_SEGMENT_S, crop_to_speech=True
    )
    return [(round(s.start_s, 6), round(s.end_s, 6)) for s in segments]


def test_crop_to_speech_analyses_first_to_last_speech_with_pauses_kept() -> None:
    # a RAVDESS-like clip: 0.9 s of silence, a sentence with a pause, 0.8 s of silence
    regions = [SpeechRegion(0.9, 1.8), SpeechRegion(2.2, 2.9)]
    assert _cropped(3.7, regions) == [(0.8, 3.0)]
    extent = speech_extent(3.7, regions)
    assert extent is not None
    assert (extent.start_s, extent.end_s) == pytest.approx((0.8, 3.0))


def test_crop_margin_keeps_that_much_silence_around_the_speech() -> None:
    regions = [SpeechRegion(0.9, 1.8), SpeechRegion(2.2, 2.9)]

    def cropped(margin_s: float) -> list[tuple[float, float]]:
        segments = plan_segments(
            3.7,
            regions,
            WINDOW_S,
            HOP_S,
            MIN_SEGMENT_S,
            crop_to_speech=True,
            crop_margin_s=margin_s,
        )
        return [(round(s.start_s, 6), round(s.end_s, 6)) for s in segments]

    assert cropped(0.0) == [(0.9, 2.9)]
    assert cropped(0.5) == [(0.4, 3.4)]
    assert cropped(2.0) == [(0.0, 3.7)], "a margin wider than the silence keeps it all"


def test_crop_to_speech_widens_a_short_extent_to_the_shortest_segment() -> None:
    assert _cropped(3.0, [SpeechRegion(1.0, 1.1)]) == [(0.8, 1.3)]  # 0.3 s -> 0.5 s
    assert _cropped(3.0, [SpeechRegion(2.8, 2.9)]) == [(2.5, 3.0)]  # kept inside the recording
    assert _cropped(0.4, [SpeechRegion(0.1, 0.2)]) == [(0.0, 0.4)]  # recording shorter still


def test_crop_to_speech_without_speech_analyses_the_whole_recording() -> None:
    assert _cropped(3.2, []) == [(0.0, 3.2)]
    assert speech_extent(3.2, []) is None


def test_crop_to_speech_cuts_long_speech_as_without_it() -> None:
    regions = [SpeechRegion(1.0, 10.0)]
    assert _cropped(12.0, regions) == _plan(12.0, regions)


@pytest.mark.parametrize(
    ("window_s", "hop_s", "min_segment_s", "message"),
    [
        (0.0, 1.0, 0.5, "hop_s <= window_s"),
        (2.0, 3.0, 0.5, "hop_s <= window_s"),
        (4.0, 0.0, 0.5, "hop_s <= window_s"),
        (4.0, 2.0, -1.0, "min_segment_s"),
    ],
)
def test_invalid_windowing_is_a_programming_error(
    window_s: float, hop_s: float, min_segment_s: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_segments(10.0, [], window_s, hop_s, min_segment_s)


@st.composite
def speech_layouts(draw: st.DrawFn) -> tuple[float, list[SpeechRegion], float, float, float]:
    duration_s = draw(st.floats(0.1, 120.0))
    window_s = draw(st.floats(0.5, 10.0))
    hop_s = draw(st.floats(0.1, 1.0)) * window_s
    min_segment_s = draw(st.floats(0.0, 1.0)) * window_s
    bounds = draw(st.lists(st.floats(0.0, duration_s), max_size=20))
    starts_ends = sorted(bounds)
    regions = [
        SpeechRegion(start, end)
        for start, end in zip(starts_ends[::2], starts_ends[1::2], strict=False)
        if end > start
    ]
    return duration_s, regions, window_s, hop_s, min_segment_s


@settings(max_examples=300, deadline=None)
@given(layout=speech_layouts())
def test_segment_properties(layout: tuple[float, list[SpeechRegion], float, float, float]) -> None:
    duration_s, regions, window_s, hop_s, min_segment_s = layout
    segments = plan_segments(duration_s, regions, window_s, hop_s, min_segment_s)
    assert segments, "there is always at least one segment"
    assert list(segments) == sorted(segments)
    for segment in segments:
        assert -TOLERANCE_S <= segment.start_s < segment.end_s <= duration_s + TOLERANCE_S
        assert segment.duration_s <= window_s + TOLERANCE_S
    if duration_s <= window_s:
        assert segments == (Segment(0.0, duration_s),)
        return
    spans = speech_spans(duration_s, regions)
    kept_spans = [s for s in spans if s.duration_s >= min_segment_s] or list(spans)
    for span in kept_spans:  # every second of kept speech is inside some segment
        for point_s in _sample_points(span):
            assert any(
                s.start_s - TOLERANCE_S <= point_s <= s.end_s + TOLERANCE_S for s in segments
            )
    if not spans:  # no speech: the windows tile the whole recording
        assert segments[0].start_s == 0.0
        assert segments[-1].end_s == pytest.approx(duration_s)


def _sample_points(span: Segment) -> list[float]:
    count = max(2, int(span.duration_s * 10))
    return [span.start_s + span.duration_s * k / (count - 1) for k in range(count)]


@settings(max_examples=300, deadline=None)
@given(layout=speech_layouts())
def test_cropped_segment_properties(
    layout: tuple[float, list[SpeechRegion], float, float, float],
) -> None:
    duration_s, regions, window_s, hop_s, min_segment_s = layout
    segments = plan_segments(
        duration_s, regions, window_s, hop_s, min_segment_s, crop_to_speech=True
    )
    assert segments, "there is always at least one segment"
    for segment in segments:
        assert -TOLERANCE_S <= segment.start_s < segment.end_s <= duration_s + TOLERANCE_S
        assert segment.duration_s <= window_s + TOLERANCE_S
    extent = speech_extent(duration_s, regions)
    if extent is None or extent.duration_s > window_s:
        assert segments == plan_segments(duration_s, regions, window_s, hop_s, min_segment_s)
        return
    (segment,) = segments  # speech within one window: one segment holding all of it
    assert segment.start_s <= extent.start_s + TOLERANCE_S
    assert segment.end_s >= extent.end_s - TOLERANCE_S
    assert segment.duration_s >= min(min_segment_s, duration_s) - TOLERANCE_S
