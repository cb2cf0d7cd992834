"""Reading ONNX files: each operator from a hand-written `onnx.helper` graph, checked against the
layer words that mean the same and against the output shape onnxruntime computes; the commands'
errors, unknown operators and dynamic inputs."""

from __future__ import annotations

import json
import sys

import pytest

from convcli.errors import ConvcliError
from convcli.networks import spec as S
from convcli.networks.load import load_network
from convcli.networks.report import analyse
from convcli.networks.words import parse_words

from conftest import failed, run

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)


def W(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def node(op, inputs, output, **attrs):
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def save(tmp_path, nodes, inits=None, shape=(1, 4, 8, 8), opset=17, name="net"):
    """A model of ``nodes`` on input ``x`` (``shape``; None for a dynamic dimension), its output
    the last node's."""
    inits = inits or {}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [d if d else "d" for d in shape])
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, name, [x], [y], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def read(path):
    return analyse(load_network([str(path)]))


def ort_shape(path, shape):
    """The output shape onnxruntime computes, as (H, W, C) or (F,)."""
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": np.zeros(shape, np.float32)})
    return (out.shape[2], out.shape[3], out.shape[1]) if out.ndim == 4 else (out.shape[1],)


CASES = {
    "conv groups, dilation, pads, strides": (
        [node("Conv", ["x", "w"], "y", strides=[2, 2], pads=[2, 2, 2, 2], dilations=[2, 2], group=2)],
        {"w": W(8, 2, 3, 3)},
        "conv:8,f=3,s=2,p=2,d=2,g=2,bias=0",
    ),
    "conv auto_pad SAME_UPPER": (
        [node("Conv", ["x", "w", "b"], "y", strides=[2, 2], auto_pad="SAME_UPPER")],
        {"w": W(6, 4, 3, 3), "b": W(6)},
        "conv:6,f=3,s=2,p=tf",
    ),
    "conv pads as TensorFlow's SAME": (
        [node("Conv", ["x", "w"], "y", strides=[2, 2], pads=[0, 0, 1, 1])],
        {"w": W(6, 4, 3, 3)},
        "conv:6,f=3,s=2,p=tf,bias=0",
    ),
    "depthwise conv": (
        [node("Conv", ["x", "w"], "y", pads=[1, 1, 1, 1], group=4)],
        {"w": W(8, 1, 3, 3)},
        "dwconv:3,p=1,m=2,bias=0",
    ),
    "conv transpose": (
        [node("ConvTranspose", ["x", "w", "b"], "y", strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])],
        {"w": W(4, 3, 3, 3), "b": W(3)},
        "convT:3,f=3,s=2,p=1,op=1",
    ),
    "gemm": (
        [node("Flatten", ["x"], "f", axis=1), node("Gemm", ["f", "w", "b"], "y", transB=1)],
        {"w": W(10, 256), "b": W(10)},
        "flatten fc:10",
    ),
    "matmul and its bias": (
        [node("Flatten", ["x"], "f"), node("MatMul", ["f", "w"], "m"), node("Add", ["m", "b"], "y")],
        {"w": W(256, 10), "b": W(10)},
        "flatten fc:10",
    ),
    "batch norm": (
        [node("BatchNormalization", ["x", "g", "b", "m", "v"], "y", epsilon=1e-3)],
        {k: W(4) ** 2 for k in "gbmv"},
        "bn:0.001",
    ),
    "activations": (
        [
            node("Relu", ["x"], "a"),
            node("Clip", ["a", "lo", "hi"], "b"),
            node("Sigmoid", ["b"], "c"),
            node("HardSigmoid", ["c"], "d"),
            node("HardSwish", ["d"], "e"),
            node("Tanh", ["e"], "f"),
            node("LeakyRelu", ["f"], "g", alpha=0.1),
            node("PRelu", ["g", "slope"], "h"),
            node("Sigmoid", ["h"], "s"),
            node("Mul", ["h", "s"], "y"),
        ],
        {"lo": np.float32(0), "hi": np.float32(6), "slope": W(4, 1, 1)},
        "relu relu6 sigmoid hardsigmoid hardswish tanh leakyrelu prelu swish",
    ),
    "pooling": (
        [
            node("MaxPool", ["x"], "a", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
            node(
                "AveragePool", ["a"], "b", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1
            ),
            node("AveragePool", ["b"], "c", kernel_shape=[2, 2], pads=[1, 1, 1, 1]),
            node("GlobalMaxPool", ["c"], "d"),
            node("GlobalAveragePool", ["d"], "y"),
        ],
        {},
        "maxpool:3,s=2,ceil=1 avgpool:3,s=1,p=1 avgpool:2,s=1,p=1,count_pad=0 gmp gap",
    ),
    "reshape, dropout, identity, softmax": (
        [
            node("Reshape", ["x", "to"], "a"),
            node("Dropout", ["a", "ratio"], "b"),
            node("Identity", ["b"], "c"),
            node("Softmax", ["c"], "y"),
        ],
        {"to": np.array([1, -1], np.int64), "ratio": np.float32(0.3)},
        "flatten dropout:0.3 softmax",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_operator_reads_as_its_words(tmp_path, case):
    nodes, inits, words = CASES[case]
    path = save(tmp_path, nodes, inits)
    report = read(path)
    expected = parse_words(["8x8x4", *words.split()])
    assert report.network.layers == expected.layers
    assert report.totals == analyse(expected).totals
    assert report.output_shape == ort_shape(path, (1, 4, 8, 8))


def _conv(name, x, c_in, c_out, f=3):
    pad = [f // 2] * 4
    return node("Conv", [x, f"{name}.w"], name, pads=pad), {f"{name}.w": W(c_out, c_in, f, f)}


def test_residual_concat_and_squeeze_excitation_blocks(tmp_path):
    a, wa = _conv("a", "x", 4, 4)
    b, wb = _conv("b", "r1", 4, 4)
    c1, wc1 = _conv("c1", "r", 4, 2, 1)
    c2, wc2 = _conv("c2", "r", 4, 6)
    s1, ws1 = _conv("s1", "p", 8, 2, 1)
    s2, ws2 = _conv("s2", "s1r", 2, 8, 1)
    nodes = [
        a,
        node("Relu", ["a"], "r1"),
        b,
        node("Add", ["b", "x"], "sum"),
        node("Relu", ["sum"], "r"),
        c1,
        c2,
        node("Concat", ["c1", "c2"], "cat", axis=1),
        node("GlobalAveragePool", ["cat"], "p"),
        s1,
        node("Relu", ["s1"], "s1r"),
        s2,
        node("Sigmoid", ["s2"], "sig"),
        node("Mul", ["cat", "sig"], "y"),
    ]
    path = save(tmp_path, nodes, {**wa, **wb, **wc1, **wc2, **ws1, **ws2})
    report = read(path)
    spec = [
        S.Residual((S.Conv(4, 3, 1, 1, bias=False), S.Activation("relu"), S.Conv(4, 3, 1, 1, bias=False)), (), "relu"),
        S.Concat(((S.Conv(2, 1, 1, 0, bias=False),), (S.Conv(6, 3, 1, 1, bias=False),))),
        S.Scale(
            (
                S.GlobalPool("avg"),
                S.Conv(2, 1, 1, 0, bias=False),
                S.Activation("relu"),
                S.Conv(8, 1, 1, 0, bias=False),
                S.Activation("sigmoid"),
            )
        ),
    ]
    assert list(report.network.layers) == spec
    assert report.totals.params == sum(
        v.size for v in [*wa.values(), *wb.values(), *wc1.values(), *wc2.values(), *ws1.values(), *ws2.values()]
    )
    assert report.output_shape == ort_shape(path, (1, 4, 8, 8))


def test_densenet_concatenation_of_all_before_reads_as_a_chain(tmp_path):
    l1, w1 = _conv("l1", "x", 4, 2)
    l2, w2 = _conv("l2", "c1", 6, 2)
    l3, w3 = _conv("l3", "c2", 8, 2)
    nodes = [
        l1,
        node("Concat", ["x", "l1"], "c1", axis=1),
        l2,
        node("Concat", ["x", "l1", "l2"], "c2", axis=1),
        l3,
        node("Concat", ["x", "l1", "l2", "l3"], "y", axis=1),
    ]
    path = save(tmp_path, nodes, {**w1, **w2, **w3})
    report = read(path)
    assert report.network.layers == tuple(S.Concat(((), (S.Conv(2, 3, 1, 1, bias=False),))) for _ in range(3))
    assert report.output_shape == (8, 8, 10) == ort_shape(path, (1, 4, 8, 8))


def test_shufflenet_split_and_channel_shuffle(tmp_path):
    b, wb = _conv("b", "h2", 2, 2)
    nodes = [
        helper.make_node("Split", ["x", "parts"], ["h1", "h2"], name="split", axis=1),
        b,
        node("Concat", ["h1", "b"], "cat", axis=1),
        node("Reshape", ["cat", "five"], "r5"),
        node("Transpose", ["r5"], "t", perm=[0, 2, 1, 3, 4]),
        node("Reshape", ["t", "four"], "y"),
    ]
    inits = {**wb, "parts": np.array([2, 2], np.int64), "five": np.array([1, 2, 2, 8, 8], np.int64)}
    inits["four"] = np.array([1, 4, 8, 8], np.int64)
    path = save(tmp_path, nodes, inits)
    report = read(path)
    assert report.network.layers == (
        S.Concat(((S.ChannelSlice(0, 2),), (S.ChannelSlice(2, 4), S.Conv(2, 3, 1, 1, bias=False)))),
        S.Shuffle(2),
    )
    assert report.output_shape == ort_shape(path, (1, 4, 8, 8))


def _unknown_model(tmp_path):
    c, w = _conv("c", "n", 4, 4)
    nodes = [node("Neg", ["x"], "n"), c, node("Neg", ["c"], "y")]
    return save(tmp_path, nodes, w, name="odd")


def test_an_unknown_operator_is_listed_not_counted_silently(tmp_path):
    path = _unknown_model(tmp_path)
    result = run("flops", path)
    assert result.exit_code == 0, result.stderr
    assert "unknown operators, counted as no parameters and no MACs: Neg x 2" in result.stdout
    assert "Neg x 2" in result.stderr
    data = json.loads(run("params", path, "--json").stdout)
    assert data["unknown_operators"] == {"Neg": 2}
    assert failed(run("shape-calc", path, "--strict"), "--strict", "Neg x 2")


def test_a_graph_that_is_not_built_of_blocks_names_its_node(tmp_path):
    a, wa = _conv("a", "x", 4, 4)
    nodes = [a, node("Relu", ["x"], "r"), node("Sub", ["a", "r"], "y")]
    assert failed(run("params", save(tmp_path, nodes, wa)), "'y' (Sub)")


def test_dynamic_dimensions_come_from_input_and_a_batch_is_per_image(tmp_path):
    c, w = _conv("y", "x", 3, 8)
    path = save(tmp_path, [c], w, shape=(None, 3, None, None))
    assert failed(run("params", path), "dynamic dimensions", "--input")
    nchw = json.loads(run("shape-calc", path, "--input", "4x3x32x32", "--json").stdout)
    hwc = json.loads(run("shape-calc", path, "--input", "32x32x3", "--json").stdout)
    assert nchw["output_shape"] == hwc["output_shape"] == [32, 32, 8]
    assert nchw["total"] == hwc["total"]
    assert any("batch is 4 images" in n for n in nchw["notes"]) and hwc["notes"] == []
    assert failed(run("params", path, "--input", "32x32x5"), "5 channels")


def test_draw_takes_a_model_file(tmp_path):
    path = _unknown_model(tmp_path)
    result = run("draw", path, "-o", tmp_path / "odd.svg")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "odd.svg").read_text().startswith("<")


def test_bad_files_are_one_error_each(tmp_path, monkeypatch):
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n" * 20)
    assert failed(run("params", text), "not an ONNX model")
    c, w = _conv("y", "x", 4, 8)
    whole = save(tmp_path, [c], w).read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(whole[: len(whole) // 2])
    assert failed(run("flops", cut), "cut short")
    flat = helper.make_graph(
        [node("Relu", ["x"], "y")],
        "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    )
    onnx.save(helper.make_model(flat, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "flat.onnx"))
    assert failed(run("shape-calc", tmp_path / "flat.onnx"), "no image inputs")
    old = save(tmp_path, [node("Relu", ["x"], "y")], opset=5, name="old")
    assert failed(run("params", old), "opset 5")
    assert failed(run("params", tmp_path / "missing.onnx"), "does not exist")
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert failed(run("params", old), 'reading .onnx files needs the onnx package: pip install "convcli[onnx]"')


def test_scale_and_new_layers_round_trip_through_a_spec_file(tmp_path):
    from convcli.networks.specfile import network_from_json, network_to_json

    network = parse_words("8x8x4 prelu:shared=1 shuffle:2 unknown:Neg,shape=8x8x4".split())
    network = S.Network(
        network.input, (*network.steps, S.Step(S.Scale((S.GlobalPool(), S.Activation("sigmoid"))), "s"))
    )
    back = network_from_json(json.loads(json.dumps(network_to_json(network))))
    assert S.same_network(back, network)
    report = analyse(back)
    assert report.totals.params == 1 and report.layers[-1].extra["mul"] == 8 * 8 * 4


def test_layers_convcli_cannot_train_are_refused_by_name():
    from convcli.nn.model import build_model

    for word in ("prelu", "shuffle:2", "unknown:Neg"):
        with pytest.raises(ConvcliError, match=word.split(":")[0]):
            build_model(analyse(parse_words(["8x8x4", word, "flatten", "fc:2"])))
