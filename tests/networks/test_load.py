"""Naming a network on the command line: words, a zoo name, a spec file or a checkpoint."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.errors import ConvcliError, SpecError
from convcli.networks.load import load_network
from convcli.networks.report import analyse


@pytest.mark.parametrize(
    "words,message",
    [
        ([], "no network given"),
        (["28x28x1"], "no layers"),
        (["conv:3"], "first word"),
        (["resnet5"], "did you mean 'resnet50'"),
        (["28x28x0", "relu"], "zero size"),
        (["lenet5", "relu"], "whole network"),
    ],
)
def test_network_errors(words, message):
    with pytest.raises(SpecError, match=message):
        load_network(words)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(list("convfpsdg:=,-x0123456789.;_ ") + ["relu", "pool", "same", "tf", "inception", "res"]),
            max_size=12,
        ).map("".join),
        max_size=5,
    )
)
def test_any_text_gives_a_spec_or_convclis_error(words):
    try:
        network = load_network(["12x12x3"] + words)
    except ConvcliError:
        return
    try:
        analyse(network)
    except ConvcliError:
        pass
