"""Atomic, checked output files (convcli.outputs)."""

import errno
import os
import tempfile
from pathlib import Path

import pytest

from convcli.errors import OutputError
from convcli.outputs import atomic_write, check_output_path


def leftovers(directory):
    """Every entry of ``directory``, temporary files (dot files) included."""
    return sorted(p.name for p in directory.iterdir())


def test_writes_content_and_leaves_no_temporary_file(tmp_path):
    out = atomic_write(tmp_path / "a.bin", lambda f: f.write(b"\x00\x01data"))
    assert out == tmp_path / "a.bin"
    assert out.read_bytes() == b"\x00\x01data"
    assert leftovers(tmp_path) == ["a.bin"]


def test_new_file_gets_umask_permissions_not_mkstemp_0600(tmp_path):
    old = os.umask(0o022)
    try:
        out = atomic_write(tmp_path / "a.txt", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_replacing_a_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640


def disk_full(handle):
    handle.write(b"half of the data")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failing_write_leaves_no_file_and_no_temporary(tmp_path):
    with pytest.raises(OutputError, match=r"out\.png.*No space left"):
        atomic_write(tmp_path / "out.png", disk_full)
    assert leftovers(tmp_path) == []


def test_failing_write_keeps_the_old_content(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous result")
    with pytest.raises(OutputError):
        atomic_write(target, disk_full)
    assert target.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == ["out.png"]


def test_a_bug_in_the_writer_propagates_but_is_cleaned_up(tmp_path):
    def buggy(handle):
        handle.write(b"partial")
        raise RuntimeError("encoder bug")

    with pytest.raises(RuntimeError, match="encoder bug"):
        atomic_write(tmp_path / "out.npy", buggy)
    assert leftovers(tmp_path) == []


def test_failing_rename_is_cleaned_up(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError, match="Permission denied"):
        atomic_write(tmp_path / "out.txt", lambda f: f.write(b"x"))
    assert leftovers(tmp_path) == []


def test_refuses_to_overwrite_an_input(tmp_path):
    source = tmp_path / "photo.png"
    source.write_bytes(b"precious")
    with pytest.raises(OutputError, match="photo.png.*input"):
        atomic_write(source, lambda f: f.write(b"x"), inputs=[source])
    assert source.read_bytes() == b"precious"
    assert leftovers(tmp_path) == ["photo.png"]


def test_recognises_an_input_by_another_name(tmp_path, monkeypatch):
    source = tmp_path / "photo.png"
    source.write_bytes(b"precious")
    (tmp_path / "link.png").symlink_to(source)
    os.link(source, tmp_path / "hard.png")
    monkeypatch.chdir(tmp_path)
    for name in ["link.png", "hard.png", "./sub/../photo.png"]:
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(OutputError, match="input"):
            check_output_path(name, inputs=[str(source)])
    assert source.read_bytes() == b"precious"


def test_inputs_that_are_not_files_are_ignored(tmp_path):
    out = check_output_path(tmp_path / "out.png", inputs=["-", "3,0,1;1,5,8"])
    assert out == tmp_path / "out.png"


def test_refuses_a_directory(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        atomic_write(tmp_path, lambda f: f.write(b"x"))


def test_refuses_a_missing_directory(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write(tmp_path / "nowhere" / "out.png", lambda f: f.write(b"x"))
    assert leftovers(tmp_path) == []


def test_refuses_a_path_under_a_regular_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("not a directory")
    with pytest.raises(OutputError, match="not a directory"):
        atomic_write(plain / "out.png", lambda f: f.write(b"x"))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_refuses_an_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            atomic_write(locked / "out.png", lambda f: f.write(b"x"))
    finally:
        locked.chmod(0o700)
    assert leftovers(locked) == []


def test_directory_reported_unwritable_is_refused(tmp_path, monkeypatch):
    # Root passes chmod checks, so simulate the answer a read-only directory gives.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match=f"directory {tmp_path} is not writable"):
        atomic_write(tmp_path / "out.png", lambda f: f.write(b"x"))
    assert leftovers(tmp_path) == []


def test_temporary_file_refused_by_the_file_system(tmp_path, monkeypatch):
    def read_only(**options):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OutputError, match=r"out\.png: Read-only file system"):
        atomic_write(tmp_path / "out.png", lambda f: f.write(b"x"))


def test_two_outputs_of_one_command_must_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(OutputError, match="another output"):
        check_output_path("model.npz", others=["sub/../model.npz"])  # neither exists yet
    (tmp_path / "a.png").write_bytes(b"old")
    os.link(tmp_path / "a.png", tmp_path / "b.png")
    with pytest.raises(OutputError, match="another output"):
        check_output_path("a.png", others=["b.png"])
    assert check_output_path("a.png", others=["c.png"]) == Path("a.png")


def test_messages_name_the_option(tmp_path):
    with pytest.raises(OutputError, match=rf"^--plot {tmp_path} is a directory"):
        check_output_path(tmp_path, label="--plot")
