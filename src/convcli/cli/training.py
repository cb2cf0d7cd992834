"""train, train-filter, evaluate, predict, features and export: CNNs trained from scratch in numpy,
what they see, and written out for other frameworks. numpy is imported in the commands, not here."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from convcli.cli.options import Backend, Device, JsonOpt, Optimizer, Schedule, command_app, output_option

app = command_app()

DataOpt = typer.Option(
    None,
    "--data",
    metavar="DATA",
    help="digits (built in, 8x8), mnist (downloaded once), or a path: a directory "
    "of MNIST IDX files, an .npz, or an image folder root/<class>/*.png.",
)
DataDirOpt = typer.Option(
    None,
    "--data-dir",
    metavar="DIR",
    help="Where 'mnist' is cached, in DIR/mnist [default: $CONVCLI_DATA, else "
    "~/.cache/convcli]; it is downloaded from $CONVCLI_MNIST_MIRROR if set.",
)


@app.command()
def train(
    words: list[str] | None = typer.Argument(
        None,
        metavar="[SPEC...]",
        show_default=False,
        help="Layer words (8x8x1 conv:16,f=3 ...), a zoo name such as lenet5, a .json spec, or one "
        "of digits-cnn, mnist-cnn, mnist-resnet, mnist-mobilenet, mnist-inception. Default: "
        "digits-cnn for 8x8 data, mnist-cnn for 28x28.",
    ),
    data: str | None = DataOpt,
    data_dir: Path | None = DataDirOpt,
    mirror: str | None = typer.Option(
        None,
        "--mirror",
        metavar="URL",
        help="Where --data mnist downloads from [default: $CONVCLI_MNIST_MIRROR, else a public mirror].",
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Total epochs [default: 20 for 8x8 data, else 10]."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="[default: 32 for 8x8 data and lenet5, else 64]"),
    optimizer: Optimizer | None = typer.Option(
        None, "--optimizer", help="momentum and nesterov: SGD with momentum 0.9 [default: adam; momentum for lenet5]."
    ),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate [default: 0.003; 0.01 for lenet5]."),
    schedule: Schedule | None = typer.Option(None, "--schedule", help="Learning-rate schedule [default: cosine]."),
    weight_decay: float | None = typer.Option(
        None, "--weight-decay", help="L2 on the weights [default: 0; 5e-4 for lenet5]."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seeds weights, validation split and shuffling [default: 0]."),
    validation: float | None = typer.Option(
        None, "--validation", help="Fraction of the training images held out [default: 0.1]."
    ),
    output: Path | None = output_option("FILE.npz", "Checkpoint, written atomically after every epoch."),
    resume: Path | None = typer.Option(
        None, "--resume", metavar="FILE.npz", help="Continue a checkpoint up to --epochs (saved to it unless -o)."
    ),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        metavar="FILE.png",
        help="Draw loss and accuracy per epoch (train and validation), redrawn after every epoch.",
    ),
    backend: Backend = typer.Option(
        Backend.numpy,
        "--backend",
        help="What computes: convcli's numpy layers, or PyTorch (needs convcli[torch]; runs "
        "data-parallel under torchrun). The same spec, settings and checkpoint either way.",
    ),
    device: Device | None = typer.Option(
        None, "--device", help="Where --backend torch computes [default: auto, a CUDA GPU when there is one]."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Train a CNN in numpy (or on PyTorch) and report test accuracy, the confusion matrix and a
    summary (parameters, MACs per image, seconds per epoch) that compares across networks.

    With no SPEC, a small CNN on the built-in 8x8 digits (about 98% test accuracy in a few
    seconds). Images are normalised with the training part's mean and standard deviation, which
    are saved in the checkpoint with the weights, the spec, the class names and the history.
    28x28 data feeds a 32x32 network (lenet5) padded by 2 pixels, as LeCun did. Ctrl-C stops
    after keeping the last complete epoch's checkpoint.

    Defaults: Adam, lr 0.003, cosine schedule, 20 epochs of batch 32 on 8x8 data and 10 of
    batch 64 otherwise. lenet5 has its own recipe, SGD with momentum 0.9, lr 0.01, cosine,
    weight decay 5e-4, batch 32: over 99% test accuracy on MNIST in 10 epochs. Options given
    win; --resume keeps the checkpoint's settings.

    --backend torch trains the same model (the same initial weights, optimiser and schedule) on
    PyTorch, and writes the same checkpoint; under torchrun, one process per GPU or CPU share
    trains with DistributedDataParallel, --batch-size split between them, and the first process
    prints and writes.

    \b
    Examples:
      convcli train
      convcli train -o digits.npz --json | jq .test_accuracy
      convcli train mnist-resnet --data mnist --backend torch -o resnet.npz
      torchrun --nproc-per-node 2 -m convcli train --backend torch -o digits.npz
      convcli train lenet5 --data mnist -o lenet5.npz --plot lenet5.png
      convcli train mnist-inception --data mnist --epochs 3
      convcli train --resume lenet5.npz --epochs 15
    """
    from convcli.render.training import TrainingDisplay, show_training
    from convcli.training.run import TrainRequest
    from convcli.training.run import train as run

    request = TrainRequest(
        words=tuple(words or ()),
        data=data,
        data_dir=data_dir,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer.value if optimizer else None,
        lr=lr,
        schedule=schedule.value if schedule else None,
        weight_decay=weight_decay,
        seed=seed,
        validation=validation,
        output=output,
        resume=resume,
        plot=plot,
        mirror=mirror,
        backend=backend.value,
        device=device.value if device else None,
    )
    display = TrainingDisplay(quiet=json_out)
    try:
        result = run(request, display)
    finally:
        display.close()
    if result.placement.rank == 0:  # of several processes, the first shows the result
        show_training(result, json_out)
    if result.interrupted:
        raise typer.Exit(130)


