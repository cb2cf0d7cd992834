"""Softmax cross-entropy, the loss every classifier here is trained with."""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against integer ``labels``, and its gradient.

    ``loss = mean_n(logsumexp(z_n) - z_n[y_n])``; ``dloss/dz = (softmax(z) - onehot(y)) / N``.
    The row maximum is subtracted first so ``exp`` never overflows.

    Examples
    --------
    >>> loss, grad = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6) == round(float(np.log(4)), 6), grad[0].tolist()
    (True, [-0.375, 0.125, 0.125, 0.125])
    """
    n = len(labels)
    z = logits - logits.max(axis=1, keepdims=True)  # N, K
    e = np.exp(z)
    total = e.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(total[:, 0]) - z[np.arange(n), labels]))
    grad = e / total
    grad[np.arange(n), labels] -= 1
    return loss, grad / n
