"""Generic CSV manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from toolkit.data import DataRowError, load_corpus, load_csv_manifest


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.flac", "b.flac", "c.flac"):
        sf.write(folder / name, np.zeros(800, dtype=np.float32), 16000, format="FLAC")
    return folder


def _manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mycorpus.csv"
    path.write_text(text)
    return path


def test_label_soft_and_dimensional_columns(tmp_path: Path, audio_dir: Path) -> None:
    path = _manifest(
        tmp_path,
        "path,speaker,label,p_angry,p_neutral,valence,arousal,dominance,gender,intensity\n"
        "clips/a.flac,s1,angry,,,,,,F,0.8\n"
        "clips/b.flac,s2,,3,1,1,5,3,male,\n"
        f"{audio_dir / 'c.flac'},s2,neutral,1,1,2,4,3,,\n",
    )
    first, second, third = load_csv_manifest(path, vad_range=(1.0, 5.0))
    assert (first.label, first.soft_label, first.gender, first.intensity) == (
        "angry", {"angry": 1.0}, "female", 0.8,
    )  # fmt: skip
    assert first.corpus == "mycorpus" and first.vad is None
    assert first.path == audio_dir / "a.flac"
    assert second.label == "angry"  # arg-max of the vote columns
    assert second.soft_label == pytest.approx({"angry": 0.75, "neutral": 0.25})
    assert second.vad == pytest.approx((0.0, 1.0, 0.5))  # 1..5 rescaled to [0, 1]
    assert third.label == "neutral" and third.path == audio_dir / "c.flac"
    assert third.vad == pytest.approx((0.25, 0.75, 0.5)) and third.gender is None


def test_corpus_column_and_registry(tmp_path: Path, audio_dir: Path) -> None:
    path = _manifest(tmp_path, "path,speaker,label,corpus\nclips/a.flac,s1,sad,mine\n")
    (utterance,) = load_corpus(path)
    assert utterance.speaker_key == "mine/s1"


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("clips/a.flac,s1,joy,,,", r"line 2, column 'label': 'joy' is not a canonical label"),
        ("clips/zz.flac,s1,sad,,,", r"line 2, column 'path': audio file .*zz.flac does not exist"),
        (",s1,sad,,,", r"line 2, column 'path': value is missing"),
        ("clips/a.flac,,sad,,,", r"line 2, column 'speaker': value is missing"),
        ("clips/a.flac,s1,sad,0.2,0.3,", r"line 2, column 'dominance': .* given together"),
        (
            "clips/a.flac,s1,sad,1.2,0.3,0.1",
            r"line 2, column 'valence': 1.2 is outside \[0.0, 1.0\]",
        ),
        ("clips/a.flac,s1,,,,", r"line 2, column 'label': no label and no positive p_<label>"),
    ],
)
def test_bad_rows_name_line_and_column(
    tmp_path: Path, audio_dir: Path, row: str, match: str
) -> None:
    path = _manifest(tmp_path, f"path,speaker,label,valence,arousal,dominance\n{row}\n")
    with pytest.raises(DataRowError, match=match):
        load_csv_manifest(path)


def test_bad_header(tmp_path: Path, audio_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"\['p_joy'\] name no canonical label"):
        load_csv_manifest(_manifest(tmp_path, "path,speaker,p_joy\nclips/a.flac,s1,1\n"))
    with pytest.raises(ValueError, match="needs a 'label' column"):
        load_csv_manifest(_manifest(tmp_path, "path,speaker\nclips/a.flac,s1\n"))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['speaker'\]"):
        load_csv_manifest(_manifest(tmp_path, "path,label\nclips/a.flac,sad\n"))
