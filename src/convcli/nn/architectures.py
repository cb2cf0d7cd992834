"""Small networks that train well on handwritten digits in numpy, written as spec words, and the
training settings each network gets by default.

``convcli train`` picks ``digits-cnn`` for the 8x8 digits and ``mnist-cnn`` for 28x28 data when
no spec is given; every name here can also be typed as the SPEC (``convcli train mnist-resnet``).
The zoo's ``lenet5`` (32x32x1) trains on MNIST too, padded as LeCun did. The four ``mnist-*``
networks are one of each family (plain, residual, depthwise-separable, Inception), so that
training each on the same data compares accuracy, parameters, MACs and time per epoch.
"""

from __future__ import annotations

TRAINABLE: dict[str, str] = {
    # 98% test accuracy on the built-in digits in about 3 s (20 epochs, Adam, cosine)
    "digits-cnn": "8x8x1 conv:32,f=3,p=same relu maxpool:2 conv:64,f=3,p=same relu flatten dropout:0.3 fc:10",
    "mnist-cnn": "28x28x1 conv:32,f=3,p=same relu maxpool:2 conv:64,f=3,p=same relu maxpool:2 "
                 "flatten dropout:0.3 fc:10",
    "mnist-resnet": "28x28x1 conv:16,f=3,p=1,bias=0 bn relu res:16 res:32,s=2 res:64,s=2 gap flatten fc:10",
    "mnist-mobilenet": "28x28x1 conv:16,f=3,p=1,bias=0 bn relu6 dwsep:32 dwsep:64,s=2 dwsep:128,s=2 "
                       "gap flatten fc:10",
    # GoogLeNet's module (1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1, batch norm as torchvision) at 14x14
    # (8+16+8+8 = 40 maps) and 7x7 (16+32+16+16 = 80 maps)
    "mnist-inception": "28x28x1 conv:16,f=3,p=1,bias=0 bn relu maxpool:2 inception:8,8-16,4-8,8,bn=1 "
                       "maxpool:2 inception:16,16-32,8-16,16,bn=1 gap flatten fc:10",
}

# image size of the data -> the network used when no spec is given
DEFAULT_FOR_SIZE = {(8, 8): "digits-cnn", (28, 28): "mnist-cnn"}

# Settings for data of an image size (8x8 digits; anything else), then per network, on top.
SIZE_SETTINGS: dict[tuple[int, int] | None, dict] = {
    (8, 8): {"epochs": 20, "batch_size": 32, "optimizer": "adam", "lr": 0.003, "schedule": "cosine"},
    None: {"epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "schedule": "cosine"},
}
RECIPES: dict[str, dict] = {
    # 99.0% on MNIST's test set in 10 epochs (LeCun et al. 1998 report 99.05%): SGD with
    # momentum 0.9, a high rate annealed by a cosine, and L2 on the weights against overfitting
    "lenet5": {"optimizer": "momentum", "lr": 0.05, "schedule": "cosine", "weight_decay": 5e-4},
}


def default_settings(name: str, image_size: tuple[int, int]) -> dict:
    """The training settings a network called ``name`` gets on images of ``image_size`` (H, W).

    >>> default_settings("lenet5", (28, 28))["optimizer"], default_settings("mnist-cnn", (28, 28))["lr"]
    ('momentum', 0.003)
    """
    base = SIZE_SETTINGS.get(tuple(image_size), SIZE_SETTINGS[None])
    return {**base, **RECIPES.get(name, {})}
