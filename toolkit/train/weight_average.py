"""Stochastic weight averaging: the uniform mean of the weights at the ends of epochs.

Izmailov et al. 2018 ("Averaging Weights Leads to Wider Optima and Better Generalization",
UAI, section 3) average the weights SGD visits late in training, one snapshot per epoch; the
mean lies in a wider part of the loss surface than any single snapshot and generalised better
in their experiments. The networks trained here have no batch normalisation once a pretrained
backbone is used (Whisper uses layer norm), so the mean needs no recomputed statistics; a
model with ``MaskedBatchNorm`` (the compact network) would, and is refused.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from toolkit.model.masked_norm import MaskedBatchNorm

BATCH_NORMS = (MaskedBatchNorm, nn.BatchNorm1d, nn.BatchNorm2d)
"""Layers with running statistics that averaged weights would not match."""


class WeightAverage:
    """Uniform mean of a model's parameters over the epochs added, from one epoch on.

    The arithmetic is PyTorch's own (:class:`torch.optim.swa_utils.AveragedModel`, equal
    weights: ``mean += (snapshot - mean) / n``), so a parameter that never changes (a frozen
    layer) keeps its exact value. Only parameters are averaged and loaded: the model keeps its
    own buffers (the averaged copy's are those of construction time). This class adds which
    epochs count and the refusal of batch norm.
    """

    def __init__(self, model: nn.Module, from_epoch: int = 0) -> None:
        """An empty mean for snapshots of ``model`` taken from epoch ``from_epoch`` (0-based).

        Raises:
            ValueError: ``model`` has batch-norm layers, whose running statistics would not
                match the averaged weights.
        """
        if any(isinstance(module, BATCH_NORMS) for module in model.modules()):
            raise ValueError(
                "weight averaging needs recomputed batch-norm statistics; use it with a model"
                " without batch norm (the Whisper backbones)"
            )
        self.from_epoch = from_epoch
        self._averaged = AveragedModel(model)

    def add_epoch_end(self, model: nn.Module, epoch: int) -> None:
        """Fold the weights of ``model`` at the end of ``epoch`` into the mean (from
        ``from_epoch`` on; earlier epochs are left out)."""
        if epoch >= self.from_epoch:
            self.add(model)

    def add(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the mean."""
        self._averaged.update_parameters(model)

    def load_into(self, model: nn.Module) -> None:
        """Replace the parameters of ``model`` by their mean (its buffers stay).

        Raises:
            ValueError: no snapshot was added.
        """
        if not int(self._averaged.n_averaged):
            raise ValueError("no weights were averaged")
        with torch.no_grad():
            for mean, parameter in zip(
                self._averaged.module.parameters(), model.parameters(), strict=True
            ):
                parameter.copy_(mean)
