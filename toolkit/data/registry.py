"""One entry point from a corpus name or a manifest path to utterances."""

from __future__ import annotations

from pathlib import Path

from toolkit.data.corpora import BUILTIN_CORPORA, corpus_names
from toolkit.data.manifest import load_csv_manifest
from toolkit.data.paths import data_dir
from toolkit.data.types import Utterance

ALIASES = {"cremad": "crema-d", "crema_d": "crema-d", "berlin": "emodb"}
"""Alternative spellings of the built-in corpus names."""


def load_corpus(
    name_or_path: str | Path, vad_range: tuple[float, float] = (0.0, 1.0)
) -> list[Utterance]:
    """Utterances of a built-in corpus (``"ravdess"``, ``"emodb"``, ``"crema-d"``, found under
    :func:`data_dir`) or of a CSV manifest file (see :mod:`toolkit.data.manifest`).

    ``vad_range`` applies to manifests only. Raises ``ValueError`` for an unknown name.
    """
    text = str(name_or_path)
    name = ALIASES.get(text.lower(), text.lower())
    if name in BUILTIN_CORPORA:
        return BUILTIN_CORPORA[name](data_dir() / name)
    path = Path(name_or_path)
    if path.suffix.lower() == ".csv" and path.is_file():
        return load_csv_manifest(path, vad_range=vad_range)
    raise ValueError(
        f"unknown corpus {text!r}: use one of {sorted(corpus_names())} or the path of an "
        "existing CSV manifest"
    )
