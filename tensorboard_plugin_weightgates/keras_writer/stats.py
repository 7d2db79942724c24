"""Per-gate statistics and histogram buckets, computed with TensorFlow ops where the weights live.

The callback calls `gate_stats` for every logged variable at every logged step, inside a
`tf.function`, so the work stays on the variable's device (the GPU for most users) and only a
``[gates, len(STAT_FIELDS) + bins]`` float64 tensor per variable crosses to the host. Gates are
handled in one vectorised pass: the variable is viewed as ``[rows, gates, units]`` (the last axis
holds the gates as equal contiguous blocks, Keras' storage order) and every statistic is a
reduction over that view, so the number of ops does not grow with the number of gates.

Precision: elementwise work is in float32 (float64 for float64 variables) because a float64 copy
of a large kernel costs more than all the statistics together. Reductions run over rows in that
dtype, then across units and gates in float64, so a gate of millions of values is never summed
in float32 alone; counts are exact up to 2**24 rows. Moments are shifted (see `_summarize`) so
the standard deviation of values clustered far from zero survives. In float32, squares overflow
beyond ``|x| ~ 1.8e19``: for such a diverged slice ``mean``, ``std`` and ``l2_norm`` may read
``inf`` or NaN, while counts, ``min``, ``max`` and the buckets stay exact.

Non-finite values never raise: they are counted in ``nan_count``/``inf_count`` and left out of
every other statistic (see `gate_stats` for the exact definitions). One reduction detects the
usual case of a slice without them and skips all masking.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format.metadata import STAT_FIELDS

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
        axis must divide into `gates` equal blocks; its size may be unknown when tracing, so
        that one trace serves kernels of every shape.
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
        last axis of unknown size or not divisible by `gates`, or a `previous` of another shape.
      TypeError: for a dtype without magnitude (see `compute_dtype`).
    """
    gates, bins = _check_arguments(gates, bins, near_zero)
    values = tf.convert_to_tensor(values)
    x = _gate_view(values, gates)
    before = None if previous is None else _previous_view(previous, values, x)
    return _summarize(x, before, tf.math.is_finite(x), bins, near_zero)


def histogram_tensor(stats: tf.Tensor) -> tf.Tensor:
    """One gate's stats vector as TensorBoard's histogram layout: float64 ``[bins, 3]`` of
    (left edge, right edge, count), the same buckets, for TensorBoard's own histograms plugin.

    Edges are ``hist_low + i * width`` with the last one exactly ``hist_high``, the arithmetic of
    `metadata.histogram_edges`, so readers of either record see identical edges.
    """
    stats = tf.convert_to_tensor(stats, tf.float64)
    bins = stats.shape[-1] - len(STAT_FIELDS)
    low = stats[_HIST_LOW]
    high = stats[_HIST_HIGH]
    step = (high - low) / bins
    edges = tf.concat(
        [low + tf.range(bins, dtype=tf.float64) * step, tf.reshape(high, [1])], axis=0
    )
    return tf.stack([edges[:-1], edges[1:], stats[len(STAT_FIELDS) :]], axis=1)


def _check_arguments(gates: int, bins: int, near_zero: float) -> tuple[int, int]:
    """`gates` and `bins` as Python ints (NumPy integers are welcome)."""
    for name, value in (("gates", gates), ("bins", bins)):
        if not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= near_zero < float("inf"):
        raise ValueError(f"near_zero must be a finite number >= 0, got {near_zero!r}")
    return int(gates), int(bins)


