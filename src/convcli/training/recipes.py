"""Small networks that train well on handwritten digits in numpy, written as spec words, and the
training settings each network gets by default.

``convcli train`` picks ``digits-cnn`` for the 8x8 digits and ``mnist-cnn`` for 28x28 data when
no spec is given; the networks are zoo entries, so every name can be typed as the SPEC of any
command (``convcli train mnist-resnet``, ``convcli flops mnist-inception``).
The zoo's ``lenet5`` (32x32x1) trains on MNIST too, padded as LeCun did. The four ``mnist-*``
networks are one of each family (plain, residual, depthwise-separable, Inception), so that
training each on the same data compares accuracy, parameters, MACs and time per epoch.
"""

from __future__ import annotations

# The digit networks themselves are zoo entries, so that params, flops and shape-calc take their
# names too.
from convcli.networks.zoo import DIGIT_NETWORKS as TRAINABLE  # noqa: F401  (re-exported)

# image size of the data -> the network used when no spec is given
DEFAULT_FOR_SIZE = {(8, 8): "digits-cnn", (28, 28): "mnist-cnn"}

# Settings for data of an image size (8x8 digits; anything else), then per network, on top.
SIZE_SETTINGS: dict[tuple[int, int] | None, dict] = {
    (8, 8): {"epochs": 20, "batch_size": 32, "optimizer": "adam", "lr": 0.003, "schedule": "cosine"},
    None: {"epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "schedule": "cosine"},
}
RECIPES: dict[str, dict] = {
    # over 99.0% on MNIST's test set in 10 epochs (LeCun et al. 1998 report 99.05%): SGD with
    # momentum 0.9, lr 0.01 annealed by a cosine, L2 on the weights against overfitting, batch 32.
    # Measured with `convcli train lenet5 --data mnist` (10% held out), seeds 0, 1, 2: 99.19%,
    # 99.08%, 99.16%; at batch 64 98.99%, 99.09%, and on all 60,000 images (benchmarks/
    # bench_train.py, batch 64) 99.23%, 99.12%, 99.25%. lr 0.05 reached only 98.99% there.
    "lenet5": {"optimizer": "momentum", "lr": 0.01, "schedule": "cosine", "weight_decay": 5e-4, "batch_size": 32},
}


def default_settings(name: str, image_size: tuple[int, int]) -> dict:
    """The training settings a network called ``name`` gets on images of ``image_size`` (H, W).

    >>> default_settings("lenet5", (28, 28))["optimizer"], default_settings("mnist-cnn", (28, 28))["lr"]
    ('momentum', 0.003)
    """
    base = SIZE_SETTINGS.get(image_size, SIZE_SETTINGS[None])
    return {**base, **RECIPES.get(name, {})}
