"""The card reports the silence-padding condition when it was measured, and says whether the
service crops to speech for the model."""

from __future__ import annotations

import json

from service.inference.manifest import read_manifest
from tests.shipped_models import shipped_default_dir
from toolkit.card import render_card


def test_padded_figures_appear_beside_the_clean_ones() -> None:
    model_dir = shipped_default_dir()
    manifest = read_manifest(model_dir)
    results = json.loads((model_dir / "results.json").read_text())
    block = results[results["shipped"]["variant"]]
    block["padded_ua"] = {"emodb": 0.5, "ravdess": 0.25}
    for figures in block["cross_corpus"].values():
        figures["ua_padded"] = 0.125
    for crop in (False, True):
        windowing = manifest.windowing.model_copy(update={"crop_to_speech": crop})
        card = render_card(manifest.model_copy(update={"windowing": windowing}), results)
        assert "| UA, 1 s of silence added on both sides |" in card
        assert "| 12.5 % |" in card  # the padded cross-corpus column
        assert "| 1 s of silence added on both sides | 50.0 % | 25.0 % |" in card
        assert ("`windowing.crop_to_speech`" in card) is crop
        margin_s = manifest.windowing.crop_margin_s  # the default's own: 1.02 s
        assert (f"keeping {margin_s:.2f} s of silence on each side" in card) is crop
