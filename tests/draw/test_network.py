"""convcli draw: the picture holds the report's shapes, one skip arc per residual block, no
overlapping text, and the SVG and the PNG are one layout."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from convcli.draw.network import draw, layout, op_label
from convcli.draw.scene import overlapping_texts, overlaps
from convcli.draw.svg import to_svg
from convcli.networks.load import load_network
from convcli.networks.report import analyse, walk
from convcli.networks.spec import ACTIVATIONS
from convcli.networks.words import parse_words
from convcli.networks.zoo import ZOO, get

from conftest import failed, run

SVG = "{http://www.w3.org/2000/svg}"
ELEMENTWISE = {"bn", "dropout", *ACTIVATIONS}
MODES = [("3d", False), ("3d", True), ("flat", False), ("flat", True)]


def maps(infos, expand: bool, fold: bool, before: bool) -> list[tuple]:
    """The shapes a drawing must label, in order, from the report alone: every layer's output,
    except elementwise layers that follow another layer of their chain (3-D style folds them in);
    an expanded residual block shows its body, an expanded concatenation its branches and then
    its output."""
    shapes: list[tuple] = []
    for info in infos:
        if fold and info.kind in ELEMENTWISE and (shapes or before):
            continue
        children = dict(info.children)
        if expand and "body" in children and children["body"]:
            shapes += maps(children["body"], expand, fold, False)
        elif expand and info.children and "body" not in children:
            for _, branch in info.children:
                shapes += maps(branch, expand, fold, False)
            shapes.append(info.out_shape)
        else:
            shapes.append(info.out_shape)
    return shapes


def residual_blocks(report, expand: bool) -> int:
    infos = walk(report.layers) if expand else report.layers
    return sum(1 for info in infos if any(name == "shortcut" for name, _ in info.children))


def svg_texts(svg: str, cls: str) -> list[str]:
    root = ET.fromstring(svg)
    return [el.text for el in root.iter(f"{SVG}text") if el.get("class") == cls]


@pytest.mark.parametrize("name", list(ZOO))
@pytest.mark.parametrize("style,expand", MODES)
def test_every_zoo_model_draws_its_shapes_its_skips_and_no_overlapping_text(name, style, expand):
    report = analyse(get(name))
    scene = layout(report, style, expand)
    svg = to_svg(scene)
    expected = [
        " x ".join(map(str, s)) for s in [report.input_shape] + maps(report.layers, expand, style == "3d", True)
    ]
    assert svg_texts(svg, "shape") == expected
    root = ET.fromstring(svg)
    skips = [el for el in root.iter() if el.get("class") == "skip"]
    assert len(skips) == residual_blocks(report, expand)
    assert overlapping_texts(scene) == []
    for text in scene.texts:  # inside the picture, and (3-D) off the boxes
        left, top, right, bottom = text.bbox
        assert 0 <= left and right <= scene.width and 0 <= top and bottom <= scene.height, text
    if style == "3d":
        faces = [item for item in scene.of_class("map")]
        for text in scene.texts:
            for face in faces:
                xs, ys = [p[0] for p in face.points], [p[1] for p in face.points]
                assert not overlaps(text.bbox, (min(xs), min(ys), max(xs), max(ys))), (text, face)


def test_the_overlap_check_finds_an_overlap():
    scene = layout(analyse(get("lenet5")))
    first = scene.of_class("shape")[0]
    scene.items.append(type(first)(first.x + 3, first.y, "on top", first.size))
    assert [(a.text, b.text) for a, b in overlapping_texts(scene)] == [("32 x 32 x 1", "on top")]


def test_labels_say_what_made_each_map():
    scene = layout(analyse(get("lenet5")))
    ops = [t.text for t in scene.of_class("op")]
    assert ops == ["input", "conv 5x5, s=1", "maxpool 2", "conv 5x5, s=1", "maxpool 2", "flatten"] + [
        "fc 120",
        "fc 84",
        "fc 10",
    ]
    assert [t.text for t in scene.of_class("folded")] == ["relu"] * 4
    assert [t.text for t in scene.of_class("role")] == ["output"]
    assert scene.of_class("title")[0].text == "lenet5: 61,706 parameters, 417 K MACs"


def test_blocks_are_named_and_projections_labelled():
    report = analyse(get("resnet50"))
    collapsed = layout(report)
    assert [t.text for t in collapsed.of_class("skip-label")] == ["projection conv 1x1, s=1"] + [
        "projection conv 1x1, s=2"
    ] * 3
    assert "bottleneck 128, s=2" in [t.text for t in collapsed.of_class("op")]
    expanded = layout(report, expand=True)
    assert [t.text for t in expanded.of_class("skip-label")][:2] == [
        "bottleneck 64; projection conv 1x1, s=1",
        "bottleneck 64",
    ]


def test_depthwise_and_pointwise_are_a_pair_and_strided_blocks_a_bracket():
    scene = layout(analyse(get("mobilenet-v1")), expand=True)
    ops = [t.text for t in scene.of_class("op")]
    assert ops[2:4] == ["dw 3x3, s=1", "pw 1x1"]
    assert len(scene.of_class("group")) == 13  # 13 depthwise-separable blocks, none with a skip
    assert [t.text for t in scene.of_class("block")][:2] == ["dw-separable", "dw-separable, s=2"]


def test_inception_branches_are_lanes_joined_at_the_concatenation():
    report = analyse(get("googlenet"))
    scene = layout(report, expand=True)
    assert len(scene.of_class("concat")) == 9
    assert [t.text for t in scene.of_class("block")][0] == "inception 64|128|32|32"


def test_rows_wrap_at_the_width():
    report = analyse(get("resnet50"))
    narrow, wide = layout(report, width=600), layout(report, width=3000)
    assert narrow.width <= 600 + 60 and narrow.height > wide.height
    assert overlapping_texts(narrow) == []


NESTED = {
    "name": "nested",
    "input": "16x16x8",
    "layers": [
        "bn",
        {"residual": {"body": ["bn", "relu", "bottleneck:2", {"residual": {"body": ["conv:8,f=3,p=1"]}}]}},
        {"concat": [[], ["conv:4,f=1"], [{"concat": [["maxpool:3,1,1"], ["dwconv", "conv:4,f=1"]]}]]},
        {"residual": {"body": [], "act": None}},
        "gap",
        "flatten",
        "fc:3",
    ],
}


@pytest.mark.parametrize("style,expand", MODES)
def test_nested_blocks_empty_branches_and_leading_elementwise_layers(tmp_path, style, expand):
    spec = tmp_path / "nested.json"
    spec.write_text(json.dumps(NESTED))
    report = analyse(load_network([str(spec)]))
    scene = layout(report, style, expand)
    svg = to_svg(scene)
    expected = [
        " x ".join(map(str, s)) for s in [report.input_shape] + maps(report.layers, expand, style == "3d", True)
    ]
    assert svg_texts(svg, "shape") == expected
    assert len([el for el in ET.fromstring(svg).iter() if el.get("class") == "skip"]) == residual_blocks(report, expand)
    assert overlapping_texts(scene) == []


def test_a_nested_block_is_named_from_its_word():
    report = analyse(parse_words(["8x8x4", "res:4"]))
    assert op_label(report.layers[0]) == "basic block"
    assert op_label(report.layers[0], report.network.layers[0]) == "basic block"


def test_svg_and_png_are_one_layout(tmp_path):
    report = analyse(get("mnist-resnet"))
    scene, written = draw(report, [tmp_path / "n.svg", tmp_path / "n.png"], expand=True)
    assert [p.name for p in written] == ["n.svg", "n.png"]
    root = ET.fromstring((tmp_path / "n.svg").read_text())
    assert float(root.get("width")) == pytest.approx(scene.width, abs=0.01)
    png = Image.open(tmp_path / "n.png").convert("RGB")
    assert png.size == (round(scene.width * 2 + 0.499), round(scene.height * 2 + 0.499))
    faces = [el for el in root.iter(f"{SVG}polygon") if el.get("class") == "map"]
    assert len(faces) == len(scene.of_class("map")) > 10
    for el in faces:  # each front face of the SVG is painted in its colour at the same place in the PNG
        points = [tuple(map(float, p.split(","))) for p in el.get("points").split()]
        cx, cy = sum(x for x, _ in points) / 4, sum(y for _, y in points) / 4
        fill = tuple(int(el.get("fill")[i : i + 2], 16) for i in (1, 3, 5))
        assert png.getpixel((int(cx * 2), int(cy * 2))) == fill


def test_the_cli_writes_both_and_checks_outputs_first(tmp_path):
    svg, png = tmp_path / "a.svg", tmp_path / "a.png"
    result = run("draw", "lenet5", "-o", svg, "-o", png)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [f"wrote {svg}", f"wrote {png}"]
    ET.parse(svg)
    assert Image.open(png).format == "PNG"
    bad = tmp_path / "b.svg"
    assert failed(run("draw", "lenet5", "-o", bad, "-o", tmp_path / "b.jpg"), "b.jpg", ".svg or .png")
    assert not bad.exists()  # nothing is drawn until every output is known to be writable
    assert failed(run("draw", "lenet5", "-o", tmp_path / "missing" / "c.svg"), "does not exist")
    assert failed(run("draw", "lenet5", "--width", "100", "-o", svg), "--width 100")
    assert failed(run("draw", "lenett5", "-o", svg), "lenet5")


def test_the_cli_takes_layer_words_and_another_input(tmp_path):
    out = tmp_path / "w.svg"
    result = run("draw", "28x28x1", "conv:6,f=5", "relu", "maxpool:2", "flatten", "fc:10", "--style", "flat", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert svg_texts(out.read_text(), "shape") == ["28 x 28 x 1", "24 x 24 x 6", "24 x 24 x 6", "12 x 12 x 6"] + [
        "864",
        "10",
    ]
    run("draw", "resnet18", "--input", "64x64x3", "-o", out)
    assert svg_texts(out.read_text(), "shape")[0] == "64 x 64 x 3"


def test_drawing_an_svg_imports_neither_numpy_nor_pillow(tmp_path):
    out = str(tmp_path / "g.svg")
    code = (
        "import sys; from convcli.cli.app import app\n"
        f"try:\n    app(['draw', 'googlenet', '--expand', '-o', {out!r}])\nexcept SystemExit: pass\n"
        "assert 'numpy' not in sys.modules and 'PIL' not in sys.modules, 'heavy import'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "g.svg").exists()
