"""The explanation: expert table, norms and z-scores, consistency, a full run on real speech."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from service.config import Settings
from service.explain.cues import CUE_UNITS
from service.explain.directions import DIRECTIONS_PATH, Expectation, expected, expert_table
from service.explain.explanation import CueEvidence, explain, label_consistency
from service.explain.references import (
    BUILT_IN_SOURCE,
    DEFAULT_NORMS_PATH,
    MANIFEST_SOURCE,
    ChosenNorms,
    CueNorm,
    choose_norms,
    default_norms,
)
from service.inference.manifest import read_manifest, write_manifest
from service.inference.session import OnnxModel
from service.labels import CANONICAL_LABELS
from service.pipeline import analyse
from tests.onnx_factory import TinyModelSpec, build_model
from tests.service.api.conftest import real_speech_wav

SOURCES = ("Juslin & Laukka 2003", "Scherer 2003", "Banse & Scherer 1996")


def test_every_cell_of_the_expert_table_has_a_named_source() -> None:
    with DIRECTIONS_PATH.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(expert_table())
    for row in rows:
        assert row["label"] in CANONICAL_LABELS and row["cue"] in CUE_UNITS
        assert any(source in row["source"] for source in SOURCES), row
        if row["direction"] == "either":
            assert row["note"], "an 'either' cell says why (disagreement or no direction)"


def test_unstated_cells_stay_empty() -> None:
    assert expected("neutral", "f0_mean_st").direction == "either"
    assert expected("neutral", "f0_mean_st").source == ""
    assert expected("calm", "loudness_mean").source == ""
    assert expected("angry", "f1_hz").source == ""  # no source states formant directions


def test_known_cells() -> None:
    assert expected("angry", "f0_mean_st").direction == "higher"
    assert expected("sad", "speech_rate_syl_s").direction == "lower"
    assert expected("sad", "hammarberg_index_db").direction == "higher"
    assert expected("happy", "jitter_local_pct").direction == "lower"
    assert expected("fearful", "loudness_mean").direction == "either"  # sources disagree
    directional = {label for (label, _), e in expert_table().items() if e.is_directional}
    assert directional == {"angry", "fearful", "happy", "sad", "bored"}


def test_a_bad_table_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("label,cue,direction,source_parameter,source,note\nangry,f0_mean_st,up,x,y,\n")
    with pytest.raises(ValueError, match="direction 'up'"):
        expert_table(bad)
    bad.write_text(
        "label,cue,direction,source_parameter,source,note\nangry,f0_mean_st,higher,x,,\n"
    )
    with pytest.raises(ValueError, match="needs its source"):
        expert_table(bad)


def test_norm_choice_and_fallbacks() -> None:
    manifest_norms = {"pooled": {"f0_mean_st": {"mean": 30.0, "std": 2.0, "count": 10.0}}}
    chosen = choose_norms(manifest_norms, "female")
    assert (chosen.group, chosen.source) == ("pooled", MANIFEST_SOURCE)
    assert chosen.notes == ("no female norms in the model manifest; pooled norms are used",)
    assert chosen.z_score("f0_mean_st", 34.0) == pytest.approx(2.0)
    assert chosen.z_score("f0_mean_st", None) is None
    assert chosen.z_score("hnr_db", 10.0) is None
    built_in = choose_norms({}, "male")
    assert (built_in.group, built_in.source) == ("male", BUILT_IN_SOURCE)
    assert built_in.norms["f0_mean_st"].mean < choose_norms({}, "female").norms["f0_mean_st"].mean
    assert set(default_norms()) == {"female", "male", "pooled"}
    assert choose_norms({}, None).group == "pooled"


def evidence(name: str, z: float | None) -> CueEvidence:
    return CueEvidence(name, CUE_UNITS[name], z, None, None, z, expected("angry", name), None)


def test_consistency_counts_only_directional_cues_with_a_z() -> None:
    norms = ChosenNorms(
        {name: CueNorm(0.0, 1.0, 10) for name in CUE_UNITS}, "pooled", BUILT_IN_SOURCE, ()
    )
    cues = (
        evidence("f0_mean_st", 1.5),  # higher expected: consistent
        evidence("speech_rate_syl_s", -0.5),  # higher expected: not consistent
        evidence("hammarberg_index_db", -2.0),  # lower expected: consistent
        evidence("loudness_mean", None),  # not measured: not compared
        evidence("f1_hz", 3.0),  # no direction: not compared
    )
    result = label_consistency("angry", 0.7, cues, norms)
    assert (result.compared, result.consistent) == (3, 2)
    assert result.score == pytest.approx(2 / 3)
    calm = label_consistency("calm", 0.1, cues, norms)
    assert calm.score is None and calm.compared == 0
    assert isinstance(result.cues[0][1], Expectation)


@pytest.fixture(scope="module")
def model_with_norms(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    """tiny@1.0.0 whose manifest carries (made-up, round) female norms only."""
    directory = tmp_path_factory.mktemp("norms")
    model_dir = build_model(directory, TinyModelSpec(name="tiny", version="1.0.0", seed=0))
    norms = {
        "female": {name: {"mean": 1.0, "std": 2.0, "count": 5.0} for name in CUE_UNITS},
        "pooled": {name: {"mean": 0.0, "std": 1.0, "count": 9.0} for name in CUE_UNITS},
    }
    manifest = read_manifest(model_dir).model_copy(update={"cue_norms": norms})
    write_manifest(manifest, model_dir)
    return OnnxModel(model_dir)


def test_explain_uses_the_manifest_norms(model_with_norms: OnnxModel, tmp_path: Path) -> None:
    analysis = analyse(real_speech_wav(), model_with_norms, Settings(models_dir=tmp_path))
    explanation = explain(analysis, model_with_norms, "female")
    assert explanation.norms.source == MANIFEST_SOURCE and explanation.norms.group == "female"
    assert explanation.notes == ()
    measured = [cue for cue in explanation.cues if cue.inside is not None]
    assert len(measured) >= 8
    for cue in measured:
        assert cue.z == pytest.approx((cue.inside - 1.0) / 2.0)
    assert explanation.regions and explanation.salient_spans_s
    start_s, end_s = explanation.salient_spans_s[0]
    assert any(r.start_s == start_s for r in explanation.regions) and end_s > start_s
    male = explain(analysis, model_with_norms, "male")
    assert male.norms.group == "pooled" and "no male norms" in male.notes[0]


def test_built_in_norms_are_plausible() -> None:
    document = json.loads(DEFAULT_NORMS_PATH.read_text(encoding="utf-8"))
    female_f0 = document["cue_norms"]["female"]["f0_mean_st"]
    assert 30.0 < female_f0["mean"] < 38.0  # about 160-230 Hz
    assert female_f0["count"] >= 50


def test_cue_spans_widen_until_enough_cues_are_measurable() -> None:
    """A salient region on noise (no voiced frames) is widened by the next salient slices."""
    import numpy as np

    from service.explain.cues import analyse_cues
    from service.explain.explanation import MIN_MEASURED_CUES, _measured_spans
    from service.explain.saliency import salient_regions
    from tests.service.explain.test_saliency import synthetic_saliency

    rate_hz = 16000
    t = np.arange(2 * rate_hz) / rate_hz
    voiced = sum(0.1 * np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    noise = 0.05 * np.random.default_rng(0).standard_normal(rate_hz)
    signal = np.concatenate([noise, voiced])  # 0-1 s noise, 1-3 s a 140 Hz voice
    weights = np.ones((3, 2))
    weights[0, :] = 20.0  # the noise second is the most salient slice
    saliency = synthetic_saliency(weights, 3, 2)
    regions = tuple(salient_regions(saliency))
    assert regions[0].end_s <= 1.0
    tracks = analyse_cues(signal, rate_hz)
    notes: list[str] = []
    spans = _measured_spans(tracks, saliency, regions, [(0.0, 3.0)], signal.size, notes)
    assert spans[0][0] == 0.0 and spans[-1][1] > 1.0
    assert "fewer than 8 cues" in notes[0] and MIN_MEASURED_CUES == 8
