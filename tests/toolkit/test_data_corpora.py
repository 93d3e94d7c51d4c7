"""Corpus adapters against the real shared metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from toolkit.data import (
    DataRowError,
    Utterance,
    load_corpus,
    load_cremad,
    load_emodb,
    load_ravdess,
)
from toolkit.data.paths import DATA_DIR_ENV, data_dir


@pytest.fixture(scope="module")
def ravdess() -> list[Utterance]:
    return load_ravdess()


@pytest.fixture(scope="module")
def emodb() -> list[Utterance]:
    return load_emodb()


def test_ravdess_counts(ravdess: list[Utterance]) -> None:
    assert len(ravdess) == 1200
    assert len({u.speaker for u in ravdess}) == 20
    assert Counter(u.label for u in ravdess) == {
        "neutral": 80, "calm": 160, "happy": 160, "sad": 160,
        "angry": 160, "fearful": 160, "disgust": 160, "surprised": 160,
    }  # fmt: skip


def test_ravdess_intensity_gender_and_soft_labels(ravdess: list[Utterance]) -> None:
    assert Counter(u.intensity for u in ravdess) == {0.5: 640, 1.0: 560}
    assert {u.intensity for u in ravdess if u.label == "neutral"} == {0.5}
    genders = {u.speaker: u.gender for u in ravdess}
    assert all((int(s) % 2 == 1) == (g == "male") for s, g in genders.items())  # odd actors male
    assert all(u.soft_label == {u.label: 1.0} for u in ravdess)
    first = ravdess[0]
    assert first.path.name == "03-01-01-01-01-01-01.flac" and first.path.is_file()
    assert first.speaker_key == "ravdess/01"


def test_emodb_counts_and_labels(emodb: list[Utterance]) -> None:
    assert len(emodb) == 408
    assert len({u.speaker for u in emodb}) == 8
    assert Counter(u.label for u in emodb)["angry"] == 100
    assert {u.label for u in emodb} == {
        "angry", "bored", "disgust", "fearful", "happy", "sad", "neutral",
    }  # fmt: skip
    assert {u.intensity for u in emodb} == {None}


def test_emodb_soft_label_from_recognition_rate(emodb: list[Utterance]) -> None:
    clip = next(u for u in emodb if u.path.name == "03a01Fa.flac")  # recognition_pct 90.0
    assert clip.label == "happy"
    assert clip.soft_label["happy"] == pytest.approx(0.90)
    others = [p for label, p in clip.soft_label.items() if label != "happy"]
    assert len(others) == 6 and others == pytest.approx([0.10 / 6] * 6)
    assert all(sum(u.soft_label.values()) == pytest.approx(1.0) for u in emodb)
    perfect = next(u for u in emodb if u.path.name == "03a01Nc.flac")  # recognition_pct 100.0
    assert perfect.soft_label == {"neutral": 1.0}


def test_emodb_genders_follow_the_emodb_documentation(emodb: list[Utterance]) -> None:
    genders = {u.speaker: u.gender for u in emodb}
    assert genders == {
        "03": "male", "08": "female", "09": "female", "10": "male",
        "11": "male", "12": "male", "13": "female", "14": "female",
    }  # fmt: skip


def test_cremad_has_no_audio_in_shared_folder() -> None:
    assert load_cremad() == []


def _write_flac(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(1600) / 16000)
    sf.write(path, tone.astype(np.float32), 16000, format="FLAC")


@pytest.fixture
def cremad_root(tmp_path: Path) -> Path:
    root = tmp_path / "crema-d"
    root.mkdir()
    (root / "metadata.csv").symlink_to((data_dir() / "crema-d" / "metadata.csv").resolve())
    _write_flac(root / "audio" / "1001_IEO_HAP_LO.flac")  # voice votes H 3, N 6
    _write_flac(root / "audio" / "1001_IEO_NEU_XX.flac")  # voice votes H 1, N 10
    return root


def test_cremad_votes_become_soft_labels(cremad_root: Path) -> None:
    clips = {u.path.name: u for u in load_cremad(cremad_root)}
    assert sorted(clips) == ["1001_IEO_HAP_LO.flac", "1001_IEO_NEU_XX.flac"]
    happy = clips["1001_IEO_HAP_LO.flac"]
    assert happy.label == "happy" and happy.intensity == 0.33
    assert happy.soft_label == pytest.approx({"happy": 3 / 9, "neutral": 6 / 9})
    assert (happy.speaker, happy.gender, happy.corpus) == ("1001", "male", "crema-d")
    neutral = clips["1001_IEO_NEU_XX.flac"]
    assert neutral.intensity is None
    assert neutral.soft_label == pytest.approx({"happy": 1 / 11, "neutral": 10 / 11})


def test_data_dir_override_reaches_registry(
    cremad_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(cremad_root.parent))
    assert len(load_corpus("cremad")) == 2


def test_registry_loads_builtin_names() -> None:
    assert len(load_corpus("RAVDESS")) == 1200
    assert len(load_corpus("emodb")) == 408


def test_registry_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown corpus 'iemocap'"):
        load_corpus("iemocap")


def test_bad_metadata_row_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text(
        "file,speaker,gender,emotion,intensity\n"
        "audio/a.flac,01,male,angry,strong\n"
        "audio/b.flac,01,male,furious,strong\n"
    )
    with pytest.raises(DataRowError, match=r"line 3, column 'emotion': 'furious' is not"):
        load_ravdess(tmp_path)


def test_missing_ravdess_audio_is_reported(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text(
        "file,speaker,gender,emotion,intensity\naudio/a.flac,01,male,angry,strong\n"
    )
    with pytest.raises(FileNotFoundError, match="1 audio file"):
        load_ravdess(tmp_path)
