"""Small networks that train well on handwritten digits in numpy, written as spec words.

``convcli train`` picks ``digits-cnn`` for the 8x8 digits and ``mnist-cnn`` for 28x28 data when
no spec is given; every name here can also be typed as the SPEC (``convcli train mnist-resnet``).
The zoo's ``lenet5`` (32x32x1) trains on MNIST too, padded as LeCun did.
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
}

# image size of the data -> the network used when no spec is given
DEFAULT_FOR_SIZE = {(8, 8): "digits-cnn", (28, 28): "mnist-cnn"}
