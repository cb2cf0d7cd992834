"""Checkpoints (convcli.nn.checkpoint): round trips, the typed metadata against the JSON layout of
format version 1, refused files, and atomic writes that follow the umask as every output does."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace

import numpy as np
import pytest

from convcli.errors import InputError, OutputError
from convcli.networks.report import analyse
from convcli.networks.spec import Residual, same_network
from convcli.networks.specfile import network_from_json, network_to_json
from convcli.networks.words import parse_words
from convcli.nn import checkpoint as ckpt
from convcli.nn.checkpoint import DataInfo, Metadata
from convcli.nn.model import build_model
from convcli.training.loop import EpochRecord, TrainConfig

# The meta document of a checkpoint as the code before the typed metadata wrote it (convcli
# 0.1.0, 'convcli train 8x8x1 flatten fc:10 --epochs 1 -o m.npz'): files like it must still load.
VERSION_1 = json.loads(
    """{"format": "convcli-checkpoint", "format_version": 1, "convcli_version": "0.1.0",
    "spec": {"name": "", "input": [8, 8, 1], "layers": ["flatten", "fc:10"]},
    "spec_words": "8x8x1 flatten fc:10",
    "config": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "lr": 0.003, "schedule": "cosine",
               "weight_decay": 0.0, "momentum": 0.9, "seed": 0},
    "data": {"data": "digits", "class_names": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
             "image_shape": [1, 8, 8], "mean": 0.3054521597490347, "std": 0.37607958327171886, "seed": 0,
             "validation_fraction": 0.1, "test_fraction": 0.2, "test_seed": 0,
             "sizes": {"train": 1295, "validation": 143, "test": 359}},
    "epoch": 1,
    "history": [{"epoch": 1, "lr": 0.003, "train_loss": 1.9254488622820056, "train_accuracy": 0.3722007722007722,
                 "val_loss": 1.316923975944519, "val_accuracy": 0.6083916083916084,
                 "seconds": 0.025178110000069864, "images_per_second": 51433.56669727818}],
    "test_accuracy": 0.6239554317548747}"""
)


def metadata(network, **changes) -> Metadata:
    info = DataInfo(
        data="digits",
        class_names=("a", "b", "c"),
        image_shape=(3, 8, 8),
        mean=0.25,
        std=0.5,
        seed=1,
        validation_fraction=0.1,
        test_fraction=0.2,
        test_seed=0,
        sizes={"train": 9, "validation": 1, "test": 2},
    )
    return Metadata(network, TrainConfig(epochs=3, lr=0.01), info, **changes)


def test_checkpoint_round_trip(tmp_path):
    network = parse_words("8x8x3 conv:4,p=same bn relu res:4 inception:2,2-2,2-2,2 gap flatten fc:3".split())
    path = tmp_path / "m.npz"
    model = build_model(analyse(network))
    record = EpochRecord(1, 0.01, 1.5, 0.25, None, None, 2.0, 40.0)
    meta = metadata(network, epoch=1, history=(record,), test_accuracy=0.5)
    ckpt.save(path, model.state_dict(), {"steps": np.array(3)}, meta)
    loaded = ckpt.load(path)
    assert same_network(loaded.network, network)
    assert replace(loaded.meta, network=network) == meta and loaded.path == path
    assert int(loaded.optim["steps"]) == 3
    assert all(np.array_equal(loaded.state[k], v) for k, v in model.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind


def test_version_1_checkpoints_load_and_the_layout_is_unchanged(tmp_path):
    meta = Metadata.from_json(VERSION_1)
    assert meta.config == TrainConfig(epochs=1, batch_size=32, lr=0.003, schedule="cosine")
    assert meta.data.class_names == tuple("0123456789") and meta.data.image_shape == (1, 8, 8)
    assert meta.data.sizes["test"] == 359 and meta.history[0].val_accuracy == pytest.approx(0.6084, abs=1e-4)
    assert meta.epoch == 1 and meta.test_accuracy == pytest.approx(0.624, abs=1e-3)
    assert meta.to_json() == VERSION_1  # what is written is what was read, key for key
    state = build_model(analyse(meta.network)).state_dict()
    np.savez(tmp_path / "old.npz", meta=np.array(json.dumps(VERSION_1)), **{f"param/{k}": v for k, v in state.items()})
    assert ckpt.load(tmp_path / "old.npz").meta == meta


def test_unreadable_metadata_is_one_input_error(tmp_path):
    doc = {**VERSION_1, "config": "fast"}
    np.savez(tmp_path / "m.npz", meta=np.array(json.dumps(doc)))
    with pytest.raises(InputError, match="m.npz: its metadata cannot be read"):
        ckpt.load(tmp_path / "m.npz")
    del doc["config"], doc["data"]
    np.savez(tmp_path / "m.npz", meta=np.array(json.dumps(doc)))
    with pytest.raises(InputError, match="metadata cannot be read.*'config'"):
        ckpt.load(tmp_path / "m.npz")


def test_checkpoint_keeps_containers():
    r = Residual((parse_words("4x4x2 conv:2,p=1".split()).layers[0],), None, None)
    net = parse_words("4x4x2 conv:2 flatten fc:2".split())
    net = type(net)(net.input, (net.steps[0].__class__(r, "residual"),) + net.steps[1:])
    assert network_from_json(network_to_json(net)).layers == net.layers


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
    network = parse_words("4x4x1 flatten fc:3".split())
    model = build_model(analyse(network))
    return ckpt.save(path, model.state_dict(), {}, metadata(network))


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


def test_metadata_nested_too_deeply_is_one_input_error(tmp_path):
    """A hand-made checkpoint whose JSON nests past Python's parser: an InputError, not a
    RecursionError (the spec-file reader caps nesting the same way)."""
    path = tmp_path / "deep.npz"
    meta = '{"format": "convcli-checkpoint", "spec": ' + "[" * 100_000 + "]" * 100_000 + "}"
    np.savez(path, meta=np.array(meta))
    with pytest.raises(InputError, match="nested too deeply"):
        ckpt.load(path)
