"""Checkpoints: one ``.npz`` holding a trained model and everything needed to use it again.

Arrays: ``param/<name>`` (weights and batch norm statistics, see `Model.state_dict`) and
``optim/<name>`` (optimiser state, for ``--resume``). One more entry, ``meta``, is a JSON
document stored as a numpy string, read and written by `Metadata`: the format tag, convcli's
version, the network spec (as JSON layers, see `convcli.networks.specfile`, and as words), the training
configuration, the data (normalisation mean/std, class names, split) and the history. Nothing is
pickled: files load with ``allow_pickle=False``.

Writes go through `convcli.outputs.atomic_write`, as every output does: a crash or Ctrl-C never
leaves a half-written checkpoint in place of a good one, and a new file follows the umask.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from convcli import __version__
from convcli.errors import InputError, OutputError, SpecError
from convcli.networks import spec as S
from convcli.networks.specfile import network_from_json, network_to_json
from convcli.networks.words import format_network
from convcli.outputs import PathLike, atomic_write, check_output_path
from convcli.training.loop import EpochRecord, TrainConfig

FORMAT = "convcli-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class DataInfo:
    """What a model was trained on, and how its inputs must be prepared.

    ``data`` is the ``--data`` word as given (``digits``, ``mnist`` or a path); ``image_shape``
    the images' ``(C, H, W)``; ``mean`` and ``std`` normalise every input, ``(x - mean) / std``;
    the split is reproduced from ``seed``, ``validation_fraction`` and, for data sets without an
    official test part, ``test_fraction`` and ``test_seed``; ``sizes`` counts the images of
    each part.
    """

    data: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]
    mean: float
    std: float
    seed: int
    validation_fraction: float
    test_fraction: float | None
    test_seed: int | None
    sizes: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**asdict(self), "class_names": list(self.class_names), "image_shape": list(self.image_shape)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DataInfo:
        values = _fields_of(cls, doc)
        return cls(
            **{
                **values,
                "class_names": tuple(map(str, values["class_names"])),
                "image_shape": tuple(map(int, values["image_shape"])),
                "sizes": dict(values["sizes"]),
            }
        )


@dataclass(frozen=True)
class Metadata:
    """Everything in a checkpoint besides the arrays: the network, how it was trained and on what,
    how far (``epoch`` complete epochs, one `EpochRecord` each), and the final test accuracy
    once training has finished."""

    network: S.Network
    config: TrainConfig
    data: DataInfo
    epoch: int = 0
    history: tuple[EpochRecord, ...] = ()
    test_accuracy: float | None = None
    convcli_version: str = __version__

    def to_json(self) -> dict:
        """The ``meta`` document; `from_json` reads it back."""
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "convcli_version": self.convcli_version,
            "spec": network_to_json(self.network),
            "spec_words": format_network(self.network),
            "config": asdict(self.config),
            "data": self.data.to_json(),
            "epoch": self.epoch,
            "history": [asdict(record) for record in self.history],
        }
        if self.test_accuracy is not None:
            doc["test_accuracy"] = self.test_accuracy
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Metadata:
        """The metadata of a ``meta`` document; `KeyError`, `TypeError`, `ValueError` or `SpecError`
        when a part is missing or malformed (`load` turns them into one `InputError`)."""
        accuracy = doc.get("test_accuracy")
        return cls(
            network=network_from_json(doc["spec"]),
            config=TrainConfig(**_fields_of(TrainConfig, doc["config"])),
            data=DataInfo.from_json(doc["data"]),
            epoch=int(doc["epoch"]),
            history=tuple(EpochRecord(**_fields_of(EpochRecord, record)) for record in doc["history"]),
            test_accuracy=None if accuracy is None else float(accuracy),
            convcli_version=str(doc.get("convcli_version", "")),
        )


def _fields_of(cls, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``doc`` that are fields of the dataclass ``cls`` (`KeyError` for a missing
    one without a default); entries a later version adds are left out."""
    if not isinstance(doc, Mapping):
        raise TypeError(f"expected a JSON object for {cls.__name__}, got {doc!r}")
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
    return {f.name: doc[f.name] for f in fields(cls) if f.name in doc or f.name in required}


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: where it was read from, model state, optimiser state and metadata."""

    path: Path
    state: dict[str, np.ndarray]
    optim: dict[str, np.ndarray]
    meta: Metadata

    @property
    def network(self) -> S.Network:
        return self.meta.network

    def check_weights(self) -> None:
        """Refuse weights that are not all finite: a model with a NaN gives a constant guess."""
        for name, value in self.state.items():
            bad = int(np.count_nonzero(~np.isfinite(value)))
            if bad:
                raise InputError(
                    f"checkpoint {self.path}: parameter '{name}' holds {bad:,} NaN or infinite value"
                    f"{'s' if bad > 1 else ''} (of {value.size:,}); the model cannot be used, train it again"
                )


def check_output(path: Path, inputs: Iterable[PathLike] = ()) -> Path:
    """Refuse before any work is done if ``path`` cannot take a checkpoint or is one of ``inputs``
    (see `convcli.outputs.check_output_path`)."""
    check_output_path(path, inputs, label="--output")
    if path.suffix.lower() != ".npz":
        raise OutputError(f"--output {path}: a checkpoint is an .npz file; end the name in .npz")
    return path


def save(
    path: Path,
    state: dict[str, np.ndarray],
    optim: dict[str, np.ndarray],
    meta: Metadata,
    inputs: Iterable[PathLike] = (),
) -> Path:
    """Write a checkpoint atomically with `convcli.outputs.atomic_write`, never over one of ``inputs``."""
    arrays = {f"param/{k}": v for k, v in state.items()}
    arrays.update({f"optim/{k}": v for k, v in optim.items()})
    arrays["meta"] = np.array(json.dumps(meta.to_json()))
    return atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays), inputs)


def load(path: Path) -> Checkpoint:
    """Read a checkpoint written by `save`; `InputError` for anything else."""
    if path.is_dir():
        raise InputError(f"checkpoint {path} is a directory; give the .npz file written by 'convcli train -o'")
    if not path.is_file():
        raise InputError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(f"checkpoint {path} is not a readable .npz file ({err})") from None
    try:
        doc = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        doc = None
    except RecursionError:  # nesting deeper than Python's parser goes: no convcli writes that
        raise InputError(f"checkpoint {path}: its metadata is nested too deeply to read") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(
            f"{path} is not a convcli checkpoint (no convcli metadata); train one with 'convcli train -o FILE.npz'"
        )
    if doc.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"checkpoint {path} has format version {doc.get('format_version')}, "
            f"this convcli reads version {FORMAT_VERSION}"
        )
    try:
        network_from_json(doc["spec"])
    except (KeyError, SpecError, TypeError) as err:
        raise InputError(f"checkpoint {path}: its network spec cannot be read ({err})") from None
    try:
        meta = Metadata.from_json(doc)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"checkpoint {path}: its metadata cannot be read ({type(err).__name__}: {err})") from None
    state = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    optim = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    return Checkpoint(path, state, optim, meta)
