"""Saturation statistics, histograms, gradient norms and sample maps of recomputed activations,
computed with TensorFlow ops on the device that ran the probe.

Inputs are a name's values ``[batch, time, *spatial, units]`` and the mask ``[batch, time]``
(True where the layer computed a step); the outputs are the tensor layouts of
`metadata`'s activation records, so only a few numbers per unit and timestep reach the host.
Definitions (Karpathy, Johnson and Fei-Fei 2015, section 4.2): a value is left-saturated below
the low threshold of its saturation type and right-saturated above the high one
(`metadata.SATURATION_THRESHOLDS`); fractions are over a unit's finite values at unmasked
positions. Reductions over positions run in the values' dtype, then in float64 across units.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format import metadata


def activation_stats(
    values: tf.Tensor, valid: tf.Tensor, thresholds: tuple[float, float] | None, bins: int
) -> tf.Tensor:
    """The float64 vector of an ``activation_stats`` record (see `metadata`): the scalars of
    `metadata.ACTIVATION_STAT_FIELDS`, then per unit its left- and right-saturated fractions and
    its mean, then `bins` bucket counts of the finite values at unmasked positions.

    Args:
      values: ``[batch, time, *spatial, units]``; masked positions may hold anything.
      valid: bool ``[batch, time]``.
      thresholds: ``(low, high)``: left-saturated is ``x < low``, right-saturated ``x > high``;
        None for values without saturation (their fractions are NaN).
      bins: number of equal-width buckets from the finite minimum to the maximum.
    """
    units = tf.shape(values)[-1]
    x = tf.reshape(values, [-1, units])
    kept = tf.reshape(tf.broadcast_to(_expand(valid, values), tf.shape(values)), [-1, units])
    finite = tf.logical_and(kept, tf.math.is_finite(x))
    zero = tf.zeros_like(x)
    clean = tf.where(finite, x, zero)
    per_unit = _count(finite)
    nan = tf.constant(np.nan, tf.float64)

    def per_unit_share(amount: tf.Tensor) -> tf.Tensor:
        return tf.where(per_unit > 0, amount / tf.maximum(per_unit, 1.0), nan)

    def fraction(mask: tf.Tensor) -> tf.Tensor:
        return per_unit_share(_count(tf.logical_and(finite, mask)))

    if thresholds is None:
        left_unit = right_unit = tf.fill([units], nan)
        left_count = right_count = nan
    else:
        low, high = (tf.cast(t, x.dtype) for t in thresholds)
        left_unit, right_unit = fraction(x < low), fraction(x > high)
        left_count = tf.reduce_sum(_count(tf.logical_and(finite, x < low)))
        right_count = tf.reduce_sum(_count(tf.logical_and(finite, x > high)))
    total = tf.cast(tf.reduce_sum(tf.reduce_sum(clean, axis=0)), tf.float64)
    mean_unit = per_unit_share(tf.cast(tf.reduce_sum(clean, axis=0), tf.float64))
    finite_count = tf.reduce_sum(per_unit)
    some = finite_count > 0
    mean = tf.where(some, total / finite_count, nan)
    centered = tf.where(finite, x - tf.cast(tf.where(some, mean, 0.0), x.dtype), zero)
    variance = tf.cast(tf.reduce_sum(tf.reduce_sum(tf.square(centered), axis=0)), tf.float64)
    minimum = tf.where(some, _extreme(tf.reduce_min, tf.where(finite, x, np.inf)), nan)
    maximum = tf.where(some, _extreme(tf.reduce_max, tf.where(finite, x, -np.inf)), nan)
    single = tf.equal(minimum, maximum)
    low_edge = tf.where(some, tf.where(single, minimum - 0.5, minimum), 0.0)
    high_edge = tf.where(some, tf.where(single, maximum + 0.5, maximum), 0.0)
    count = tf.cast(tf.reduce_sum(tf.cast(kept, tf.float32)), tf.float64)
    fields = {
        "count": count,
        "nan_count": tf.reduce_sum(_count(tf.logical_and(kept, tf.math.is_nan(x)))),
        "inf_count": tf.reduce_sum(_count(tf.logical_and(kept, tf.math.is_inf(x)))),
        "mean": mean,
        "std": tf.where(some, tf.sqrt(variance / finite_count), nan),
        "min": minimum,
        "max": maximum,
        "left_saturated": tf.where(some, left_count / finite_count, nan),
        "right_saturated": tf.where(some, right_count / finite_count, nan),
        "hist_low": low_edge,
        "hist_high": high_edge,
    }
    scalars = tf.stack([fields[name] for name in metadata.ACTIVATION_STAT_FIELDS])
    counts = _bucket_counts(x, finite, low_edge, high_edge, bins)
    return tf.concat([scalars, left_unit, right_unit, mean_unit, counts], axis=0)


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


def sample_map(values: tf.Tensor, sample: int) -> tf.Tensor:
    """Sample `sample` of ``[batch, time, *spatial, units]`` as float32 ``[*spatial, units,
    time]``: the unit x timestep matrix of an activation map (all axes but the last are rows),
    before block reduction."""
    one = values[sample]
    rank = len(one.shape)
    return tf.cast(tf.transpose(one, [*range(1, rank), 0]), tf.float32)


def _expand(valid: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    return tf.reshape(valid, tf.concat([tf.shape(valid), [1] * (len(values.shape) - 2)], 0))


def _count(mask: tf.Tensor) -> tf.Tensor:
    """True entries per unit of a ``[positions, units]`` mask, float64 (float32 partials: exact
    up to 2**24 positions, and reduced on the device, unlike int32 reductions)."""
    return tf.cast(tf.reduce_sum(tf.cast(mask, tf.float32), axis=0), tf.float64)


def _extreme(reduce, tensor: tf.Tensor) -> tf.Tensor:
    return tf.cast(reduce(reduce(tensor, axis=0)), tf.float64)


def _bucket_counts(
    x: tf.Tensor, finite: tf.Tensor, low: tf.Tensor, high: tf.Tensor, bins: int
) -> tf.Tensor:
    """Counts of the finite entries in `bins` equal buckets from `low` to `high`, the last
    closed on the right (the rule of `stats`); one `Bincount`, which ignores the id `bins` given
    to the other entries. The width is clipped to the dtype's normal range, so no id is NaN."""
    limits = np.finfo(x.dtype.as_numpy_dtype)
    width = tf.clip_by_value(tf.cast((high - low) / bins, x.dtype), limits.tiny, limits.max)
    bucket = tf.minimum(tf.math.floordiv(x - tf.cast(low, x.dtype), width), bins - 1.0)
    bucket = tf.where(finite, tf.maximum(bucket, 0.0), float(bins))
    counts = tf.raw_ops.Bincount(
        arr=tf.reshape(tf.cast(bucket, tf.int32), [-1]),
        size=bins,
        weights=tf.zeros([0], tf.int32),
    )
    return tf.cast(counts, tf.float64)