@app.command("train-filter")
def train_filter(
    images: list[Path] = typer.Argument(
        ..., metavar="IMAGE...", show_default=False, help="Images to learn from (grey; colour is converted)."
    ),
    target: str = typer.Option(
        ...,
        "--target",
        "-t",
        metavar="KERNEL",
        help="The kernel to reproduce: a name from 'convcli conv --list-kernels'.",
    ),
    steps: int = typer.Option(300, "--steps", help="Gradient-descent steps (one step: every image)."),
    lr: float | None = typer.Option(
        None, "--lr", show_default=False, help="Learning rate [default: 1 / (fH x fW), 1/9 for 3x3]."
    ),
    size: int = typer.Option(
        128,
        "--size",
        help="Shrink each image so its shorter side is at most this, then centre-crop all to the same square.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seeds the random initial weights."),
    plot: Path | None = typer.Option(None, "--plot", metavar="FILE.png", help="Draw the loss per step (log scale)."),
    json_out: bool = JsonOpt,
) -> None:
    """Learn a kernel's weights by gradient descent: a one-kernel CNN trained until convolving
    the images gives what the --target kernel gives.

    The weights start random (--seed); each step convolves the standardised images, compares
    with the target's response (mean squared error over every valid pixel), and moves the
    weights down the gradient with momentum 0.9. The error falling and the weights converging
    are printed on stderr; the learned matrix beside the target, and the final MSE, on stdout.
    The loss is quadratic in the weights, so they converge to the target's exactly.

    \b
    Examples:
      convcli train-filter sample_images/*.png --target sobel-x
      convcli train-filter photo.jpg -t laplacian --steps 500 --plot loss.png
      convcli train-filter photo.jpg -t gaussian-5 --json | jq .max_abs_error
    """
    from convcli.render.training import FilterDisplay, show_filter
    from convcli.training.filter_fit import FilterRequest, learn_filter

    display = FilterDisplay(quiet=json_out)
    try:
        request = FilterRequest(
            images=tuple(images), target=target, steps=steps, lr=lr, size=size, seed=seed, plot=plot
        )
        result = learn_filter(request, display)
    finally:
        display.close()
    show_filter(result, json_out)


