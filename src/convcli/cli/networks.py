"""shape-calc, params, flops and draw: the network arithmetic commands and the picture. No numpy here."""

from __future__ import annotations

from pathlib import Path

import typer

from convcli.cli.options import Convention, JsonOpt, Optimizer, Style, command_app, usage_error
from convcli.draw.choices import DEFAULT_WIDTH, STYLES

app = command_app()

SpecWords = typer.Argument(
    None,
    metavar="SPEC...",
    show_default=False,
    help="An input shape and layer words (28x28x1 conv:6,f=5 ...), a zoo "
    "name (see 'convcli params --list'), a .json spec file, a .npz checkpoint (the network it trains) "
    "or a .onnx model.",
)
InputOpt = typer.Option(
    None,
    "--input",
    metavar="HxWxC",
    help="Another input shape for a zoo model, spec file, checkpoint or .onnx model (also NxCxHxW: "
    "fills a model file's dynamic dimensions).",
)
StrictOpt = typer.Option(False, "--strict", help="Refuse a model file with operators convcli does not know.")
ExpandOpt = typer.Option(False, "--expand", "-e", help="Show the layers inside blocks too.")


def _load(
    words: list[str] | None, input_shape: str | None, convention: Convention = Convention.pytorch, strict: bool = False
):
    from convcli.networks import spec
    from convcli.networks.load import load_network

    network = load_network(words or [], input_shape, strict)
    return spec.tf_convention(network) if convention is Convention.tf else network


def _refuse(context: str, given: dict[str, bool], why: str = "") -> None:
    """A usage error for the first option in ``given`` that is set but would be ignored."""
    for name, is_set in given.items():
        if is_set:
            raise usage_error(f"{name} does not apply {context}{why}")


def _check_expand(expand: bool, json_out: bool) -> None:
    _refuse(
        "with --json",
        {"--expand": expand and json_out},
        ': the JSON always lists the layers inside blocks ("children")',
    )


