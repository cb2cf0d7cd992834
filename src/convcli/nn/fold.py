"""The inference model: batch norm folded into the convolution before it.

In evaluation a batch norm is an affine map per channel with fixed numbers, so after a
convolution it can be folded into the convolution's weights and bias (Jacob et al. 2018,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference",
section 3.2). With ``k = gamma / sqrt(var + eps)`` for output channel ``o``::

    w'[o] = w[o] * k[o]        b'[o] = (b[o] - mean[o]) * k[o] + beta[o]

(``b = 0`` for a convolution without bias). The ReLU or ReLU6 the batch norm applied
(`convcli.nn.layers.BatchNorm.act`), or one right after a convolution, is then applied by the
convolution with its bias (`convcli.ops.conv.conv2d_inference`). One pass over each feature
map less, and no batch norm arrays at all.

The folded model is for ``evaluate`` and ``predict`` only: training, ``features`` (whose maps
are the batch norm's outputs) and ``export`` need the batch norm layers as the spec has them.
"""

from __future__ import annotations

import copy

import numpy as np

from convcli.nn import layers as L
from convcli.nn.model import Model, sequences


class Folded(L.Layer):
    """Where a folded batch norm was: the identity (the convolution before it does its work)."""

    def forward(self, x, train, keep=None):
        return x

    def backward(self, dy):
        raise RuntimeError("a folded batch norm has no backward: fold a model for inference only")


def fold_batch_norm(model: Model) -> Model:
    """A copy of ``model`` in evaluation mode whose convolutions absorb the batch norm after them
    and apply the ReLU or ReLU6 that follows; ``model`` is left as it is.

    Its logits are ``model``'s in evaluation mode, to rounding (tests/nn/test_fold.py checks
    every digit network with random batch norm statistics). It has no backward through a folded
    batch norm and cannot be trained.
    """
    folded = copy.deepcopy(model)
    folded.eval()
    folded.inference_only = True
    for seq in sequences(folded.root):
        for i, (layer, after) in enumerate(zip(seq.layers, seq.layers[1:])):
            if not isinstance(layer, L.Conv2d) or layer.act is not None:
                continue
            if isinstance(after, L.BatchNorm):
                _absorb(layer, after)
                layer.act, seq.layers[i + 1] = after.act, Folded()
            elif isinstance(after, L.Activation) and after.name in L.FUSED_ACTIVATIONS and not after.fused:
                layer.act, after.fused = after.name, True
    return folded


def _absorb(conv: L.Conv2d, bn: L.BatchNorm) -> None:
    """Fold ``bn``'s evaluation-mode affine map into ``conv``'s weights and bias (float64, then
    float32)."""
    w = conv.params["w"].astype(np.float64)  # C_out, C_in/G, f, f
    b = conv.params.get("b", np.zeros(len(w), np.float32)).astype(np.float64)
    mean, var = bn.buffers["mean"].astype(np.float64), bn.buffers["var"].astype(np.float64)
    k = bn.params["gamma"].astype(np.float64) / np.sqrt(var + bn.eps)
    conv.params["w"] = (w * k[:, None, None, None]).astype(np.float32)
    conv.params["b"] = ((b - mean) * k + bn.params["beta"].astype(np.float64)).astype(np.float32)
