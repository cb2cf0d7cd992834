"""The JSON spec syntax: spec files, what checkpoints store, and their errors."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.errors import ConvcliError, SpecError
from convcli.networks import spec as S
from convcli.networks import zoo
from convcli.networks.blocks import expand
from convcli.networks.load import load_network
from convcli.networks.report import analyse
from convcli.networks.specfile import MAX_DEPTH, network_from_json, network_to_json

from conftest import failed, run


def test_spec_file_with_branches(tmp_path):
    doc = {
        "name": "tiny",
        "input": "16x16x3",
        "layers": [
            "conv:8,f=3,p=same",
            "relu",
            {"residual": {"body": ["conv:8,f=3,p=1", "bn", "relu", "conv:8,f=3,p=1"], "act": "relu"}},
            {"concat": [["conv:4,f=1"], ["maxpool:3,1,1", "conv:4,f=1"]]},
            "gap",
            "flatten",
            "fc:10",
        ],
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(doc))
    network = load_network([str(path)])
    report = analyse(network)
    assert report.layers[2].out_shape == (16, 16, 8)
    assert report.layers[3].out_shape == (16, 16, 8)
    assert report.output_shape == (10,)
    assert report.total("params") == 224 + 2 * 584 + 16 + 36 + 36 + 90
    assert load_network([str(path)], "32x32x3").input == (32, 32, 3)


@pytest.mark.parametrize(
    "text,message",
    [
        ("{", "not valid JSON"),
        ('{"input": "8x8x1"}', "needs an object"),
        ('{"input": "8x8x1", "layers": []}', "empty"),
        ('{"input": "8x8x1", "layers": [{"residual": {"bodyy": []}}]}', 'needs an object with \\"body\\"'),
        ('{"input": "8x8x1", "layers": [{"concat": []}]}', "list of branches"),
        ('{"input": "8x8x1", "layers": [42]}', "a layer is a word"),
        ('{"input": 5, "layers": ["relu"]}', "HxWxC"),
    ],
)
def test_bad_spec_files(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_network([str(path)])


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_network([str(tmp_path / "nope.json")])


def _nested(depth: int) -> dict:
    """A residual block ``depth`` levels deep, around one relu."""
    layer: object = "relu"
    for _ in range(depth):
        layer = {"residual": {"body": [layer]}}
    return {"input": "4x4x1", "layers": [layer]}


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_every_zoo_network_round_trips_through_json(name, tmp_path):
    network = zoo.get(name)
    doc = json.loads(json.dumps(network_to_json(network)))
    back = network_from_json(doc)
    assert back == network
    assert analyse(back) == analyse(network)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    assert json.loads(run("shape-calc", path, "--json").stdout) == json.loads(run("shape-calc", name, "--json").stdout)


def test_every_block_round_trips_as_its_containers(tmp_path):
    # a network with its blocks expanded is what a checkpoint of a spec-file network holds;
    # strided MobileNet blocks have no skip connection ("shortcut": null), which the spec-file
    # reader used to refuse
    for name in ("resnet50", "googlenet", "mobilenet-v1", "mobilenet-v2"):
        network = zoo.get(name)
        report = analyse(network)
        steps = tuple(S.Step(expand(info.layer, info.in_shape[-1]), info.word) for info in report.layers)
        expanded = S.Network(network.input, steps, name)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(network_to_json(expanded)))
        assert load_network([str(path)]).layers == expanded.layers
        result = run("params", path, "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["total"] == json.loads(run("params", name, "--json").stdout)["total"]
    assert '"shortcut": null' in (tmp_path / "mobilenet-v2.json").read_text()


def test_a_residual_without_shortcut_is_the_identity_and_null_is_no_skip():
    body = ["conv:1,f=3,p=1"]
    identity = network_from_json({"input": "4x4x1", "layers": [{"residual": {"body": body}}]})
    none = network_from_json(
        {"input": "4x4x1", "layers": [{"residual": {"body": body, "shortcut": None, "act": None}}]}
    )
    assert identity.layers[0].shortcut == () and identity.layers[0].act == "relu"
    assert none.layers[0].shortcut is None and none.layers[0].act is None
    assert analyse(identity).layers[0].extra["add"] == 16 and analyse(none).layers[0].extra["add"] == 0


def test_words_are_kept_as_written():
    network = zoo.get("resnet18")
    assert network_to_json(network)["layers"][0] == "conv:64,f=7,s=2,p=3,bias=0"


def test_blocks_nested_to_the_limit_are_read():
    report = analyse(network_from_json(_nested(MAX_DEPTH)))
    assert report.output_shape == (4, 4, 1)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deeper_nesting_is_an_error_not_a_recursion_error(depth):
    with pytest.raises(SpecError, match=f"more than {MAX_DEPTH} levels"):
        network_from_json(_nested(depth))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deeply_nested_spec_file_is_one_error_line(depth, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(_nested(depth)) if depth < 500 else "[" * depth + "]" * depth)
    assert failed(run("shape-calc", path), "deep.json", str(MAX_DEPTH))
    path.write_text(
        '{"input": "4x4x1", "layers": [' + '{"residual": {"body": [' * depth + '"relu"' + "]}}" * depth + "]}"
    )
    assert failed(run("params", path), "deep.json", str(MAX_DEPTH))


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.sampled_from(["8x8x1", "relu", "conv:2,f=3", "fc:3", "flatten", "gap", "maxpool:2", "body", "x"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["input", "layers", "residual", "concat", "body", "shortcut", "act"]), inner, max_size=3
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"input": st.sampled_from(["8x8x1", [8, 8, 2], "8x8"]) | _JSON, "layers": _JSON}) | _JSON)
def test_any_json_gives_a_network_or_convclis_error(doc):
    try:
        network = network_from_json(doc)
    except SpecError:
        return
    assert network_from_json(network_to_json(network)) == network
    try:
        analyse(network)
    except ConvcliError:
        pass
