"""The probe batch of ``weightgates import --probe FILE.npz``: the inputs (and targets) every
imported model's recurrent layers are run on, so that models trained elsewhere are compared on
the same inputs.

A NumPy ``.npz`` archive (``np.savez("probe.npz", x=x, y=y)``) holding ``x`` (or ``x_0``,
``x_1``... for a model of several inputs, in the model's input order), and optionally ``y``
(targets, for gradients through time) and ``sample_weight``. Framework-free: read with NumPy.
"""

from __future__ import annotations

import dataclasses
import re
import zipfile
from typing import Any

import numpy as np

_INPUT = re.compile(r"x_(\d+)$")
_OPTIONAL = ("y", "sample_weight")


@dataclasses.dataclass(frozen=True)
class ProbeBatch:
    """`x` is an array, or a list of arrays for several inputs; `y` and `sample_weight` are
    None when the file has none."""

    x: Any
    y: np.ndarray | None
    sample_weight: np.ndarray | None

    @property
    def samples(self) -> int:
        first = self.x[0] if isinstance(self.x, list) else self.x
        return int(first.shape[0])


def load_probe(path: str) -> ProbeBatch:
    """Reads a probe file.

    Raises:
      ValueError: the file is not an ``.npz`` archive, lacks ``x``, holds other arrays, holds
        non-numeric arrays, or arrays of different numbers of samples (the message says which).
    """
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read {path!r} as a NumPy .npz archive: {error}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{path!r} is a single array, not an .npz; save x (and y) with np.savez")
    with loaded as archive:
        arrays = {name: archive[name] for name in archive.files}
    inputs = sorted(
        (int(m.group(1)), name) for name in arrays if (m := _INPUT.match(name)) is not None
    )
    if "x" in arrays and inputs:
        raise ValueError(f"{path!r} holds both x and {inputs[0][1]}; use one or the other")
    unknown = sorted(set(arrays) - {"x", *_OPTIONAL} - {name for _, name in inputs})
    if unknown:
        raise ValueError(
            f"{path!r} holds arrays {unknown}; a probe holds x (or x_0, x_1...), and optionally "
            "y and sample_weight"
        )
    if "x" in arrays:
        x: Any = arrays["x"]
    elif inputs:
        if [i for i, _ in inputs] != list(range(len(inputs))):
            raise ValueError(f"{path!r} numbers its inputs {[n for _, n in inputs]}, not from x_0")
        x = [arrays[name] for _, name in inputs]
    else:
        raise ValueError(f"{path!r} has no array x (the probe's inputs)")
    probe = ProbeBatch(x=x, y=arrays.get("y"), sample_weight=arrays.get("sample_weight"))
    every = {name: arrays[name] for name in arrays}
    for name, array in every.items():
        if array.dtype.kind not in "biuf" or array.ndim == 0:
            raise ValueError(f"{path!r}: {name} must be a numeric array, got {array.dtype}")
    sizes = {name: array.shape[0] for name, array in every.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{path!r}: its arrays hold different numbers of samples: {sizes}")
    return probe
