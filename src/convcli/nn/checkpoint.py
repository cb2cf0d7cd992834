"""Checkpoints: one ``.npz`` holding a trained model and everything needed to use it again.

Arrays: ``param/<name>`` (weights and batch norm statistics, see `Model.state_dict`) and
``optim/<name>`` (optimiser state, for ``--resume``). One more entry, ``meta``, is a JSON
document stored as a numpy string: the format tag, convcli's version, the network spec (as JSON
layers, see `network_to_json`, and as words), normalisation mean/std, class names, the training
configuration and history. Nothing is pickled: files load with ``allow_pickle=False``.

Writes are atomic: a temporary file in the same directory is renamed over the target, so a
crash or Ctrl-C never leaves a half-written checkpoint in place of a good one.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convcli import __version__
from convcli.errors import InputError, OutputError, SpecError
from convcli.networks import spec as S
from convcli.networks.spec import same_network  # noqa: F401  (re-exported)
from convcli.networks.specfile import network_from_json, network_to_json  # noqa: F401  (re-exported)
from convcli.networks.words import format_network as spec_words  # noqa: F401  (re-exported)

FORMAT = "convcli-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: model state, optimiser state and the metadata document."""

    state: dict[str, np.ndarray]
    optim: dict[str, np.ndarray]
    meta: dict

    @property
    def network(self) -> S.Network:
        return network_from_json(self.meta["spec"])


def check_output(path: Path) -> None:
    """Refuse before any work is done if ``path`` cannot take a checkpoint."""
    if path.is_dir():
        raise OutputError(f"--output {path} is a directory; give a file name such as {path / 'model.npz'}")
    if not path.parent.is_dir():
        raise OutputError(f"--output {path}: directory {path.parent} does not exist")
    if path.suffix.lower() != ".npz":
        raise OutputError(f"--output {path}: a checkpoint is an .npz file; end the name in .npz")


def save(path: Path, state: dict[str, np.ndarray], optim: dict[str, np.ndarray], meta: dict) -> None:
    """Write a checkpoint atomically (temporary file, fsync, rename)."""
    arrays = {f"param/{k}": v for k, v in state.items()}
    arrays.update({f"optim/{k}": v for k, v in optim.items()})
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "convcli_version": __version__, **meta}
    arrays["meta"] = np.array(json.dumps(doc))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write checkpoint {path}: {err.strerror or err}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> Checkpoint:
    """Read a checkpoint written by `save`; `InputError` for anything else."""
    if not path.is_file():
        raise InputError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(f"checkpoint {path} is not a readable .npz file ({err})") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(
            f"{path} is not a convcli checkpoint (no convcli metadata); train one with 'convcli train -o FILE.npz'"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"checkpoint {path} has format version {meta.get('format_version')}, "
            f"this convcli reads version {FORMAT_VERSION}"
        )
    state = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    optim = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    try:
        network_from_json(meta["spec"])
    except (KeyError, SpecError, TypeError) as err:
        raise InputError(f"checkpoint {path}: its network spec cannot be read ({err})") from None
    return Checkpoint(state, optim, meta)
