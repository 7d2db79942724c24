"""Per-gate statistics and histogram buckets, computed with TensorFlow ops where the weights live.

Every logged step computes the statistics of every gate slice of a model in one call of one
compiled function, `packed_stats`, whatever the number of slices: the slices of one kind and
compute dtype are laid end to end in one flat vector (`Segments` says where each lies), and every
statistic is a segment reduction (`tf.math.unsorted_segment_sum`, ``_max``) over that vector, so
the graph is the same few dozen ops for a model of 2 layers or 200. Its shapes are all dynamic,
so it is traced about once per compute dtype per process (`compiled_packed_stats`), and only a
``[slices, len(STAT_FIELDS) + bins]`` float64 array crosses to the host. `gate_stats` is the
same computation for one tensor.

Precision: elementwise work is in float32 (float64 for float64 variables) because a float64 copy
of a large kernel costs more than all the statistics together. Values are first reduced per unit
(a column of a gate: ``rows`` values) in that dtype, then across units and gates in float64, so a
gate of millions of values is never summed in float32 alone; counts are exact up to 2**24 rows.
Moments are shifted (see `packed_stats`) so the standard deviation of values clustered far from
zero survives. In float32, squares overflow beyond ``|x| ~ 1.8e19``: for such a diverged slice
``mean``, ``std`` and ``l2_norm`` may read ``inf`` or NaN, while counts, ``min``, ``max`` and the
buckets stay exact.

Non-finite values never raise: they are counted in ``nan_count``/``inf_count`` and left out of
every other statistic (see `gate_stats` for the exact definitions).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format import metadata
from tensorboard_plugin_weightgates.format.metadata import STAT_FIELDS
from tensorboard_plugin_weightgates.keras_writer import compat

_HIST_LOW = STAT_FIELDS.index("hist_low")
_HIST_HIGH = STAT_FIELDS.index("hist_high")


def compute_dtype(dtype: tf.DType) -> tf.DType:
    """The dtype statistics of a `dtype` variable are computed in: float64 stays float64 (so its
    range is kept), every other real dtype (float16, bfloat16, float32, integers) becomes
    float32. Writers use it to cast a variable on its device before copying it to the host.

    Raises:
      TypeError: for dtypes that have no order or magnitude (bool, complex, string, resource).
    """
    dtype = tf.as_dtype(dtype)
    if dtype == tf.float64:
        return tf.float64
    if dtype.is_floating or dtype.is_integer:
        return tf.float32
    raise TypeError(f"weightgates statistics need a real-valued variable; got dtype {dtype.name}")


@dataclasses.dataclass(frozen=True)
class Segments:
    """Where the gate slices of several kernels lie in one flat vector, built once per model.

    Each kernel is seen as a ``[rows, gates * units]`` matrix (its last axis holds the gates as
    equal contiguous blocks, Keras' storage order) and flattened row by row; the kernels follow
    one another. A *unit* is one column of one gate: the `rows` values of one output unit.

    Attributes:
      unit_ids: int32 ``[values]``, the unit of each value of the flat vector (kernel ``k``'s
        columns are units ``first_unit[k] .. first_unit[k] + width - 1``).
      unit_slice: int32 ``[units]``, the slice (row of the result) each unit belongs to.
      first_index: int32 ``[slices]``, the position of each slice's first value (row 0, its
        first unit), the shift of its moments.
      rows: float64 ``[slices]``, rows per slice; units: float64 ``[slices]``, units per slice.
    """

    unit_ids: np.ndarray
    unit_slice: np.ndarray
    first_index: np.ndarray
    rows: np.ndarray
    units: np.ndarray

    @classmethod
    def of_kernels(cls, kernels: Sequence[tuple[int, int, int]]) -> Segments:
        """The segments of kernels given as (rows, width of the last axis, gates), in order.

        Raises:
          ValueError: for a width that `gates` does not divide into equal blocks.
        """
        unit_ids: list[np.ndarray] = []
        unit_slice: list[np.ndarray] = []
        first_index: list[int] = []
        rows: list[int] = []
        units: list[int] = []
        offset = unit_base = slice_base = 0
        for height, width, gates in kernels:
            if width % gates:
                raise ValueError(
                    f"a kernel's last axis ({width}) is not divisible by {gates} gates"
                )
            block = width // gates
            unit_ids.append(
                np.tile(np.arange(unit_base, unit_base + width, dtype=np.int32), height)
            )
            unit_slice.append(slice_base + np.arange(width, dtype=np.int32) // max(block, 1))
            first_index.extend(offset + g * block for g in range(gates))
            rows.extend([height] * gates)
            units.extend([block] * gates)
            offset += height * width
            unit_base += width
            slice_base += gates
        return cls(
            unit_ids=np.concatenate(unit_ids or [np.zeros(0, np.int32)]).astype(np.int32),
            unit_slice=np.concatenate(unit_slice or [np.zeros(0, np.int32)]).astype(np.int32),
            first_index=np.asarray(first_index, np.int32),
            rows=np.asarray(rows, np.float64),
            units=np.asarray(units, np.float64),
        )

    @property
    def size(self) -> int:
        """Number of values in the flat vector."""
        return int(self.unit_ids.size)

    @property
    def slices(self) -> int:
        return int(self.first_index.size)


def packed_stats(
    values: tf.Tensor,
    previous: tf.Tensor,
    has_previous: tf.Tensor,
    unit_ids: tf.Tensor,
    unit_slice: tf.Tensor,
    first_index: tf.Tensor,
    rows: tf.Tensor,
    units: tf.Tensor,
    bins: tf.Tensor,
    near_zero: tf.Tensor,
) -> tf.Tensor:
    """`gate_stats` of every slice of a flat vector laid out by `Segments` (its fields are the
    arguments of the same names), in one compiled call (`compiled_packed_stats`).

    Args:
      values: the flat vector, in its compute dtype (`compute_dtype`).
      previous: the same slices at the previous logged step, for ``update_size``; read only
        where `has_previous` (a bool scalar) is true, so any vector of the same length will do
        otherwise (the values themselves, for gradients).
      bins: int32 scalar, buckets per histogram; near_zero: float64 scalar, see `gate_stats`.

    Returns:
      float64 ``[slices, len(STAT_FIELDS) + bins]``, one `gate_stats` row per slice.

    One pass builds per-value columns that a single segment sum reduces per unit (in the compute
    dtype: `rows` values each), then per slice in float64; extremes likewise with one segment
    max. Moments are taken about a shift (each slice's first value, or 0 if that is not finite),
    so the variance of a tight cluster far from zero, like a forget-gate bias near 1, does not
    cancel away in float32. Bucket ids are ``slice * bins + bucket``, counted by one `Bincount`
    (int32 ids and counts stay on the GPU and are deterministic); non-finite values get the id
    ``slices * bins``, which `Bincount` ignores.
    """
    x = values
    dtype = x.dtype
    slices = tf.shape(first_index)[0]
    unit_count = tf.shape(unit_slice)[0]
    size = tf.size(x)
    zero = tf.zeros([], dtype)
    nan = tf.fill([slices], tf.constant(float("nan"), tf.float64))
    finite = tf.math.is_finite(x)
    slice_of = tf.gather(unit_slice, unit_ids)

    def per_slice(columns: tf.Tensor) -> tf.Tensor:
        """Sums of ``[values, k]`` columns per unit (compute dtype), then per slice (float64)."""
        per_unit = tf.cast(tf.math.unsorted_segment_sum(columns, unit_ids, unit_count), tf.float64)
        return per_unit, tf.math.unsorted_segment_sum(per_unit, unit_slice, slices)

    firsts = tf.cond(
        size > 0,
        lambda: tf.gather(x, tf.minimum(first_index, size - 1)),
        lambda: tf.zeros(tf.shape(first_index), dtype),
    )
    shift = tf.where(tf.math.is_finite(firsts), firsts, zero)
    clean = tf.where(finite, x, zero)
    centered = tf.where(finite, x - tf.gather(shift, slice_of), zero)
    magnitude = tf.abs(clean)
    columns = tf.stack(
        [
            tf.cast(finite, dtype),
            # Non-finite entries were zeroed, so they count as near zero here; see near_count.
            tf.cast(magnitude <= tf.cast(near_zero, dtype), dtype),
            tf.cast(tf.math.is_nan(x), dtype),
            centered,
            tf.square(centered),
            magnitude,
        ],
        axis=1,
    )
    per_unit, sums = per_slice(columns)
    finite_count, near_sum, nan_count, total, squares, abs_sum = tf.unstack(sums, axis=1)
    low_value = tf.constant(-float("inf"), dtype)
    extremes = tf.math.unsorted_segment_max(
        tf.stack([tf.where(finite, x, low_value), tf.where(finite, -x, low_value)], axis=1),
        unit_ids,
        unit_count,
    )
    extremes = tf.cast(tf.math.unsorted_segment_max(extremes, unit_slice, slices), tf.float64)

    count = rows * units
    some = finite_count > 0
    shift = tf.cast(shift, tf.float64)
    offset = total / finite_count
    mean = shift + offset
    variance = tf.maximum(squares / finite_count - tf.square(offset), 0.0)
    minimum = tf.where(some, -extremes[:, 1], nan)
    maximum = tf.where(some, extremes[:, 0], nan)
    spread = tf.where(tf.equal(minimum, maximum), tf.zeros_like(mean), tf.sqrt(variance))
    near_count = near_sum - (count - finite_count)
    dead = tf.logical_and(per_unit[:, 1] >= tf.gather(rows, unit_slice), per_unit[:, 0] > 0)
    low, high = _histogram_range(minimum, maximum, some)

    def update_size() -> tf.Tensor:
        """``||values - previous|| / ||previous||`` per slice over entries finite in both; NaN
        where ``||previous|| == 0``."""
        both = tf.logical_and(finite, tf.math.is_finite(previous))
        change = tf.where(both, x - previous, zero)
        before = tf.where(both, previous, zero)
        norms = tf.sqrt(per_slice(tf.stack([tf.square(change), tf.square(before)], axis=1))[1])
        return tf.where(norms[:, 1] > 0, norms[:, 0] / norms[:, 1], nan)

    fields = {
        "count": count,
        "mean": mean,
        "std": tf.where(some, spread, nan),
        "min": minimum,
        "max": maximum,
        # sum x^2 = sum (x - shift)^2 + 2 shift sum (x - shift) + n shift^2, without a pass.
        "l2_norm": tf.where(
            some,
            tf.sqrt(tf.maximum(squares + shift * (2.0 * total + finite_count * shift), 0.0)),
            nan,
        ),
        "mean_abs": abs_sum / finite_count,
        "near_zero_fraction": near_count / finite_count,
        "units": units,
        "dead_units": tf.math.unsorted_segment_sum(tf.cast(dead, tf.float64), unit_slice, slices),
        "nan_count": nan_count,
        "inf_count": count - finite_count - nan_count,
        "update_size": tf.cond(has_previous, update_size, lambda: nan),
        "hist_low": low,
        "hist_high": high,
    }
    scalars = tf.stack([fields[name] for name in STAT_FIELDS], axis=1)
    counts = _bucket_counts(x, finite, slice_of, low, high, bins, slices)
    return tf.concat([scalars, counts], axis=1)


_COMPILED: dict[tf.DType, tf.types.experimental.GenericFunction] = {}


def compiled_packed_stats(dtype: tf.DType):
    """`packed_stats` compiled for flat vectors of compute dtype `dtype`: every shape is dynamic,
    so it is traced once per dtype and process for every model, kind and writer (once more
    where it is first called from a training step: TensorFlow traces again for the
    cross-replica context of an optimizer's update). Never inlined, so that its graph is also
    optimized once, not again in each logging function that calls it."""
    dtype = tf.as_dtype(dtype)
    if dtype not in _COMPILED:
        vector = tf.TensorSpec([None], dtype)
        ids = tf.TensorSpec([None], tf.int32)
        table = tf.TensorSpec([None], tf.float64)
        signature = [
            vector,
            vector,
            tf.TensorSpec([], tf.bool),
            ids,
            ids,
            ids,
            table,
            table,
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float64),
        ]
        _COMPILED[dtype] = compat.uninlined_function(packed_stats, signature)
    return _COMPILED[dtype]


def gate_stats(
    values: tf.Tensor,
    gates: int,
    bins: int,
    near_zero: float,
    previous: tf.Tensor | None = None,
) -> tf.Tensor:
    """One stats vector per gate of `values`, in `metadata.STAT_FIELDS` order then bucket counts.

    Args:
      values: a tensor whose last axis holds `gates` equal-width contiguous gate blocks, e.g. an
        LSTM kernel ``[input_dim, 4 * units]`` with ``gates=4`` or a GRU bias ``[3 * units]``
        with ``gates=3``. All other axes are rows. A scalar is one value of one unit. The last
        axis must divide into `gates` equal blocks; its size may be unknown when tracing.
      gates: number of gate blocks on the last axis (1 for a variable without gates).
      bins: number of equal-width histogram buckets.
      near_zero: threshold (>= 0) for ``near_zero_fraction`` and ``dead_units``, compared as
        ``|x| <= near_zero`` after rounding to the compute dtype.
      previous: the same variable at the previous logged step, for ``update_size``; None when
        there is none (first logged step, gradients).

    Returns:
      float64 ``[gates, len(STAT_FIELDS) + bins]``. Per gate, over its ``rows * units`` values:

      * ``count``: every value, NaN and Inf included; ``nan_count``, ``inf_count`` as named.
      * ``mean``, ``std`` (population), ``min``, ``max``, ``mean_abs``, ``l2_norm`` and
        ``near_zero_fraction`` cover the finite values only. With no finite value they are NaN
        (a diverged gate must not read as a norm of 0 on a chart).
      * ``units``: size of the gate's block of the last axis. ``dead_units``: units with at least
        one finite value whose finite values all satisfy ``|x| <= near_zero``; a unit with no
        finite value is broken, not dead, and shows up in ``nan_count``/``inf_count`` instead.
      * ``update_size``: ``||values - previous|| / ||previous||`` over the entries finite in both;
        NaN without `previous` and where ``||previous|| == 0`` (a relative change from nothing
        is undefined).
      * ``hist_low``, ``hist_high``: the finite range, widened to ``[x - 0.5, x + 0.5]`` when
        every finite value equals ``x`` (so buckets keep a width); 0 and 0 with no finite
        value. The bucket counts cover finite values: value x falls in bucket
        ``floor((x - hist_low) / width)``, the last bucket closed on the right.

    Raises:
      ValueError: for a non-positive `gates` or `bins`, a negative or non-finite `near_zero`, a
        last axis not divisible by `gates`, or a `previous` of another shape.
      TypeError: for a dtype without magnitude (see `compute_dtype`).
    """
    gates, bins = _check_arguments(gates, bins, near_zero)
    values = tf.convert_to_tensor(values)
    dtype = compute_dtype(values.dtype)
    matrix = _as_matrix(values, dtype, gates)
    if previous is None:
        before, has_previous = matrix, False
    else:
        before, has_previous = _previous_matrix(previous, values, dtype), True
    height, width = tf.shape(matrix)[0], tf.shape(matrix)[1]
    block = width // gates
    gate_range = tf.range(gates, dtype=tf.int32)
    return compiled_packed_stats(dtype)(
        tf.reshape(matrix, [-1]),
        tf.reshape(before, [-1]),
        tf.constant(has_previous),
        tf.math.floormod(tf.range(height * width, dtype=tf.int32), tf.maximum(width, 1)),
        tf.range(width, dtype=tf.int32) // tf.maximum(block, 1),
        gate_range * block,
        tf.fill([gates], tf.cast(height, tf.float64)),
        tf.fill([gates], tf.cast(block, tf.float64)),
        tf.constant(bins, tf.int32),
        tf.constant(near_zero, tf.float64),
    )


def histogram_tensor(stats: np.ndarray) -> np.ndarray:
    """One gate's stats vector as TensorBoard's histogram layout: float64 ``[bins, 3]`` of
    (left edge, right edge, count), the same buckets, for TensorBoard's own histograms plugin.

    Computed on the host from the stats vector the device sent (`metadata.histogram_edges`, the
    arithmetic every reader uses), so readers of either record see identical edges.
    """
    stats = np.asarray(stats, np.float64)
    bins = stats.shape[-1] - len(STAT_FIELDS)
    edges = metadata.histogram_edges(stats[_HIST_LOW], stats[_HIST_HIGH], bins)
    return np.stack([edges[:-1], edges[1:], stats[len(STAT_FIELDS) :]], axis=1)


def _check_arguments(gates: int, bins: int, near_zero: float) -> tuple[int, int]:
    """`gates` and `bins` as Python ints (NumPy integers are welcome)."""
    for name, value in (("gates", gates), ("bins", bins)):
        if not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= near_zero < float("inf"):
        raise ValueError(f"near_zero must be a finite number >= 0, got {near_zero!r}")
    return int(gates), int(bins)


def _as_matrix(values: tf.Tensor, dtype: tf.DType, gates: int) -> tf.Tensor:
    """`values` in `dtype` as ``[rows, last axis]`` (a scalar is 1 x 1)."""
    values = tf.cast(values, dtype)
    if values.shape.rank == 0:
        return tf.reshape(values, [1, 1])
    width = values.shape[-1]
    if width is not None and width % gates:
        raise ValueError(
            f"the last axis of values ({width}) is not divisible by gates={gates}; "
            "gates must split it into equal contiguous blocks"
        )
    return tf.reshape(values, [-1, tf.shape(values)[-1] if width is None else width])


def _previous_matrix(previous: tf.Tensor, values: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    previous = tf.convert_to_tensor(previous)
    if not previous.shape.is_compatible_with(values.shape):
        raise ValueError(
            f"previous must have the shape of values {values.shape}, got {previous.shape}"
        )
    matrix = tf.cast(previous, dtype)
    return (
        tf.reshape(matrix, [1, 1])
        if matrix.shape.rank == 0
        else tf.reshape(matrix, [-1, tf.shape(matrix)[-1]])
    )


def _histogram_range(
    minimum: tf.Tensor, maximum: tf.Tensor, some: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    single = tf.equal(minimum, maximum)
    low = tf.where(single, minimum - 0.5, minimum)
    high = tf.where(single, maximum + 0.5, maximum)
    return tf.where(some, low, tf.zeros_like(low)), tf.where(some, high, tf.zeros_like(high))


def _bucket_counts(x, finite, slice_of, low, high, bins, slices) -> tf.Tensor:
    """Per-slice bucket counts ``[slices, bins]`` of the finite values of the flat vector `x`.

    Finite values satisfy ``x >= low``, so the position is never negative, and only the top
    needs clamping (``x == high`` is position ``bins``). The width is clipped to the dtype's
    positive normal range, so that no position is ever NaN (which would make an invalid id): a
    slice without finite values has width 0, and ranges of subnormal or overflowing width exist.
    """
    limits = np.finfo(x.dtype.as_numpy_dtype)
    width = tf.clip_by_value(
        tf.cast((high - low) / tf.cast(bins, tf.float64), x.dtype), limits.tiny, limits.max
    )
    position = tf.math.floordiv(
        x - tf.gather(tf.cast(low, x.dtype), slice_of), tf.gather(width, slice_of)
    )
    position = tf.where(finite, tf.minimum(position, tf.cast(bins - 1, x.dtype)), 0)
    bucket = tf.where(finite, tf.cast(position, tf.int32) + slice_of * bins, slices * bins)
    counts = tf.raw_ops.Bincount(arr=bucket, size=slices * bins, weights=tf.zeros([0], tf.int32))
    return tf.reshape(tf.cast(counts, tf.float64), [slices, bins])
