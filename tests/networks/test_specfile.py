"""The JSON spec syntax: spec files, what checkpoints store, and their errors."""

import json

import pytest

from convcli.errors import SpecError
from convcli.networks.load import load_network
from convcli.networks.report import analyse


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
