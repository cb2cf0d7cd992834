"""Softmax and the softmax cross-entropy every classifier here is trained with."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``z - logsumexp(z)`` per row of ``logits`` (N, K).

    The row maximum is subtracted first, so ``exp`` never overflows and the log of a probability
    too small for floats stays finite.

    >>> log_softmax(np.array([[0.0, 0.0], [0.0, 2000.0]])).round(4).tolist()
    [[-0.6931, -0.6931], [-2000.0, 0.0]]
    """
    z = logits - logits.max(axis=1, keepdims=True)  # N, K
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities per row of ``logits`` (N, K): ``exp(z) / sum(exp(z))``.

    >>> softmax(np.array([[1.0, 1.0, 1.0, 1.0]])).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """
    return np.exp(log_softmax(logits))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against integer ``labels``, and its gradient.

    ``loss = mean_n(logsumexp(z_n) - z_n[y_n])``; ``dloss/dz = (softmax(z) - onehot(y)) / N``.

    Examples
    --------
    >>> loss, grad = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6) == round(float(np.log(4)), 6), grad[0].tolist()
    (True, [-0.375, 0.125, 0.125, 0.125])
    """
    n = len(labels)
    log_p = log_softmax(logits)
    loss = float(-np.mean(log_p[np.arange(n), labels]))
    grad = np.exp(log_p)
    grad[np.arange(n), labels] -= 1
    return loss, grad / n
