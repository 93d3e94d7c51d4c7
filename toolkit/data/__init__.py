"""Corpus adapters: every source of labelled speech becomes a list of :class:`Utterance`."""

from toolkit.data.affect_norms import affect_target, derive_vad, load_affect_norms, neutral_point
from toolkit.data.corpora import load_cremad, load_emodb, load_ravdess
from toolkit.data.manifest import load_csv_manifest
from toolkit.data.paths import data_dir
from toolkit.data.registry import load_corpus
from toolkit.data.rows import DataRowError
from toolkit.data.soft_labels import to_vector
from toolkit.data.types import Utterance

__all__ = [
    "DataRowError",
    "Utterance",
    "affect_target",
    "data_dir",
    "derive_vad",
    "load_affect_norms",
    "load_corpus",
    "load_cremad",
    "load_csv_manifest",
    "load_emodb",
    "load_ravdess",
    "neutral_point",
    "to_vector",
]