def _gate_view(values: tf.Tensor, gates: int) -> tf.Tensor:
    """`values` in its compute dtype, reshaped to ``[rows, gates, units]`` without a copy."""
    values = tf.cast(values, compute_dtype(values.dtype))
    if values.shape.rank == 0:
        values = tf.reshape(values, [1, 1])
    width = values.shape[-1]
    if width is None:
        return tf.reshape(values, [-1, gates, tf.shape(values)[-1] // gates])
    if width % gates:
        raise ValueError(
            f"the last axis of values ({width}) is not divisible by gates={gates}; "
            "gates must split it into equal contiguous blocks"
        )
    rows = values.shape[:-1].num_elements()
    return tf.reshape(values, [-1 if rows is None else rows, gates, width // gates])


def _previous_view(previous: tf.Tensor, values: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    previous = tf.convert_to_tensor(previous)
    if not previous.shape.is_compatible_with(values.shape):
        raise ValueError(
            f"previous must have the shape of values {values.shape}, got {previous.shape}"
        )
    return tf.cast(_gate_view(previous, x.shape[1]), x.dtype)


def _summarize(
    x: tf.Tensor,
    before: tf.Tensor | None,
    finite: tf.Tensor,
    bins: int,
    near_zero: float,
) -> tf.Tensor:
    """`gate_stats` of the ``[rows, gates, units]`` view `x`, whose finite entries are `finite`.

    One straight-line graph, without a cheaper branch for all-finite tensors: the callback
    traces this once per kernel, and a `tf.cond` doubled that tracing time for a few
    milliseconds saved per logged step.

    Big tensors stay in the compute dtype and are reduced over rows first (per unit, a fast
    contiguous reduction); the ``[gates, units]`` partials are then summed in float64. Moments
    are taken about a shift (each gate's first value, or 0 if that is not finite), so the
    variance of a tight cluster far from zero, like a forget-gate bias near 1, does not cancel
    away in float32.
    """
    gates = x.shape[1]
    rows = tf.cast(tf.shape(x)[0], tf.float64)
    units = tf.cast(tf.shape(x)[2], tf.float64)

    def keep(tensor: tf.Tensor, fill: float) -> tf.Tensor:
        return tf.where(finite, tensor, tf.cast(fill, x.dtype))

    clean = keep(x, 0.0)
    shift = tf.reduce_sum(clean[:1, :, :1], axis=[0, 2])
    centered = keep(x - shift[:, None], 0.0)
    magnitude = tf.abs(clean)
    near_per_unit = _count_rows(magnitude <= tf.cast(near_zero, x.dtype))
    finite_per_unit = _count_rows(finite)
    nan_count = _per_gate(_count_rows(tf.math.is_nan(x)))

    count = tf.fill([gates], rows * units)
    finite_count = _per_gate(finite_per_unit)
    some = finite_count > 0
    nan = tf.fill([gates], tf.constant(float("nan"), tf.float64))
    total = _per_gate(_sum_rows(centered))
    offset = total / finite_count
    squares = _per_gate(_sum_rows(tf.square(centered)))
    shift = tf.cast(shift, tf.float64)
    mean = shift + offset
    variance = tf.maximum(squares / finite_count - tf.square(offset), 0.0)
    minimum = tf.where(some, _gate_extreme(tf.reduce_min, keep(x, float("inf"))), nan)
    maximum = tf.where(some, _gate_extreme(tf.reduce_max, keep(x, -float("inf"))), nan)
    spread = tf.where(tf.equal(minimum, maximum), tf.zeros_like(mean), tf.sqrt(variance))
    # Non-finite entries were zeroed, so they are in near_per_unit; take them out again.
    near_count = _per_gate(near_per_unit) - (count - finite_count)
    dead = tf.logical_and(near_per_unit >= rows, finite_per_unit > 0)
    low, high = _histogram_range(minimum, maximum, some)

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
        "mean_abs": _per_gate(_sum_rows(magnitude)) / finite_count,
        "near_zero_fraction": near_count / finite_count,
        "units": tf.fill([gates], units),
        "dead_units": _per_gate(tf.cast(dead, tf.float64)),
        "nan_count": nan_count,
        "inf_count": count - finite_count - nan_count,
        "update_size": nan if before is None else _update_size(x, before, finite),
        "hist_low": low,
        "hist_high": high,
    }
    scalars = tf.stack([fields[name] for name in STAT_FIELDS], axis=1)
    counts = _bucket_counts(x, finite, low, high, bins)
    return tf.concat([scalars, counts], axis=1)


def _sum_rows(tensor: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tensor, axis=0)


def _count_rows(mask: tf.Tensor) -> tf.Tensor:
    """Number of true rows per (gate, unit) of a ``[rows, gates, units]`` mask, float64.

    Float rather than int32 reductions: TensorFlow runs int32 reductions on the host, which
    would copy the whole mask off the GPU. Exact up to 2**24 rows.
    """
    return tf.cast(tf.reduce_sum(tf.cast(mask, tf.float32), axis=0), tf.float64)


def _per_gate(per_unit: tf.Tensor) -> tf.Tensor:
    """Sums ``[gates, units]`` partials to ``[gates]`` in float64."""
    return tf.reduce_sum(tf.cast(per_unit, tf.float64), axis=1)


def _gate_extreme(reduce: Callable[..., tf.Tensor], tensor: tf.Tensor) -> tf.Tensor:
    """`reduce` (`tf.reduce_min` or `tf.reduce_max`) of each gate of a ``[rows, gates, units]``
    tensor, float64; over rows first, like every other reduction here."""
    return tf.cast(reduce(reduce(tensor, axis=0), axis=1), tf.float64)


def _histogram_range(
    minimum: tf.Tensor, maximum: tf.Tensor, some: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    single = tf.equal(minimum, maximum)
    low = tf.where(single, minimum - 0.5, minimum)
    high = tf.where(single, maximum + 0.5, maximum)
    return tf.where(some, low, tf.zeros_like(low)), tf.where(some, high, tf.zeros_like(high))


def _bucket_counts(
    x: tf.Tensor, finite: tf.Tensor, low: tf.Tensor, high: tf.Tensor, bins: int
) -> tf.Tensor:
    """Per-gate bucket counts ``[gates, bins]`` of the finite values of ``[rows, gates, units]``.

    Each value gets a bucket id ``gate * bins + bucket``, and one `Bincount` counts all gates at
    once (int32 ids and counts stay on the GPU and are deterministic). Non-finite values get the
    id ``gates * bins``, which `Bincount` ignores. Finite values satisfy ``x >= low``, so the
    position is never negative, and only the top needs clamping (``x == high`` is position
    ``bins``). The width is clipped to the dtype's positive normal range, so that no position is
    ever NaN (which would make an invalid id): a gate without finite values has width 0, and
    ranges of subnormal or overflowing width exist.
    """
    gates = x.shape[1]
    limits = x.dtype.as_numpy_dtype
    width = tf.clip_by_value(
        tf.cast((high - low) / bins, x.dtype), np.finfo(limits).tiny, np.finfo(limits).max
    )[:, None]
    low = tf.cast(low, x.dtype)[:, None]
    first = tf.range(gates, dtype=x.dtype)[:, None] * bins
    bucket = tf.minimum(tf.math.floordiv(x - low, width), bins - 1.0) + first
    bucket = tf.where(finite, bucket, tf.cast(gates * bins, x.dtype))
    counts = tf.raw_ops.Bincount(
        arr=tf.reshape(tf.cast(bucket, tf.int32), [-1]),
        size=gates * bins,
        weights=tf.zeros([0], tf.int32),
    )
    return tf.reshape(tf.cast(counts, tf.float64), [gates, bins])


def _update_size(x: tf.Tensor, before: tf.Tensor, finite: tf.Tensor) -> tf.Tensor:
    """Per-gate ``||x - before|| / ||before||`` over entries finite in both; NaN where
    ``||before|| == 0``."""
    both = tf.logical_and(finite, tf.math.is_finite(before))
    zero = tf.constant(0, x.dtype)
    change = tf.where(both, x - before, zero)
    before = tf.where(both, before, zero)
    change_norm = tf.sqrt(_per_gate(_sum_rows(tf.square(change))))
    reference_norm = tf.sqrt(_per_gate(_sum_rows(tf.square(before))))
    nan = tf.constant(float("nan"), tf.float64)
    return tf.where(reference_norm > 0, change_norm / reference_norm, nan)
