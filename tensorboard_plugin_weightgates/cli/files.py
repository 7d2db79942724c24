"""What a file named on the command line is, from its content, without TensorFlow.

Keras picks how to read a file from its extension (``.keras``: a zip archive, ``.h5``: HDF5),
so a ``.keras`` archive renamed ``.h5`` fails deep inside h5py ("file signature not found").
`kind` looks at the content instead (a zip archive, an HDF5 file and what it holds, a
SavedModel, a TensorFlow checkpoint, an event file), and `readable_by_keras` hands Keras a name
with the extension that content needs. The command line also uses `kind` to answer a wrong
argument before it imports TensorFlow, which takes seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator

import h5py

MISSING = "missing"
KERAS_ARCHIVE = "keras archive"
"""A zip archive: a ``.keras`` model (or a weights archive of that format)."""
HDF5_MODEL = "hdf5 model"
"""An HDF5 file holding an architecture (``model.save("m.h5")``, Keras 2, tf-keras or Keras 3)."""
HDF5_LEGACY_WEIGHTS = "hdf5 legacy weights"
"""An HDF5 file of weights in the tf-keras layout (``save_weights("w.h5")``)."""
HDF5_WEIGHTS = "hdf5 weights"
"""An HDF5 file of weights in Keras 3's layout (``save_weights("w.weights.h5")``)."""
SAVED_MODEL = "saved model"
CHECKPOINT = "tensorflow checkpoint"
"""A TensorFlow checkpoint: its prefix (``ckpt-3``, with ``ckpt-3.index`` beside it), its index
or data file."""
EVENT_FILE = "event file"
DIRECTORY = "directory"
OTHER = "other"

MODEL_KINDS = (KERAS_ARCHIVE, HDF5_MODEL, SAVED_MODEL)
"""Kinds that can hold a whole model (architecture and weights)."""

_KERAS_SUFFIXES = (".weights.h5", ".weights.hdf5", ".h5", ".hdf5", ".keras")

_SUFFIX = {
    KERAS_ARCHIVE: ".keras",
    HDF5_MODEL: ".h5",
    HDF5_LEGACY_WEIGHTS: ".h5",
    HDF5_WEIGHTS: ".weights.h5",
}
"""The extension under which Keras (3 and tf-keras) reads each kind of file as what it is: it
reads ``.weights.h5`` as Keras 3's weights layout and any other ``.h5`` or ``.hdf5`` as the
legacy one."""


def kind(path: str) -> str:
    """What `path` is, by its content (one of the kinds of this module)."""
    if not os.path.exists(path):
        return CHECKPOINT if os.path.isfile(path + ".index") else MISSING
    if os.path.isdir(path):
        if any(
            os.path.isfile(os.path.join(path, n)) for n in ("saved_model.pb", "saved_model.pbtxt")
        ):
            return SAVED_MODEL
        return DIRECTORY
    if zipfile.is_zipfile(path):
        return KERAS_ARCHIVE
    if h5py.is_hdf5(path):
        return _hdf5_kind(path)
    name = os.path.basename(path)
    if "tfevents" in name:
        return EVENT_FILE
    if name.endswith(".index") or ".data-" in name:
        return CHECKPOINT
    return OTHER


def _hdf5_kind(path: str) -> str:
    try:
        with h5py.File(path, "r") as file:
            if "model_config" in file.attrs:
                return HDF5_MODEL
            if "layer_names" in file.attrs:
                return HDF5_LEGACY_WEIGHTS
    except OSError:
        return OTHER
    return HDF5_WEIGHTS


@contextlib.contextmanager
def readable_by_keras(path: str, file_kind: str) -> Iterator[str]:
    """`path` under a name whose extension tells Keras what `file_kind` it is: `path` itself
    when its extension already does, else a link (a copy where links are not allowed) in a
    temporary directory, removed on exit."""
    suffix = _SUFFIX.get(file_kind)
    name = os.path.basename(os.path.normpath(path))
    if suffix is None or _keras_suffix(name) == suffix:
        yield path
        return
    directory = tempfile.mkdtemp(prefix="weightgates-")
    try:
        alias = os.path.join(directory, _stem(name) + suffix)
        try:
            os.symlink(os.path.abspath(path), alias)
        except OSError:
            shutil.copyfile(path, alias)
        yield alias
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _keras_suffix(name: str) -> str | None:
    """The extension Keras reads `name` by (``.hdf5`` as ``.h5``), or None."""
    for suffix in _KERAS_SUFFIXES:
        if name.endswith(suffix):
            return suffix.replace(".hdf5", ".h5")
    return None


def _stem(name: str) -> str:
    suffix = next((s for s in _KERAS_SUFFIXES if name.endswith(s) and len(name) > len(s)), None)
    return name[: -len(suffix)] if suffix else os.path.splitext(name)[0] or name
