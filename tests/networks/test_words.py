"""The shell-word grammar: words into spec dataclasses and back, its errors, and any text giving a
layer or convcli's own error."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.errors import ConvcliError, SpecError
from convcli.networks import spec as S
from convcli.networks.report import analyse
from convcli.networks.words import KINDS, format_layer, parse_layer, parse_words


def test_words_build_dataclasses():
    assert parse_layer("conv:10,f=3,s=2") == S.Conv(10, 3, 2)
    assert parse_layer("conv2d:c=10,kernel=3,stride=2,padding=same") == S.Conv(10, 3, 2, "same")
    assert parse_layer("dwconv:f=3,s=2,p=tf,m=2") == S.DWConv(3, 2, "tf", m=2)
    assert parse_layer("convT:16,f=2,s=2,op=1") == S.ConvT(16, 2, 2, op=1)
    assert parse_layer("avgpool:3,2,1,count_pad=0") == S.Pool("avg", 3, 2, 1, count_pad=False)
    assert parse_layer("inception:64,96-128,16-32,32") == S.Inception(64, 96, 128, 16, 32, 32)
    assert parse_layer("dropout:0.25") == S.Dropout(0.25)
    assert parse_layer("fc:10,bias=0") == S.FC(10, False)
    assert parse_layer("ReLU") == S.Activation("relu")


@pytest.mark.parametrize(
    "word",
    [
        "conv:10,f=3,s=2,p=1,d=2,g=2,bias=0",
        "maxpool:f=3,s=2,ceil=1",
        "inception:64,96-128,16-32,32,f5=3,bn=1",
        "invres:24,s=2",
        "bottleneck:64,s=2,v=1",
        "gap",
        "dropout:rate=0.2",
        "convT:3,op=1",
    ],
)
def test_format_layer_round_trips(word):
    layer = parse_layer(word)
    assert parse_layer(format_layer(layer)) == layer


@pytest.mark.parametrize(
    "word,message",
    [
        ("convv:3", "did you mean 'conv'"),
        ("conv:10,k=3,stirde=2", "unknown key 'stirde'"),
        ("conv:x", "channels='x' is not a positive integer"),
        ("conv:0", "channels='0'"),
        ("conv:-3", "channels='-3'"),
        ("conv:3,f=1.5", "f='1.5'"),
        ("conv:3,p=middle", "p='middle'"),
        ("conv:3,f=3,f=5", "given twice"),
        ("conv:3,f=3,5", "after a key=value"),
        ("maxpool:2,2,0,1", "too many values"),
        ("conv", "missing channels"),
        ("conv:3,,f=3", "empty argument"),
        ("dropout:1.5", "rate='1.5'"),
    ],
)
def test_errors_quote_the_word_and_name_the_part(word, message):
    with pytest.raises(SpecError) as err:
        parse_layer(word)
    assert f"'{word}'" in str(err.value) and message in str(err.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_arbitrary_unicode_word(word):
    try:
        parse_layer(word)
    except SpecError:
        pass


def test_every_kind_parses_with_its_required_values():
    samples = {
        "conv": "conv:4",
        "dwconv": "dwconv",
        "convT": "convT:4",
        "fc": "fc:4",
        "rbf": "rbf:4",
        "res": "res:4",
        "bottleneck": "bottleneck:4",
        "invres": "invres:4",
        "dwsep": "dwsep:4",
        "inception": "inception:1,2-3,4-5,6",
        "adaptivepool": "adaptivepool:2",
        "slice": "slice:0,2",
        "shuffle": "shuffle:2",
        "unknown": "unknown:Resize",
    }
    for kind in KINDS:
        parse_layer(samples.get(kind, kind))


def test_residual_shapes_must_match():
    with pytest.raises(ConvcliError, match="shortcut gives"):
        analyse(S.Network((8, 8, 3), (S.Step(S.Residual((S.Conv(4, 3, 1, 1),), ()), "r"),)))


def test_words_and_spec_share_one_model():
    words = parse_words("28x28x1 conv:6,f=5,p=2 relu maxpool:2".split())
    assert words.layers == (S.Conv(6, 5, 1, 2), S.Activation("relu"), S.Pool("max", 2))
