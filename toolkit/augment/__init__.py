"""Waveform augmentation (numpy only): additive noise at a set SNR and energy-adaptive mixup.

Signals are mono float32 arrays of shape ``(samples,)``.
"""
