"""The numpy compute core: convolution, pooling and image filtering, forward and backward.

Array layout
------------
One layout everywhere, PyTorch's; convert at the edges (image loading, plotting) only.

- Batches are NCHW: ``x.shape == (N, C_in, H, W)``.
- Convolution weights are ``(C_out, C_in/groups, fH, fW)``, bias ``(C_out,)``.
- Outputs are ``(N, C_out, H', W')``; global pooling keeps the axes: ``(N, C, 1, 1)``.
- ``conv2d`` and ``pool2d`` also take one image as ``(C, H, W)`` or ``(H, W)`` (an (fH, fW)
  kernel for one channel) and return it in the same form; the ``*_forward``/``*_backward``
  pairs used in training take NCHW only.
- float64 in gives float64 out; every other real dtype computes in float32.

Conventions
-----------
"Convolution" is cross-correlation, as in PyTorch and OpenCV's ``filter2D``: the kernel is not
flipped. ``flip=True`` gives true convolution (``scipy.signal.convolve2d``). Border modes take
PyTorch's names; `convcli.ops.windows` maps them to numpy, scipy.ndimage and OpenCV.

Image API (`convcli.ops.filters`)
---------------------------------
``filter2d(image, kernel, mode="reflect")`` filters every (H, W) plane with one kernel (rank-1
kernels run as two 1-D passes); ``gradient_magnitude(image, kx, ky)`` gives
``sqrt(gx^2 + gy^2)``; kernels by name come from `convcli.images.kernels`.

Training API (`convcli.ops.conv`, `convcli.ops.pool`)
----------------------------------------------------
Each forward that training uses returns ``(y, cache)``; the matching backward takes
``(dy, cache)`` and recomputes nothing::

    y, cache = conv2d_forward(x, w, b, stride=1, padding=1)
    dx, dw, db = conv2d_backward(dy, cache)
    y, cache = pool2d_forward(x, 2)
    dx = pool2d_backward(dy, cache)
"""
