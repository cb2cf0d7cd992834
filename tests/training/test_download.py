"""The MNIST cache and download (convcli.training.download), against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import sys

import numpy as np
import pytest

from convcli.errors import DataError
from convcli.training.datasets import resolve_data
from convcli.training.download import (
    DEFAULT_MIRROR,
    MNIST_MD5,
    cache_dir,
    fetch_mnist,
    gunzipped_md5,
    mirror_url,
)
from convcli.training.loaders import load_mnist_dir

from conftest import SHARED, closed_port_url, idx_file, serve

MNIST_DIR = SHARED / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(), reason=f"real MNIST files not found in {MNIST_DIR}"
)


@pytest.fixture(scope="module")
def synthetic():
    """Small IDX files, gzipped, and their own md5 table (of the decompressed bytes)."""
    rng = np.random.default_rng(3)
    raw = {
        "train-images-idx3-ubyte.gz": idx_file(rng.integers(0, 256, (20, 4, 3))),
        "train-labels-idx1-ubyte.gz": idx_file(np.arange(20) % 10),
        "t10k-images-idx3-ubyte.gz": idx_file(rng.integers(0, 256, (6, 4, 3))),
        "t10k-labels-idx1-ubyte.gz": idx_file(np.arange(6) % 10),
    }
    gz = {name: gzip.compress(data) for name, data in raw.items()}
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in raw.items()}
    return gz, md5


def test_synthetic_download_is_verified_cached_and_not_repeated(server, synthetic, tmp_path):
    gz, md5 = synthetic
    base = serve(server, "synth", gz)
    calls = []
    directory = fetch_mnist(
        tmp_path / "mnist",
        mirror=base,
        checksums=md5,
        progress=lambda done, total, name: calls.append((done, total, name)),
    )
    assert sorted(p.name for p in directory.iterdir()) == sorted(gz)
    for name, body in gz.items():
        assert (directory / name).read_bytes() == body
        assert calls.count((len(body), len(body), name)) == 1
        assert (0, len(body), name) in calls
    train, test = load_mnist_dir(directory)
    assert train.images.shape == (20, 1, 4, 3) and test.labels.tolist() == [0, 1, 2, 3, 4, 5]

    before = len(server.requests)
    fetch_mnist(directory, mirror=base, checksums=md5, progress=calls.append)
    assert len(server.requests) == before


def test_downloaded_files_follow_the_umask(server, synthetic, tmp_path):
    gz, md5 = synthetic
    old = os.umask(0o022)
    try:
        fetch_mnist(tmp_path, mirror=serve(server, "umask", gz), checksums=md5)
    finally:
        os.umask(old)
    assert {p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {0o644}  # was 0o600, private


def test_mirror_from_environment(server, synthetic, tmp_path, monkeypatch):
    gz, md5 = synthetic
    monkeypatch.setenv("CONVCLI_MNIST_MIRROR", serve(server, "env", gz).rstrip("/"))
    fetch_mnist(tmp_path, checksums=md5)
    assert f"/env/{next(iter(gz))}" in server.requests
    assert len(list(tmp_path.iterdir())) == 4


def test_corrupted_file_is_rejected_and_nothing_cached(server, synthetic, tmp_path):
    gz, md5 = synthetic
    bad = dict(gz)
    name = "train-images-idx3-ubyte.gz"
    bad[name] = gzip.compress(gzip.decompress(gz[name])[:-1] + b"\x01")  # valid gzip, wrong content
    with pytest.raises(DataError, match=rf"{name}: checksum mismatch.*expected {md5[name]}"):
        fetch_mnist(tmp_path, mirror=serve(server, "corrupt", bad), checksums=md5)
    assert list(tmp_path.iterdir()) == []


def test_not_gzip_is_rejected(server, synthetic, tmp_path):
    gz, md5 = synthetic
    html = {name: b"<html>mirror moved</html>" for name in gz}
    with pytest.raises(DataError, match="not a complete gzip file"):
        fetch_mnist(tmp_path, mirror=serve(server, "html", html), checksums=md5)
    assert list(tmp_path.iterdir()) == []


def test_404_names_the_url_and_how_to_install_by_hand(server, synthetic, tmp_path):
    _, md5 = synthetic
    with pytest.raises(DataError) as info:
        fetch_mnist(tmp_path / "mnist", mirror=f"{server.base}/nowhere/", checksums=md5)
    message = str(info.value)
    assert "nowhere/train-images-idx3-ubyte.gz: HTTP 404" in message
    assert str(tmp_path / "mnist") in message and "t10k-labels-idx1-ubyte.gz" in message
    assert DEFAULT_MIRROR in message and "--data DIR" in message
    assert list((tmp_path / "mnist").iterdir()) == []


def test_dropped_connection_leaves_no_partial_file(server, synthetic, tmp_path):
    gz, md5 = synthetic
    size = len(gz["train-images-idx3-ubyte.gz"])
    message = rf"connection closed after {size // 2:,} of {size:,} bytes"
    with pytest.raises(DataError, match=message):
        fetch_mnist(tmp_path, mirror=serve(server, "drop", gz, "drop"), checksums=md5)
    assert list(tmp_path.iterdir()) == []


def test_failure_after_some_files_keeps_only_the_complete_ones(server, synthetic, tmp_path):
    gz, md5 = synthetic
    base = serve(server, "half", {n: b for n, b in gz.items() if n.startswith("train")})
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: HTTP 404"):
        fetch_mnist(tmp_path, mirror=base, checksums=md5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_offline_and_silent_servers(synthetic, tmp_path):
    _, md5 = synthetic
    refused = r"cannot reach http://127.0.0.1:\d+/train-images.*--data DIR"
    with pytest.raises(DataError, match=refused):
        fetch_mnist(tmp_path, mirror=closed_port_url(), checksums=md5)
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DataError, match="timed out"):
            fetch_mnist(tmp_path, mirror=url, checksums=md5, timeout=0.2)
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_and_mirror_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVCLI_DATA", str(tmp_path / "data"))
    assert cache_dir() == tmp_path / "data"
    monkeypatch.delenv("CONVCLI_DATA")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert cache_dir() == tmp_path / "xdg" / "convcli"
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")
        monkeypatch.setenv("HOME", str(tmp_path))
        assert cache_dir() == tmp_path / ".cache" / "convcli"
    monkeypatch.delenv("CONVCLI_MNIST_MIRROR", raising=False)
    assert mirror_url() == DEFAULT_MIRROR
    monkeypatch.setenv("CONVCLI_MNIST_MIRROR", "http://env.example/m")
    assert mirror_url() == "http://env.example/m/"
    assert mirror_url("http://param.example/x/") == "http://param.example/x/"


@pytest.mark.parametrize("url", ["notaurl", "example.org/mnist", "http:/half", "mailto:a@b.c"])
def test_a_mirror_that_is_not_a_url_is_named(monkeypatch, url):
    with pytest.raises(DataError, match=f"--mirror {url} is not a URL"):
        mirror_url(url)
    monkeypatch.setenv("CONVCLI_MNIST_MIRROR", url)
    with pytest.raises(DataError, match=f"CONVCLI_MNIST_MIRROR={url} is not a URL"):
        mirror_url()


@pytest.fixture(scope="module")
def real_cache(server, tmp_path_factory):
    """The real MNIST files downloaded once over loopback and checked against the official md5s."""
    files = {name: (MNIST_DIR / name).read_bytes() for name in MNIST_MD5}
    root = tmp_path_factory.mktemp("cache")
    fetch_mnist(root / "mnist", mirror=serve(server, "real", files))
    return root, files


@needs_mnist
def test_real_mnist_download_matches_the_official_checksums(server, real_cache):
    root, files = real_cache
    for name, body in files.items():
        assert (root / "mnist" / name).read_bytes() == body
        assert gunzipped_md5(root / "mnist" / name) == MNIST_MD5[name]
    before = len(server.requests)
    fetch_mnist(root / "mnist", mirror=f"{server.base}/real/")
    assert len(server.requests) == before


@needs_mnist
def test_resolve_mnist_uses_the_cache_without_network(real_cache, monkeypatch):
    root, _ = real_cache
    monkeypatch.setenv("CONVCLI_DATA", str(root))
    splits = resolve_data("mnist", validation=0.1, seed=0, mirror=closed_port_url())
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (54001, 5999, 10000)
    assert (splits.train.name, splits.train.part) == ("mnist", "train")
    assert splits.train.name == "mnist"
    assert splits.test.images.shape == (10000, 1, 28, 28)
