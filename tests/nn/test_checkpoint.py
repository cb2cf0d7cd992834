"""Checkpoints (convcli.nn.checkpoint): round trips, refused files, and atomic writes that follow
the umask as every other output does."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from convcli.errors import InputError, OutputError
from convcli.networks.report import analyse
from convcli.networks.spec import Residual
from convcli.networks.words import parse_words
from convcli.nn import checkpoint as ckpt
from convcli.nn.model import build_model


def test_checkpoint_round_trip(tmp_path):
    network = parse_words("8x8x3 conv:4,p=same bn relu res:4 inception:2,2-2,2-2,2 gap flatten fc:3".split())
    path = tmp_path / "m.npz"
    model = build_model(analyse(network))
    ckpt.save(path, model.state_dict(), {"steps": np.array(3)}, {"spec": ckpt.network_to_json(network), "x": [1]})
    loaded = ckpt.load(path)
    assert ckpt.same_network(loaded.network, network)
    assert loaded.meta["x"] == [1] and int(loaded.optim["steps"]) == 3
    assert all(np.array_equal(loaded.state[k], v) for k, v in model.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind


def test_checkpoint_keeps_containers():
    r = Residual((parse_words("4x4x2 conv:2,p=1".split()).layers[0],), None, None)
    net = parse_words("4x4x2 conv:2 flatten fc:2".split())
    net = type(net)(net.input, (net.steps[0].__class__(r, "residual"),) + net.steps[1:])
    assert ckpt.network_from_json(ckpt.network_to_json(net)).layers == net.layers


def test_foreign_and_corrupt_checkpoints(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="not a convcli checkpoint"):
        ckpt.load(tmp_path / "other.npz")
    with pytest.raises(InputError, match="not a readable"):
        ckpt.load(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="no such file"):
        ckpt.load(tmp_path / "missing.npz")


def test_check_output(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        ckpt.check_output(tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        ckpt.check_output(tmp_path / "no" / "m.npz")
    with pytest.raises(OutputError, match=".npz"):
        ckpt.check_output(tmp_path / "m.txt")


def small_checkpoint(path):
    network = parse_words("4x4x1 flatten fc:2".split())
    model = build_model(analyse(network))
    return ckpt.save(path, model.state_dict(), {}, {"spec": ckpt.network_to_json(network)})


def test_new_checkpoint_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = small_checkpoint(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # was 0o600: a private temporary file renamed


def test_failing_write_leaves_nothing_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = small_checkpoint(tmp_path / "m.npz")
    before = path.read_bytes()

    def disk_full(file, **arrays):
        file.write(b"PK\x03\x04 half of an archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OutputError, match="m.npz.*No space left"):
        small_checkpoint(path)
    with pytest.raises(OutputError, match="No space left"):
        small_checkpoint(tmp_path / "new.npz")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
