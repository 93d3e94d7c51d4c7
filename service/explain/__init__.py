"""Explanations: acoustic cues measured in salient regions (product brief, item 3)."""

from service.explain.cues import (
    CUE_UNITS,
    CueSet,
    CueTracks,
    CueValue,
    RegionCues,
    analyse_cues,
    interval_mask,
    measure_cues,
    measure_cues_inside_and_outside,
    summarise_cues,
)

__all__ = [
    "CUE_UNITS",
    "CueSet",
    "CueTracks",
    "CueValue",
    "RegionCues",
    "analyse_cues",
    "interval_mask",
    "measure_cues",
    "measure_cues_inside_and_outside",
    "summarise_cues",
]
