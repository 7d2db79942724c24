"""What a writer logs and how often: the options every writer shares, with their defaults.

Framework-free, so that the command line can show the defaults in its help without importing
TensorFlow, and so that a writer for another framework validates the same options the same way.
Each check raises a `ValueError` that names the argument, the value received and what is
allowed, at construction, before any training starts.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

EPOCH = "epoch"
"""`update_freq` and `snapshot_freq` value: log at the end of each epoch."""

DEFAULT_BINS = 30
DEFAULT_SNAPSHOT_MAX_CELLS = 128 * 128
DEFAULT_NEAR_ZERO = 1e-3
DEFAULT_GRADIENT_NEAR_ZERO = 1e-8
DEFAULT_WRITE_HISTOGRAMS = False
"""TensorBoard histograms are opt-in: the Weight Gates tab reads its histograms from the
statistics records, and the copies for TensorBoard's Time Series tab about double a run's size."""

MAX_BINS = 2**16
"""Most `histogram_bins`: already more buckets than a histogram has pixels; beyond it one record
per gate would take megabytes and TensorFlow's int32 bucket counts overflow. Readers accept more
(`metadata.MAX_BINS`), so records of any weightgates stay readable."""

MAX_SNAPSHOT_CELLS = 2**31 - 1
"""Most `snapshot_max_cells`: a snapshot plane's cells are counted in int32, and a gate that
large is 8 GiB of float32 per plane."""

MAX_FREQUENCY = 2**63 - 1
"""Most batches between logs (`update_freq`, `snapshot_freq`): steps are int64 in the training
step and in the event files."""

ON_ERROR = ("warn", "raise")
"""`on_error` values: on a failed write, warn once and retry later while training goes on, or
raise, which stops training."""


@dataclasses.dataclass(frozen=True)
class LogOptions:
    """How much to write per slice; shared by the callback, the custom-loop functions and
    `weightgates import`.

    `near_zero` is the |x| at or below which a weight counts as zero (sparsity, dead units), and
    `gradient_near_zero` the same for gradients, which are orders of magnitude smaller.
    `write_histograms` also writes each gate's buckets as a TensorBoard histogram, for its Time
    Series tab (`DEFAULT_WRITE_HISTOGRAMS`).
    """

    histogram_bins: int = DEFAULT_BINS
    near_zero: float = DEFAULT_NEAR_ZERO
    gradient_near_zero: float = DEFAULT_GRADIENT_NEAR_ZERO
    snapshot_max_cells: int = DEFAULT_SNAPSHOT_MAX_CELLS
    write_histograms: bool = DEFAULT_WRITE_HISTOGRAMS

    def __post_init__(self):
        validate_options(self)

    def threshold(self, kind: str) -> float:
        return self.near_zero if kind == "weights" else self.gradient_near_zero


def validate_options(options: LogOptions) -> None:
    """Raises ValueError naming the first bad option, its value and what is allowed."""
    _check_int("histogram_bins", options.histogram_bins, minimum=2, maximum=MAX_BINS)
    _check_int(
        "snapshot_max_cells", options.snapshot_max_cells, minimum=1, maximum=MAX_SNAPSHOT_CELLS
    )
    _check_threshold("near_zero", options.near_zero)
    _check_threshold("gradient_near_zero", options.gradient_near_zero)
    if not isinstance(options.write_histograms, bool):
        raise ValueError(
            f"write_histograms must be True or False, got {options.write_histograms!r}"
        )


def check_frequency(name: str, value: Any) -> int | str:
    """`value` of a frequency argument (`update_freq`) as `EPOCH` or a batch count from 1 to
    `MAX_FREQUENCY` (`"batch"` is 1)."""
    frequency = _frequency(value)
    if frequency is None:
        raise ValueError(
            f'{name} must be "epoch", "batch" or an integer from 1 to {MAX_FREQUENCY}, '
            f"got {value!r}"
        )
    return frequency


def check_optional_frequency(name: str, value: Any) -> int | str | None:
    """As `check_frequency`, where None (never) is allowed too (`snapshot_freq`)."""
    frequency = None if value is None else _frequency(value)
    if frequency is None and value is not None:
        raise ValueError(
            f'{name} must be "epoch", "batch", an integer from 1 to {MAX_FREQUENCY} or None, '
            f"got {value!r}"
        )
    return frequency


def check_on_error(value: Any) -> str:
    """`on_error`: one of `ON_ERROR`."""
    if not isinstance(value, str) or value not in ON_ERROR:
        allowed = " or ".join(f'"{v}"' for v in ON_ERROR)
        raise ValueError(f"on_error must be {allowed}, got {value!r}")
    return value


def _frequency(value: Any) -> int | str | None:
    if value == "batch":
        return 1
    if value == EPOCH:
        return EPOCH
    if (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and 1 <= int(value) <= MAX_FREQUENCY
    ):
        return int(value)
    return None


def _check_int(name: str, value: Any, minimum: int, maximum: int) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not minimum <= value <= maximum
    ):
        raise ValueError(f"{name} must be an integer from {minimum} to {maximum}, got {value!r}")


def _check_threshold(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating, np.integer))
        or not np.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
