"""Occlude time-frequency tiles of a waveform: STFT, replace the tile with the noise floor, ISTFT.

The served models take a waveform, not a spectrogram, so a tile of the (log-mel) spectrogram is
occluded by filtering the waveform: the short-time spectrum ``S`` of the signal is computed once,
and inside a tile every bin whose magnitude is above the utterance's own noise floor is replaced
by that floor's magnitude with a random phase; everything else is left exactly as it was. The
occluded waveform is the inverse STFT (weighted overlap-add) of the edited spectrum.

Why the noise floor, not zeros: a tile of digital silence is something no recording contains
(a log-mel front end sees ``log(eps)``, far below any real value), so the model would react to
the hole itself rather than to the missing speech. The recording's own background, estimated
per frequency bin as a low percentile of the bin's magnitude over time (the idea of minimum
statistics, Martin 2001), is what that tile sounds like when nobody speaks: the occlusion takes
the speech out of the tile and puts in nothing new. The random phase (fixed seed, so results
repeat) makes the fill noise-like; keeping the speech's phase would keep its periodicity.

Because the inverse STFT is linear, the occluded signal is ``x - ISTFT(M * D)`` with
``D = S - S_fill`` and ``M`` the tile mask, and only the frames of the tile need synthesising:
one tile costs a few milliseconds however long the recording.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from service.postprocess.quality import NOISE_FLOOR_PERCENTILE

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]

STFT_WINDOW_S: Final[float] = 0.032
"""Analysis window: 32 ms (512 samples at 16 kHz), a little longer than the 25 ms of the
log-mel front ends it stands in for, rounded up to a power of two for the FFT."""
OVERLAP_FACTOR: Final[int] = 4
"""Hop = window / 4 (75 % overlap): a periodic Hann window then has a constant sum of squares,
the condition for exact weighted-overlap-add reconstruction (Griffin & Lim 1984)."""
OCCLUSION_SEED: Final[int] = 0
"""Seed of the fill's random phase: the same upload always gets the same explanation."""
MEL_BREAK_HZ: Final[float] = 700.0  # HTK mel scale: 2595 log10(1 + f / 700) (O'Shaughnessy 1987)
MEL_SCALE: Final[float] = 2595.0


@dataclass(frozen=True)
class TileGrid:
    """Time-frequency tiles: ``n_times`` time slices x ``n_bands`` frequency bands.

    Tile index ``t * n_bands + b`` is time slice ``t`` and band ``b``.

    Attributes:
        time_edges_s: slice boundaries in seconds, shape ``(n_times + 1,)``, increasing.
        band_edges_hz: band boundaries in Hz, shape ``(n_bands + 1,)``, from 0 to Nyquist,
            equally spaced on the mel scale (where a log-mel front end spends its resolution).
    """

    time_edges_s: FloatArray
    band_edges_hz: FloatArray

    @property
    def n_times(self) -> int:
        """Number of time slices."""
        return int(self.time_edges_s.shape[0] - 1)

    @property
    def n_bands(self) -> int:
        """Number of frequency bands."""
        return int(self.band_edges_hz.shape[0] - 1)

    @property
    def n_tiles(self) -> int:
        """Number of tiles."""
        return self.n_times * self.n_bands

    def tile_bounds(self, tile: int) -> tuple[float, float, float, float]:
        """``(start_s, end_s, low_hz, high_hz)`` of one tile."""
        t, b = divmod(tile, self.n_bands)
        return (
            float(self.time_edges_s[t]),
            float(self.time_edges_s[t + 1]),
            float(self.band_edges_hz[b]),
            float(self.band_edges_hz[b + 1]),
        )


def mel_band_edges_hz(n_bands: int, sampling_rate_hz: int) -> FloatArray:
    """``n_bands + 1`` edges from 0 Hz to Nyquist, equally spaced in mel."""
    top_mel = MEL_SCALE * math.log10(1.0 + sampling_rate_hz / 2.0 / MEL_BREAK_HZ)
    mels = np.linspace(0.0, top_mel, n_bands + 1)
    return np.asarray(MEL_BREAK_HZ * (10.0 ** (mels / MEL_SCALE) - 1.0), dtype=np.float64)


