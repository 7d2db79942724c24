"""Saturation statistics, histograms, gradient norms and maps of recomputed activations,
computed with TensorFlow ops on the device that ran the probe.

A cell's values are handled together, stacked as ``[names, batch, time, *spatial, units]``
with the mask ``[batch, time]`` (True where the layer computed a step), so the number of ops
does not grow with the number of gates; the outputs are the tensor layouts of `metadata`'s
activation records. Definitions (Karpathy, Johnson and Fei-Fei 2015, section 4.2): a value is
left-saturated below the low threshold of its saturation type and right-saturated above the
high one (`metadata.SATURATION_THRESHOLDS`); fractions are over a unit's finite values at
unmasked positions. Reductions over positions run in the values' dtype, then in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format import metadata


def thresholds(saturations: Sequence[str | None]) -> tuple[list[float], list[float]]:
    """The low and high thresholds of each saturation type (NaN for None), for `cell_stats`."""
    pairs = [metadata.SATURATION_THRESHOLDS.get(s, (np.nan, np.nan)) for s in saturations]  # type: ignore[arg-type]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def cell_stats(
    values: tf.Tensor,
    valid: tf.Tensor,
    lows: Sequence[float],
    highs: Sequence[float],
    bins: int,
) -> tf.Tensor:
    """The float64 vectors of a cell's ``activation_stats`` records (see `metadata`), one row
    per name: the scalars of `metadata.ACTIVATION_STAT_FIELDS`, then per unit its left- and
    right-saturated fractions and its mean, then `bins` bucket counts of the finite values at
    unmasked positions.

    Args:
      values: ``[names, batch, time, *spatial, units]``; masked positions may hold anything.
      valid: bool ``[batch, time]``.
      lows, highs: per name, left-saturated is ``x < low`` and right-saturated ``x > high``;
        NaN for a name without saturation (its fractions are NaN).
      bins: number of equal-width buckets from each name's finite minimum to its maximum.
    """
    names = values.shape[0]
    units = tf.shape(values)[-1]
    x = tf.reshape(values, [names, -1, units])
    positions = tf.concat([tf.shape(values)[1:-1], [1]], 0)  # [batch, time, *spatial, 1]
    kept = tf.reshape(tf.broadcast_to(_expand(valid, values.shape.rank - 1), positions), [1, -1, 1])
    finite = tf.logical_and(kept, tf.math.is_finite(x))
    nan = tf.constant(np.nan, tf.float64)
    low = tf.constant(lows, x.dtype)[:, None, None]
    high = tf.constant(highs, x.dtype)[:, None, None]
    saturating = tf.math.is_finite(tf.constant(lows, tf.float64))[:, None]  # [names, 1]

    # One reduction counts, per name and unit: finite values, left- and right-saturated ones,
    # NaNs and infinities (at kept positions). In float32 (exact up to 2**24 positions, and
    # reduced on the device, unlike int32 reductions), then float64.
    masks = tf.stack(
        [
            finite,
            tf.logical_and(finite, x < low),
            tf.logical_and(finite, x > high),
            tf.logical_and(kept, tf.math.is_nan(x)),
            tf.logical_and(kept, tf.math.is_inf(x)),
        ]
    )
    counted = tf.cast(tf.reduce_sum(tf.cast(masks, tf.float32), axis=2), tf.float64)
    per_unit, left_per_unit, right_per_unit = counted[0], counted[1], counted[2]
    clean = tf.where(finite, x, tf.zeros_like(x))
    sums = tf.cast(tf.reduce_sum(clean, axis=1), tf.float64)  # [names, units]

    def share(amount: tf.Tensor, total: tf.Tensor) -> tf.Tensor:
        return tf.where(total > 0, amount / tf.maximum(total, 1.0), nan)

    totals = tf.reduce_sum(counted, axis=2)  # [5, names]
    finite_count = totals[0]
    some = finite_count > 0
    mean = share(tf.reduce_sum(sums, axis=1), finite_count)
    centered = tf.where(finite, x - tf.cast(tf.where(some, mean, 0.0), x.dtype)[:, None, None], 0.0)
    variance = tf.cast(tf.reduce_sum(tf.square(centered), axis=[1, 2]), tf.float64)
    minimum = tf.cast(tf.reduce_min(tf.where(finite, x, np.inf), axis=[1, 2]), tf.float64)
    maximum = tf.cast(tf.reduce_max(tf.where(finite, x, -np.inf), axis=[1, 2]), tf.float64)
    minimum, maximum = tf.where(some, minimum, nan), tf.where(some, maximum, nan)
    single = tf.equal(minimum, maximum)
    low_edge = tf.where(some, tf.where(single, minimum - 0.5, minimum), 0.0)
    high_edge = tf.where(some, tf.where(single, maximum + 0.5, maximum), 0.0)
    kept_positions = tf.reduce_sum(tf.cast(kept, tf.float64))
    fields = {
        "count": tf.fill([names], kept_positions * tf.cast(units, tf.float64)),
        "nan_count": totals[3],
        "inf_count": totals[4],
        "mean": mean,
        "std": tf.where(some, tf.sqrt(variance / tf.maximum(finite_count, 1.0)), nan),
        "min": minimum,
        "max": maximum,
        "left_saturated": tf.where(saturating[:, 0], share(totals[1], finite_count), nan),
        "right_saturated": tf.where(saturating[:, 0], share(totals[2], finite_count), nan),
        "hist_low": low_edge,
        "hist_high": high_edge,
    }
    per_unit_fields = {
        "left_saturated": tf.where(saturating, share(left_per_unit, per_unit), nan),
        "right_saturated": tf.where(saturating, share(right_per_unit, per_unit), nan),
        "mean": share(sums, per_unit),
    }
    scalars = tf.stack([fields[name] for name in metadata.ACTIVATION_STAT_FIELDS], axis=1)
    unit_values = [per_unit_fields[name] for name in metadata.ACTIVATION_UNIT_FIELDS]
    counts = _bucket_counts(x, finite, low_edge, high_edge, bins)
    return tf.concat([scalars, *unit_values, counts], axis=1)


def histogram(vector: tf.Tensor, bins: int) -> tf.Tensor:
    """An ``activation_stats`` vector's buckets as TensorBoard's float64 ``[bins, 3]`` (left
    edge, right edge, count), with the edges of `metadata.histogram_edges`."""
    fields = metadata.ACTIVATION_STAT_FIELDS
    low = vector[fields.index("hist_low")]
    high = vector[fields.index("hist_high")]
    step = (high - low) / bins
    edges = tf.concat([low + tf.range(bins, dtype=tf.float64) * step, tf.reshape(high, [1])], 0)
    return tf.stack([edges[:-1], edges[1:], vector[-bins:]], axis=1)


def gradient_norms(gradient: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """float64 ``[time]``: per input timestep, the mean over the samples not masked there of
    the L2 norm of `gradient` (``[batch, time, *spatial, units]``) over units and spatial
    positions; NaN where every sample is masked."""
    squares = tf.cast(tf.square(gradient), tf.float64)
    norms = tf.sqrt(tf.reduce_sum(tf.reshape(squares, tf.concat([tf.shape(valid), [-1]], 0)), -1))
    weight = tf.cast(valid, tf.float64)
    samples = tf.reduce_sum(weight, axis=0)
    mean = tf.reduce_sum(norms * weight, axis=0) / tf.maximum(samples, 1.0)
    return tf.where(samples > 0, mean, tf.constant(np.nan, tf.float64))


def sample_maps(values: tf.Tensor, sample: int, block: tuple[int, int]) -> tf.Tensor:
    """The maps of probe sample `sample` of ``[names, batch, time, *spatial, units]`` values:
    float32 ``[names, 2, rows, cols]``, each name as the matrix ``[*spatial, units]`` rows by
    ``time`` columns, reduced by `block` as `format.snapshot.reduce_snapshot` reduces it."""
    one = tf.cast(values[:, sample], tf.float32)  # [names, time, *spatial, units]
    rank = one.shape.rank
    matrix = tf.transpose(one, [0, *range(2, rank), 1])
    rows = math.prod(matrix.shape[1:-1])
    return reduce_blocks(tf.reshape(matrix, [matrix.shape[0], rows, matrix.shape[-1]]), block)


def reduce_blocks(matrices: tf.Tensor, block: tuple[int, int]) -> tf.Tensor:
    """float32 ``[n, rows, cols]`` matrices reduced by `block` (static sizes) to ``[n, 2,
    ceil(rows / b0), ceil(cols / b1)]``: each block's mean (accumulated in float64, over the
    entries it covers) and its entry of largest magnitude with its sign, both NaN where the
    block holds a NaN: `format.snapshot`'s rules, on the device."""
    count, rows, cols = matrices.shape
    b0, b1 = block
    grid = (-(-rows // b0), -(-cols // b1))
    padding = [[0, 0], [0, grid[0] * b0 - rows], [0, grid[1] * b1 - cols]]

    def blocks(tensor: tf.Tensor, fill: float) -> tf.Tensor:
        padded = tf.pad(tensor, padding, constant_values=fill)
        return tf.reshape(padded, [count, grid[0], b0, grid[1], b1])

    nan = tf.math.is_nan(matrices)
    has_nan = tf.reduce_any(blocks(tf.cast(nan, tf.float32), 0.0) > 0, axis=[2, 4])
    covered = tf.reduce_sum(blocks(tf.ones_like(matrices, tf.float64), 0.0), axis=[2, 4])
    mean = tf.reduce_sum(blocks(tf.cast(matrices, tf.float64), 0.0), axis=[2, 4]) / covered
    clean = tf.where(nan, tf.zeros_like(matrices), matrices)
    highest = tf.reduce_max(blocks(clean, -np.inf), axis=[2, 4])
    lowest = tf.reduce_min(blocks(clean, np.inf), axis=[2, 4])
    max_abs = tf.where(highest >= -lowest, highest, lowest)
    mean = tf.where(has_nan, np.nan, tf.cast(mean, tf.float32))
    max_abs = tf.where(has_nan, np.nan, max_abs)
    return tf.stack([mean, max_abs], axis=1)


def column_means(mask: tf.Tensor, columns: int) -> tf.Tensor:
    """A ``[time]`` 0/1 float mask averaged over runs of `columns` timesteps (a map's stored
    columns; the last run may be shorter): float32 ``[ceil(time / columns)]``."""
    steps = mask.shape[0]
    grid = -(-steps // columns)
    pad = [[0, grid * columns - steps]]
    total = tf.reduce_sum(tf.reshape(tf.pad(mask, pad), [grid, columns]), axis=1)
    covered = tf.reduce_sum(tf.reshape(tf.pad(tf.ones_like(mask), pad), [grid, columns]), axis=1)
    return total / covered


def _expand(valid: tf.Tensor, rank: int) -> tf.Tensor:
    """`valid` ``[batch, time]`` with trailing axes of size 1, to rank `rank`."""
    return tf.reshape(valid, tf.concat([tf.shape(valid), [1] * (rank - 2)], 0))


def _bucket_counts(
    x: tf.Tensor, finite: tf.Tensor, low: tf.Tensor, high: tf.Tensor, bins: int
) -> tf.Tensor:
    """Per name, counts of the finite entries in `bins` equal buckets from `low` to `high`, the
    last closed on the right (the rule of `stats`): one `Bincount` over ids ``name * bins +
    bucket``, which ignores the id ``names * bins`` given to the other entries. The width is
    clipped to the dtype's normal range, so that no id is NaN."""
    names = x.shape[0]
    limits = np.finfo(x.dtype.as_numpy_dtype)
    width = tf.clip_by_value(tf.cast((high - low) / bins, x.dtype), limits.tiny, limits.max)
    width = width[:, None, None]
    bucket = tf.minimum(
        tf.math.floordiv(x - tf.cast(low, x.dtype)[:, None, None], width), bins - 1.0
    )
    first = tf.range(names, dtype=x.dtype)[:, None, None] * bins
    bucket = tf.where(finite, tf.maximum(bucket, 0.0) + first, float(names * bins))
    counts = tf.raw_ops.Bincount(
        arr=tf.reshape(tf.cast(bucket, tf.int32), [-1]),
        size=names * bins,
        weights=tf.zeros([0], tf.int32),
    )
    return tf.reshape(tf.cast(counts, tf.float64), [names, bins])