@app.command()
def evaluate(
    model: Path = typer.Argument(..., metavar="MODEL.npz", help="A checkpoint written by 'convcli train'."),
    data: str | None = DataOpt,
    data_dir: Path | None = DataDirOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Accuracy, per-class precision and recall, and the confusion matrix on a test set.

    The test set is the test part of --data (default: the data the model was trained on),
    normalised with the statistics saved in the checkpoint.

    \b
    Examples:
      convcli evaluate digits.npz
      convcli evaluate lenet5.npz --data /path/to/mnist --json | jq .accuracy
    """
    from convcli.render.training import show_evaluation
    from convcli.training.trained import evaluate_checkpoint

    show_evaluation(evaluate_checkpoint(model, data, data_dir), json_out)


@app.command()
def predict(
    model: Path = typer.Argument(..., metavar="MODEL.npz", help="A checkpoint written by 'convcli train'."),
    images: list[Path] = typer.Argument(..., metavar="IMAGE...", help="Photos or scans of single digits."),
    top: int = typer.Option(3, "--top", "-k", help="How many classes to list per image."),
    json_out: bool = JsonOpt,
) -> None:
    """Classify images of single digits, prepared as MNIST's were.

    Each image is made grayscale, inverted if its background is light, cropped to the ink,
    fitted in a 20x20 box and centred by its centre of mass in a 28x28 field, then padded
    (or resized) to the model's input.

    \b
    Examples:
      convcli predict lenet5.npz seven.jpg
      convcli predict lenet5.npz *.png --top 1 --json | jq -r '.[].prediction'
    """
    from convcli.render.training import show_predictions
    from convcli.training.trained import predict_files

    show_predictions(predict_files(model, list(images), top), json_out)


@app.command()
def export(
    words: list[str] = typer.Argument(
        ...,
        metavar="MODEL...",
        show_default=False,
        help="A checkpoint (.npz) written by 'convcli train', or a spec: layer words, a zoo name such "
        "as lenet5 or mnist-resnet, or a .json file (then the weights are random).",
    ),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        metavar="FILE.onnx|FILE.py",
        show_default=False,
        help=".onnx: an ONNX model (opset 17; needs convcli[onnx]). .py: a PyTorch module whose "
        "Net.from_checkpoint() loads the weights from the checkpoint.",
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        show_default=False,
        help="Seeds a spec's random weights, as 'convcli train --seed' [default: 0].",
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Write a trained model, or a spec's architecture, as an ONNX file or a PyTorch module.

    The model takes 'image' (N x C x H x W float32, the images it was trained on, values in
    [0, 1]) and gives 'logits' (N x classes). The checkpoint's input preparation is part of it:
    the zero padding of 28x28 digits into a 32x32 input and the normalisation (x - mean) / std.
    ONNX: the layers as ONNX operators (batch norm in evaluation mode, dropout as Identity),
    the preparation also stated in the metadata. PyTorch: one attribute per layer and the
    forward pass written out; the weights stay in the .npz, read with numpy by
    Net.from_checkpoint(). 'python FILE.py' prints the layers and the parameter count.

    \b
    Examples:
      convcli export lenet5.npz -o lenet5.onnx
      convcli export lenet5.npz -o lenet5.py && python lenet5.py
      convcli export mnist-resnet -o resnet.onnx --json | jq .params
    """
    from convcli.interop.export import ExportRequest
    from convcli.interop.export import export as run
    from convcli.render.export import show_export

    show_export(run(ExportRequest(tuple(words), output, seed)), json_out)


@app.command()
def features(
    model: Path = typer.Argument(..., metavar="MODEL.npz", help="A checkpoint written by 'convcli train'."),
    image: Path = typer.Argument(..., metavar="IMAGE", help="A photo or scan of one digit."),
    output: str = typer.Option(
        ...,
        "-o",
        "--output",
        metavar="PREFIX|DIR",
        help="Where the files go: PREFIX-filters.png, PREFIX-conv1.png ..., PREFIX-gradcam.png, "
        "PREFIX-gradcam.npy, PREFIX-saliency.npy; in a folder (DIR/ is made if need be), the image's "
        "name is the prefix.",
    ),
    layer: int | None = typer.Option(
        None, "--layer", metavar="N", help="Draw the maps of convolution N only (from 1, as the table lists them)."
    ),
    target: str | None = typer.Option(
        None, "--class", metavar="K", help="Explain class K instead of the predicted one."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """What a trained network sees in an image: its first filters, every convolution's maps, and
    where the class comes from (Grad-CAM and saliency), with convcli's own forward and backward.

    The image is prepared as 'predict' prepares it. The first convolution's filters are drawn in
    one colour scale, each with the nearest named kernel and its cosine distance (0: the kernel,
    scaled); each convolution's maps, through the batch norm and activation after it, one picture
    per convolution; Grad-CAM at the last convolution and the gradient saliency, on the input
    and, through predict's crop and resize, on the photo. The heat maps are also written as .npy
    (the input's size). The table lists each convolution's mean and the units a ReLU left at zero.

    \b
    Examples:
      convcli features lenet5.npz seven.png -o out/
      convcli features digits.npz seven.png -o seven --layer 2 --class 1
      convcli features lenet5.npz seven.png -o out/ --json | jq .gradcam.peak
    """
    from convcli.render.features import show_features
    from convcli.training.features import FeaturesRequest
    from convcli.training.features import features as run

    folder = output.endswith(("/", os.sep))
    request = FeaturesRequest(model=model, image=image, output=Path(output), folder=folder, layer=layer, target=target)
    show_features(run(request), json_out)
