"""The one record every corpus adapter produces and every training stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Utterance:
    """One labelled clip.

    Attributes:
        path: audio file (any format the service decodes).
        corpus: corpus name, e.g. ``"ravdess"``.
        speaker: speaker id, unique within the corpus (folds group by ``corpus/speaker``).
        label: canonical emotion label (``service.labels.CANONICAL_LABELS``).
        soft_label: canonical label -> probability (sums to 1); one-hot when a corpus has
            no rater votes.
        gender: ``"female"``, ``"male"`` or ``None`` when unknown.
        intensity: acted intensity in [0, 1] (``None`` when the corpus has none).
        vad: rated (valence, arousal, dominance) in [0, 1], or ``None`` to derive it from
            ``label`` and ``intensity`` through the emotion-term norms.
    """

    path: Path
    corpus: str
    speaker: str
    label: str
    soft_label: dict[str, float] = field(default_factory=dict)
    gender: str | None = None
    intensity: float | None = None
    vad: tuple[float, float, float] | None = None

    @property
    def speaker_key(self) -> str:
        """Speaker id that is unique across corpora."""
        return f"{self.corpus}/{self.speaker}"
