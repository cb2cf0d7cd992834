"""Time convcli's numpy core against scipy, OpenCV and PyTorch on the same machine, in one run.

    python benchmarks/bench_ops.py [--repeat 7]

Prints one table: the best of ``--repeat`` runs (time.perf_counter) for convcli and for each
anchor, and their ratio (convcli / anchor: below 1 is faster). Anchors that are not installed
are skipped. PyTorch and OpenCV get 2 threads, as on the project's 2-core machines. Not a test:
a shared machine is too noisy for timed assertions.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from convcli.images.kernels import get_kernel
from convcli.ops import conv as conv_module
from convcli.ops.conv import conv2d, conv2d_backward, conv2d_forward
from convcli.ops.filters import gradient_magnitude
from convcli.ops.pool import pool2d, pool2d_backward, pool2d_forward
from convcli.ops.windows import conv_windows

from machine import machine_line


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` calls after one warm-up, in milliseconds."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def optional(name: str):
    """The module, or None when the anchor is not installed."""
    try:
        return __import__(name)
    except ImportError:
        return None


def sobel_rows(repeat: int) -> list[tuple]:
    """(1) Sobel gradient magnitude of a 12-megapixel float32 grayscale image."""
    image = np.random.default_rng(0).random((3000, 4000), dtype=np.float32)
    sx, sy = get_kernel("sobel-x").array("float32"), get_kernel("sobel-y").array("float32")
    ours = best_ms(lambda: gradient_magnitude(image, sx, sy, mode="reflect"), repeat)
    task, rows = "Sobel magnitude 3000x4000 f32", []
    ndimage = optional("scipy.ndimage") and __import__("scipy.ndimage").ndimage
    if ndimage:
        anchor = best_ms(lambda: np.hypot(ndimage.sobel(image, 1), ndimage.sobel(image, 0)), repeat)
        rows.append((task, ours, "scipy.ndimage.sobel x2 + hypot", anchor, "< 1"))
    cv2 = optional("cv2")
    if cv2:
        cv2.setNumThreads(2)
        anchor = best_ms(
            lambda: cv2.magnitude(cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1)), repeat
        )
        rows.append((task, ours, "cv2.Sobel x2 + magnitude", anchor, "< 2"))
    return rows or [(task, ours, "(no anchor installed)", float("nan"), "")]


def torch_rows(repeat: int) -> list[tuple]:
    """(2)-(4) conv and pool on training-sized tensors against PyTorch on the CPU."""
    torch = optional("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 64, 56, 56), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.05
    lenet_x = rng.standard_normal((64, 1, 28, 28), dtype=np.float32)
    lenet_w = rng.standard_normal((6, 1, 5, 5), dtype=np.float32)
    lenet2_x = rng.standard_normal((64, 6, 14, 14), dtype=np.float32)
    lenet2_w = rng.standard_normal((16, 6, 5, 5), dtype=np.float32)

    def conv_train(xa, wa, **kw):
        def run():
            y, cache = conv2d_forward(xa, wa, np.zeros(wa.shape[0], np.float32), **kw)
            return conv2d_backward(np.ones_like(y), cache)

        return run

    def pool_train():
        y, cache = pool2d_forward(x, 2)
        return pool2d_backward(np.ones_like(y), cache)

    ours = {
        "conv fwd 8x64x56x56, 64 3x3 p1": best_ms(lambda: conv2d(x, w, padding=1), repeat),
        "conv fwd same, stride 2": best_ms(lambda: conv2d(x, w, padding=1, stride=2), repeat),
        "conv fwd+bwd same": best_ms(conv_train(x, w, padding=1), repeat),
        "max-pool 2x2 fwd, same tensor": best_ms(lambda: pool2d(x, 2), repeat),
        "max-pool 2x2 fwd+bwd": best_ms(pool_train, repeat),
        "LeNet conv1 fwd+bwd 64x1x28x28, 6 5x5": best_ms(conv_train(lenet_x, lenet_w), repeat),
        "LeNet conv2 fwd+bwd 64x6x14x14, 16 5x5": best_ms(conv_train(lenet2_x, lenet2_w), repeat),
    }
    targets = {"conv fwd 8x64x56x56, 64 3x3 p1": "< 2", "max-pool 2x2 fwd, same tensor": "< 2"}
    if torch is None:
        return [(task, ms, "(torch not installed)", float("nan"), "") for task, ms in ours.items()]
    torch.set_num_threads(2)
    F = torch.nn.functional
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)

    def torch_train(xa, wa, **kw):
        xg, wg = torch.from_numpy(xa).requires_grad_(), torch.from_numpy(wa).requires_grad_()
        bg = torch.zeros(wa.shape[0], requires_grad=True)

        def run():
            y = F.conv2d(xg, wg, bg, **kw)
            y.backward(torch.ones_like(y))

        return run

    def torch_pool_train():
        xg = torch.from_numpy(x).requires_grad_()
        y = F.max_pool2d(xg, 2)
        y.backward(torch.ones_like(y))

    with torch.inference_mode():
        anchors = {
            "conv fwd 8x64x56x56, 64 3x3 p1": best_ms(lambda: F.conv2d(xt, wt, padding=1), repeat),
            "conv fwd same, stride 2": best_ms(lambda: F.conv2d(xt, wt, padding=1, stride=2), repeat),
            "max-pool 2x2 fwd, same tensor": best_ms(lambda: F.max_pool2d(xt, 2), repeat),
        }
    anchors["conv fwd+bwd same"] = best_ms(torch_train(x, w, padding=1), repeat)
    anchors["max-pool 2x2 fwd+bwd"] = best_ms(torch_pool_train, repeat)
    anchors["LeNet conv1 fwd+bwd 64x1x28x28, 6 5x5"] = best_ms(torch_train(lenet_x, lenet_w), repeat)
    anchors["LeNet conv2 fwd+bwd 64x6x14x14, 16 5x5"] = best_ms(torch_train(lenet2_x, lenet2_w), repeat)
    return [(task, ms, "torch (2 threads)", anchors[task], targets.get(task, "")) for task, ms in ours.items()]


def engine_rows(repeat: int) -> list[tuple]:
    """Conv forward+backward under each engine forced, against the engine `choose_engine` picks."""
    rng = np.random.default_rng(2)
    shapes = {
        "8x64x56x56, 64 3x3 p1": ((8, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1),
        "8x16x56x56, 16 3x3 p1": ((8, 16, 56, 56), (16, 16, 3, 3), 1, 1, 1),
        "64x32x16x16, 64 3x3 p1": ((64, 32, 16, 16), (64, 32, 3, 3), 1, 1, 1),
        "64x3x32x32, 32 3x3 p1": ((64, 3, 32, 32), (32, 3, 3, 3), 1, 1, 1),
        "64x1x32x32, 6 5x5 (LeNet C1)": ((64, 1, 32, 32), (6, 1, 5, 5), 0, 1, 1),
        "64x6x14x14, 16 5x5 (LeNet C3)": ((64, 6, 14, 14), (16, 6, 5, 5), 0, 1, 1),
        "64x16x28x28, 16 3x3 p1 (mnist-resnet)": ((64, 16, 28, 28), (16, 16, 3, 3), 1, 1, 1),
        "64x16x28x28, 32 3x3 s2 p1 (resnet)": ((64, 16, 28, 28), (32, 16, 3, 3), 1, 2, 1),
        "64x32x14x14, 64 3x3 p1 (mnist-cnn)": ((64, 32, 14, 14), (64, 32, 3, 3), 1, 1, 1),
        "64x64x7x7, 64 3x3 p1 (resnet)": ((64, 64, 7, 7), (64, 64, 3, 3), 1, 1, 1),
        "64x16x28x28, dw 3x3 p1 (mobilenet)": ((64, 16, 28, 28), (16, 1, 3, 3), 1, 1, 16),
        "64x32x28x28, dw 3x3 s2 p1 (mobilenet)": ((64, 32, 28, 28), (32, 1, 3, 3), 1, 2, 32),
    }
    choose = conv_module.choose_engine
    rows = []
    for task, (x_shape, w_shape, padding, stride, groups) in shapes.items():
        x, w = rng.standard_normal(x_shape, dtype=np.float32), rng.standard_normal(w_shape, dtype=np.float32)
        options = {"padding": padding, "stride": stride, "groups": groups}

        def train(x=x, w=w, options=options):
            y, cache = conv2d_forward(x, w, **options)
            return conv2d_backward(np.ones_like(y), cache)

        chosen = conv2d_forward(x, w, **options)[1].engine
        times = {}
        g = conv_windows(x_shape[2], x_shape[3], w_shape[2], w_shape[3], stride, padding)
        for engine in (e for e in conv_module.ENGINES if conv_module.engine_fits(e, g, w, groups)):
            conv_module.choose_engine = lambda g, w, groups=1, engine=engine: engine
            try:
                times[engine] = best_ms(train, repeat)
            finally:
                conv_module.choose_engine = choose
        for engine, ms in times.items():
            if engine != chosen:
                rows.append((f"fwd+bwd {task}, {engine}", ms, f"chosen: {chosen}", times[chosen], ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement (best is kept)")
    args = parser.parse_args()
    rows = sobel_rows(args.repeat) + torch_rows(args.repeat) + engine_rows(args.repeat)
    print(machine_line())  # after the rows: torch and OpenCV are imported by then
    print(f"{'task':62} {'convcli ms':>10}  {'anchor':32} {'anchor ms':>9} {'ratio':>6}  target")
    for task, ours, anchor, theirs, target in rows:
        print(f"{task:62} {ours:10.2f}  {anchor:32} {theirs:9.2f} {ours / theirs:6.2f}  {target}")


if __name__ == "__main__":
    main()