@app.command("shape-calc")
def shape_calc(
    words: list[str] | None = SpecWords,
    n: int | None = typer.Option(None, "-n", "--size", help="Single layer: input size on one axis."),
    f: int | None = typer.Option(None, "-f", "--kernel", help="Single layer: kernel (window) size."),
    s: int | None = typer.Option(
        None, "-s", "--stride", help="Single layer: stride [default: 1; the window size with --pool]."
    ),
    p: str = typer.Option("0", "-p", "--padding", help="Single layer: an int, valid, same, full or tf."),
    d: int = typer.Option(1, "-d", "--dilation", help="Single layer: dilation."),
    pool: bool = typer.Option(False, "--pool", help="Single layer: a pooling window (stride defaults to f)."),
    ceil: bool = typer.Option(False, "--ceil", help="Single layer: pooling in ceil mode."),
    transposed: bool = typer.Option(False, "--transposed", help="Single layer: a transposed convolution."),
    output_padding: int = typer.Option(0, "--output-padding", help="Single layer: output padding (--transposed)."),
    convention: Convention = typer.Option(
        Convention.pytorch, "--convention", help="pytorch: 'same' needs stride 1; tf: 'same' is TensorFlow's SAME."
    ),
    animate: Path | None = typer.Option(
        None,
        "--animate",
        metavar="FILE",
        help="Single layer: draw the window at every output position, as a .gif or a .png sheet of frames.",
    ),
    frames: int | None = typer.Option(
        None, "--frames", metavar="N", help="With --animate: at most N frames, spread over the output positions."
    ),
    input_shape: str | None = InputOpt,
    strict: bool = StrictOpt,
    expand: bool = ExpandOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Output sizes, floor((n + 2p - f)/s) + 1, for one layer or through a whole network.

    For a network: each layer's output shape (H x W x C), activation count, receptive field,
    jump (effective stride) and start, the flatten size, and a warning wherever rows or columns
    are dropped because (n + 2p - f) is not a multiple of s.

    \b
    Examples:
      convcli shape-calc -n 7 -f 3 -s 2            # prints 3
      convcli shape-calc -n 224 -f 3 -s 2 -p same --convention tf
      convcli shape-calc -n 4 -f 2 -s 2 --transposed
      convcli shape-calc -n 5 -f 3 -s 2 -p 1 --animate conv.gif
      convcli shape-calc 39x39x3 conv:10,f=3 conv:20,f=5,s=2 conv:40,f=5,s=2 flatten
      convcli shape-calc resnet50 --input 32x32x3 --json | jq .output_shape
    """
    from convcli.render import networks as render

    single = {
        "-n": n is not None,
        "-f": f is not None,
        "-s": s is not None,
        "-p": p != "0",
        "-d": d != 1,
        "--pool": pool,
        "--ceil": ceil,
        "--transposed": transposed,
        "--output-padding": output_padding != 0,
    }
    if words and any(single.values()):
        raise usage_error("give either a network (SPEC words) or one layer (-n, -f, ...), not both")
    if animate is not None and words:
        raise usage_error("--animate draws one layer (-n, -f, ...), not a network; see 'convcli draw'")
    if frames is not None and animate is None:
        raise usage_error("--frames goes with --animate")
    if not words:
        if n is None or f is None:
            raise usage_error("give a network (e.g. 28x28x1 conv:6,f=5) or one layer with -n and -f")
        _refuse(
            "to one layer (-n, -f, ...)", {"--input": input_shape is not None, "--expand": expand, "--strict": strict}
        )
        from convcli.shapes import axis, parse_padding

        layer = axis(
            n=n,
            f=f,
            s=s,
            padding=parse_padding(p, convention.value),
            d=d,
            pool=pool,
            ceil=ceil,
            transposed=transposed,
            output_padding=output_padding,
        )
        if animate is not None:
            from convcli.draw.arithmetic import animate as draw_animation
            from convcli.render.emit import note

            shown, written = draw_animation(animate, layer, cap=frames)
            note(f"wrote {written} ({len(shown)} frames)")
        render.show_axis(layer, json_out=json_out)
        return
    _check_expand(expand, json_out)
    from convcli.networks.report import analyse

    report = analyse(_load(words, input_shape, convention, strict))
    if json_out:
        render.emit_report_json(report)
    else:
        render.show_shapes(report, expand)


@app.command()
def params(
    words: list[str] | None = SpecWords,
    input_shape: str | None = InputOpt,
    keras: bool = typer.Option(
        False, "--keras", help="Count as Keras does: batch norm running statistics included, as non-trainable."
    ),
    bias: bool = typer.Option(True, "--bias/--no-bias", help="Count the biases of conv and fc layers."),
    list_zoo: bool = typer.Option(False, "--list", help="List the built-in architectures (the zoo)."),
    strict: bool = StrictOpt,
    memory: bool = typer.Option(
        False, "--memory", help="Bytes per layer and the peaks of inference and of a training step, float32."
    ),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Images per batch, with --memory."),
    optimizer: Optimizer = typer.Option(
        "adam", "--optimizer", help="Whose state a training step keeps, with --memory."
    ),
    expand: bool = ExpandOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Parameter counts per layer and in total, trainable and non-trainable.

    Counts follow PyTorch (batch norm: gamma and beta; its running statistics are buffers) unless
    --keras is given. --memory estimates, from the shapes alone, what convcli's numpy layers take
    for a batch: weights, activations, what the forward keeps for the backward (im2col columns,
    masks, batch norm statistics), the optimiser's state (SGD none, momentum one copy, Adam two)
    and the peaks of inference and of a training step ('convcli train' prints it beside the
    measured peak).

    \b
    Examples:
      convcli params --list
      convcli params resnet50
      convcli params vgg16-bn --keras
      convcli params 32x32x3 conv:32,f=3,p=same bn relu maxpool:2 flatten fc:10
      convcli params mobilenet-v2 --json | jq .total.params
      convcli params model.onnx --input 1x3x224x224
      convcli params resnet50 --memory --batch-size 32 --optimizer momentum
    """
    from convcli.render import networks as render

    if list_zoo:
        _refuse(
            "with --list",
            {
                "SPEC": bool(words),
                "--input": input_shape is not None,
                "--keras": keras,
                "--no-bias": not bias,
                "--expand": expand,
                "--strict": strict,
                "--memory": memory,
            },
        )
        from convcli.networks.zoo import zoo_table

        render.show_zoo(zoo_table(), json_out)
        return
    _check_expand(expand, json_out)
    _refuse(
        "without --memory",
        {"--batch-size": batch_size != 1 and not memory, "--optimizer": optimizer.value != "adam" and not memory},
    )
    from convcli.networks.costs import Counting
    from convcli.networks.report import analyse

    report = analyse(_load(words, input_shape, strict=strict), Counting(bias=bias, keras=keras))
    if memory:
        from convcli.nn.memory import estimate

        render.show_memory(report, estimate(report, batch_size, optimizer.value), expand, json_out)
    elif json_out:
        render.emit_report_json(report)
    else:
        render.show_params(report, expand)


def _include(text: str | None) -> frozenset:
    from convcli.networks.costs import EXTRA_KINDS

    if not text:
        return frozenset()
    kinds = {k.strip().lower() for k in text.split(",") if k.strip()}
    if "all" in kinds:
        return frozenset(EXTRA_KINDS)
    unknown = kinds - set(EXTRA_KINDS)
    if unknown:
        raise usage_error(f"--include {sorted(unknown)[0]!r}: choose from {', '.join(EXTRA_KINDS)} or all")
    return frozenset(kinds)


@app.command()
def flops(
    words: list[str] | None = SpecWords,
    input_shape: str | None = InputOpt,
    include: str | None = typer.Option(
        None,
        "--include",
        metavar="KINDS",
        help="Also count, comma separated: bias, bn, act, pool, add, mul, or all.",
    ),
    bias: bool = typer.Option(True, "--bias/--no-bias", help="Count conv and fc layers with their biases."),
    bottleneck: int | None = typer.Option(
        None, "--bottleneck", metavar="K", help="compare: channels of the 1x1 bottleneck [default: C_in/4]."
    ),
    strict: bool = StrictOpt,
    expand: bool = ExpandOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Multiply-accumulates (MACs) and FLOPs per layer and in total; or compare designs.

    MACs count the multiply-accumulates of conv, convT and fc layers (what torchvision's
    "GFLOPS" and ptflops' "GMac" report); FLOPs = 2 x MACs, plus whatever --include adds.
    Transposed convolutions are counted on their input size.

    'convcli flops compare HxWxC conv:C,f=F' prices one convolution as standard, as
    depthwise-separable and behind a 1x1 bottleneck, with the closed form 1/C + 1/F^2;
    'convcli flops compare HxWxC inception:...' prices an Inception module with and without
    its 1x1 reductions.

    \b
    Examples:
      convcli flops alexnet
      convcli flops resnet50 --include all --json | jq .total
      convcli flops compare 28x28x192 conv:32,f=5,p=same --bottleneck 16
      convcli flops compare 28x28x192 inception:64,96-128,16-32,32
    """
    from convcli.render import networks as render

    kinds = _include(include)
    if words and words[0] == "compare":
        if len(words) != 3:
            raise usage_error("compare takes an input shape and one layer: convcli flops compare 56x56x64 conv:128,f=3")
        _refuse(
            "to 'flops compare'",
            {
                "--input": input_shape is not None,
                "--include": bool(kinds),
                "--no-bias": not bias,
                "--expand": expand,
                "--strict": strict,
            },
        )
        from convcli.networks.compare import compare

        render.show_compare(compare(words[1], words[2], bottleneck), json_out)
        return
    if bottleneck is not None:
        raise usage_error("--bottleneck goes with 'flops compare'")
    _refuse(
        "without --include bias (or all)",
        {"--no-bias": not bias and "bias" not in kinds},
        ": FLOPs count biases only as bias adds",
    )
    _check_expand(expand, json_out)
    from convcli.networks.costs import Counting
    from convcli.networks.report import analyse

    report = analyse(_load(words, input_shape, strict=strict), Counting(bias=bias, include=kinds))
    if json_out:
        render.emit_report_json(report)
    else:
        render.show_flops(report, expand)


@app.command()
def draw(
    words: list[str] | None = SpecWords,
    output: list[Path] = typer.Option(
        ..., "-o", "--output", metavar="FILE", help="The picture, .svg or .png; give -o twice for both (one layout)."
    ),
    input_shape: str | None = InputOpt,
    expand: bool = typer.Option(False, "--expand", "-e", help="Draw the layers inside blocks, not one map a block."),
    style: Style = typer.Option(
        STYLES[0], "--style", help="3d: feature maps as boxes; flat: a plain block diagram, one rectangle a layer."
    ),
    width: int = typer.Option(DEFAULT_WIDTH, "--width", metavar="PIXELS", help="Wrap into rows this wide."),
    strict: bool = StrictOpt,
) -> None:
    """Draw a network: its feature maps as boxes, with their shapes and the layers that made them.

    Height and width are drawn on a log scale and the channels as thickness; under each map its
    shape H x W x C and the layer that made it (conv 5x5, s=1), batch norm and activations folded
    in; fully connected layers are bars. Residual blocks get a skip arc (a projection is named on
    it). With --expand the layers inside blocks are drawn too: Inception branches side by side,
    joined at the concatenation, and depthwise and pointwise convolutions as a pair. The title has
    the parameter and MAC totals; the chain wraps into rows, so a whole ResNet-50 stays readable.

    \b
    Examples:
      convcli draw lenet5 -o lenet5.svg
      convcli draw resnet50 -o resnet50.png
      convcli draw googlenet --expand -o googlenet.svg -o googlenet.png
      convcli draw 32x32x3 conv:32,f=3,p=same bn relu maxpool:2 flatten fc:10 --style flat -o net.svg
    """
    from convcli.draw.network import draw as draw_network
    from convcli.networks.report import analyse
    from convcli.render.emit import note

    report = analyse(_load(words, input_shape, strict=strict))
    _, written = draw_network(report, output, style.value, expand, width, inputs=words or [])
    for path in written:
        note(f"wrote {path}")