def tile_grid(
    start_s: float, end_s: float, n_times: int, n_bands: int, sampling_rate_hz: int
) -> TileGrid:
    """``n_times`` equal slices of ``[start_s, end_s]`` by ``n_bands`` mel bands."""
    return TileGrid(
        time_edges_s=np.linspace(start_s, end_s, n_times + 1),
        band_edges_hz=mel_band_edges_hz(n_bands, sampling_rate_hz),
    )


@dataclass(frozen=True)
class OcclusionPlan:
    """A signal's STFT, its noise-floor fill and the tiles, ready to synthesise occlusions.

    Attributes:
        signal: the mono signal, shape ``(samples,)``, float64.
        sampling_rate_hz: its rate.
        n_fft: window length in samples; ``hop = n_fft // OVERLAP_FACTOR``.
        removable: ``S - S_fill``, shape ``(frames, n_fft // 2 + 1)``: what occluding a bin
            takes away (zero where the bin is already at or below the noise floor).
        window_square_sum: sum of squared windows at each padded sample (the WOLA normaliser).
        grid: the tiles.
        tile_frames: per time slice, the STFT frames ``[first, stop)`` whose centres lie in it.
        band_bins: per band, the FFT bins ``[first, stop)`` whose centre frequencies lie in it.
    """

    signal: FloatArray
    sampling_rate_hz: int
    n_fft: int
    removable: ComplexArray
    window_square_sum: FloatArray
    grid: TileGrid
    tile_frames: tuple[tuple[int, int], ...]
    band_bins: tuple[tuple[int, int], ...]

    @property
    def hop(self) -> int:
        """STFT frame step in samples."""
        return self.n_fft // OVERLAP_FACTOR

    def occluded(self, tiles: Sequence[int]) -> FloatArray:
        """The whole signal with ``tiles`` occluded, shape ``(samples,)``."""
        offset, delta = self.change(tiles)
        out = self.signal.copy()
        _subtract_clipped(out, offset, delta)
        return out

    def change(self, tiles: Sequence[int]) -> tuple[int, FloatArray]:
        """What occluding ``tiles`` subtracts from the signal: ``(first_sample, delta)``.

        ``delta`` may start before sample 0 or run past the end (``first_sample`` negative or
        ``first_sample + len(delta) > samples``); callers clip it.
        """
        if not tiles:
            return 0, np.zeros(0)
        mask = self._mask(tiles)
        frames = np.flatnonzero(mask.any(axis=1))
        first, stop = int(frames[0]), int(frames[-1]) + 1
        edited = np.where(mask[first:stop], self.removable[first:stop], 0.0)
        return first * self.hop - self.n_fft // 2, self._synthesise(edited, first)

    def _mask(self, tiles: Sequence[int]) -> npt.NDArray[np.bool_]:
        mask = np.zeros(self.removable.shape, dtype=np.bool_)
        for tile in tiles:
            t, b = divmod(int(tile), self.grid.n_bands)
            (f0, f1), (k0, k1) = self.tile_frames[t], self.band_bins[b]
            mask[f0:f1, k0:k1] = True
        return mask

    def _synthesise(self, spectrum: ComplexArray, first_frame: int) -> FloatArray:
        """Weighted overlap-add of ``spectrum`` frames starting at ``first_frame``."""
        window = _window(self.n_fft)
        frames = np.fft.irfft(spectrum, n=self.n_fft, axis=1) * window
        summed = _overlap_add(frames, self.hop)
        start = first_frame * self.hop
        norm = self.window_square_sum[start : start + summed.shape[0]]
        return np.asarray(summed / np.maximum(norm, _TINY), dtype=np.float64)


_TINY: Final[float] = 1e-12  # guards the WOLA division where no window reaches (padding only)


def plan_occlusion(
    signal: npt.NDArray[np.floating], sampling_rate_hz: int, grid: TileGrid
) -> OcclusionPlan:
    """STFT ``signal`` (shape ``(samples,)``), estimate its noise floor and map ``grid`` to bins.

    The fill of each bin is the ``NOISE_FLOOR_PERCENTILE`` (10th) percentile of that bin's
    magnitude over all frames, with a random phase (seed ``OCCLUSION_SEED``).
    """
    x = np.asarray(signal, dtype=np.float64)
    n_fft = _n_fft(sampling_rate_hz)
    spectrum = stft(x, n_fft)
    magnitude = np.abs(spectrum)
    floor = np.percentile(magnitude, NOISE_FLOOR_PERCENTILE, axis=0)
    phase = np.random.default_rng(OCCLUSION_SEED).uniform(0.0, 2 * np.pi, spectrum.shape)
    fill = floor[None, :] * np.exp(1j * phase)
    removable = np.where(magnitude > floor[None, :], spectrum - fill, 0.0)
    hop = n_fft // OVERLAP_FACTOR
    return OcclusionPlan(
        signal=x,
        sampling_rate_hz=sampling_rate_hz,
        n_fft=n_fft,
        removable=removable,
        window_square_sum=_overlap_add(np.tile(_window(n_fft) ** 2, (spectrum.shape[0], 1)), hop),
        grid=grid,
        tile_frames=_tile_frames(grid, spectrum.shape[0], hop, sampling_rate_hz),
        band_bins=_band_bins(grid, n_fft, sampling_rate_hz),
    )


