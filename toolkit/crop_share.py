"""``python -m toolkit crop-share``: how much of each clip the speech crop keeps.

Per corpus, on every ``step``-th clip (name order): the mean share of the clip that
:func:`toolkit.data.speech_crop.crop_to_speech` keeps on the clean clip, and with white, pink
and babble noise added to the whole recording at 10 dB SNR (the evaluation's noise,
``toolkit.evaluate.noisy_waveforms``; babble from other speakers of the same corpus). A crop
that keeps far more of a noisy clip than of the clean one means the detector took the noise
for speech: a model trained on cropped clean clips then meets stretches of noise alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toolkit.augment.noise import NOISE_KINDS
from toolkit.data.affect_norms import neutral_point
from toolkit.data.registry import load_corpus
from toolkit.data.speech_crop import crop_to_speech
from toolkit.evaluate import noisy_waveforms
from toolkit.train.dataset import SAMPLING_RATE_HZ, load_clips

PROBE_SNR_DB = 10.0
MAX_SAMPLES = 6 * SAMPLING_RATE_HZ


def kept_share(waveforms: Sequence[np.ndarray]) -> float:
    """Mean share of the samples the crop keeps."""
    return float(np.mean([crop_to_speech(w, SAMPLING_RATE_HZ).size / w.size for w in waveforms]))


def crop_shares(corpora: Sequence[str], step: int = 10) -> dict[str, dict[str, float]]:
    """Corpus -> condition (``clean``, ``<kind>_10dB``) -> mean kept share."""
    shares: dict[str, dict[str, float]] = {}
    for corpus in corpora:
        utterances = load_corpus(corpus)
        clips = load_clips(utterances[::step], MAX_SAMPLES, neutral_point())
        babble_pool = load_clips(utterances[1::step], MAX_SAMPLES, neutral_point())
        shares[corpus] = {"clean": kept_share(clips.waveforms)}
        for kind in NOISE_KINDS:
            noisy = noisy_waveforms(clips, babble_pool, kind, PROBE_SNR_DB)
            shares[corpus][f"{kind}_{PROBE_SNR_DB:g}dB"] = kept_share(noisy)
    return shares


def markdown(shares: dict[str, dict[str, float]]) -> str:
    """The shares as a Markdown table, one row per corpus."""
    conditions = list(next(iter(shares.values())))
    lines = [
        "| corpus | " + " | ".join(conditions) + " |",
        "|---|" + "---|" * len(conditions),
    ]
    for corpus, by_condition in shares.items():
        cells = " | ".join(f"{100 * by_condition[c]:.1f} %" for c in conditions)
        lines.append(f"| {corpus} | {cells} |")
    return "\n".join(lines)