def stft(signal: FloatArray, n_fft: int) -> ComplexArray:
    """Short-time spectrum, shape ``(frames, n_fft // 2 + 1)``, frame ``k`` centred on sample
    ``k * hop`` (``hop = n_fft // 4``), periodic Hann window, zeros beyond both ends."""
    hop = n_fft // OVERLAP_FACTOR
    n_frames = math.ceil(signal.shape[0] / hop) + 1
    padded = np.zeros((n_frames - 1) * hop + n_fft)
    padded[n_fft // 2 : n_fft // 2 + signal.shape[0]] = signal
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    return np.fft.rfft(frames * _window(n_fft), axis=1)


def istft(spectrum: ComplexArray, n_fft: int, n_samples: int) -> FloatArray:
    """Inverse of :func:`stft` (weighted overlap-add), shape ``(n_samples,)``."""
    hop = n_fft // OVERLAP_FACTOR
    frames = np.fft.irfft(spectrum, n=n_fft, axis=1) * _window(n_fft)
    summed = _overlap_add(frames, hop)
    norm = _overlap_add(np.tile(_window(n_fft) ** 2, (spectrum.shape[0], 1)), hop)
    full = summed / np.maximum(norm, _TINY)
    return np.asarray(full[n_fft // 2 : n_fft // 2 + n_samples], dtype=np.float64)


def _n_fft(sampling_rate_hz: int) -> int:
    """The power of two nearest above ``STFT_WINDOW_S`` at this rate (512 at 16 kHz)."""
    return int(2 ** math.ceil(math.log2(STFT_WINDOW_S * sampling_rate_hz)))


def _window(n_fft: int) -> FloatArray:
    """Periodic Hann window of ``n_fft`` samples."""
    return np.asarray(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft), dtype=np.float64)


def _overlap_add(frames: FloatArray, hop: int) -> FloatArray:
    """Sum ``frames`` (shape ``(F, n_fft)``, ``n_fft = 4 hop``) placed every ``hop`` samples."""
    n_frames, n_fft = frames.shape
    parts = n_fft // hop
    chunks = frames.reshape(n_frames, parts, hop)
    out = np.zeros((n_frames + parts - 1, hop))
    for part in range(parts):
        out[part : part + n_frames] += chunks[:, part, :]
    return out.reshape(-1)


def _tile_frames(
    grid: TileGrid, n_frames: int, hop: int, sampling_rate_hz: int
) -> tuple[tuple[int, int], ...]:
    centres_s = np.arange(n_frames) * hop / sampling_rate_hz
    bounds = np.searchsorted(centres_s, grid.time_edges_s, side="left")
    return tuple((int(a), int(max(a + 1, b))) for a, b in itertools.pairwise(bounds))


def _band_bins(grid: TileGrid, n_fft: int, sampling_rate_hz: int) -> tuple[tuple[int, int], ...]:
    bin_hz = np.arange(n_fft // 2 + 1) * sampling_rate_hz / n_fft
    bounds = np.searchsorted(bin_hz, grid.band_edges_hz, side="left")
    bounds[-1] = n_fft // 2 + 1  # the Nyquist bin belongs to the top band
    return tuple((int(a), int(max(a + 1, b))) for a, b in itertools.pairwise(bounds))


def _subtract_clipped(out: FloatArray, offset: int, delta: FloatArray) -> None:
    """``out[offset : offset + len(delta)] -= delta``, clipped to ``out``'s extent."""
    start, stop = max(0, offset), min(out.shape[0], offset + delta.shape[0])
    if stop > start:
        out[start:stop] -= delta[start - offset : stop - offset]
