"""Per-gate statistics and histogram buckets, computed with TensorFlow ops where the weights live.

Every logged step computes the statistics of every gate slice of a model in one call of one
compiled function, `packed_stats`, whatever the number of slices: the kernels of one kind and
compute dtype are laid end to end in one flat vector, small kernels of the same width stacked
into one matrix and each large kernel a matrix of its own (`Segments` says where each slice
lies), and one loop over those matrices reduces columns per kernel and counts histogram buckets,
then units are combined per slice; so the graph is the same few dozen ops for a model of 2
layers or 200. Its shapes are all dynamic, so it is traced about once per compute dtype per
process (`compiled_packed_stats`), and only a ``[slices, len(STAT_FIELDS) + bins]`` float64
array crosses to the host. `gate_stats` is the same computation for one tensor.

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
    equal contiguous blocks, Keras' storage order). Kernels of the same width are stacked row
    on row into one matrix, a *block*, except that a kernel of at least `own_block` values has
    a block of its own; the blocks follow one another in the flat vector, each row-major. A
    *unit* is one column of one kernel: the `rows` values of one output unit of one gate.
    Statistics reduce each block's columns per kernel (a product with the rows' kernel ids,
    sorted segment reductions), then units per slice. One block per width, not per shape,
    keeps the loop short for models of many small kernels. In a block of one kernel, the
    per-kernel tables broadcast over its rows instead of being gathered row by row (four
    full-size copies fewer); for large kernels that is worth an iteration of its own (about
    0.15 ms): the statistics function on the weights of a Bidirectional(LSTM(512)) took 17.2
    instead of 18.6 ms on 2 CPU cores, the same on the 3-layer model of `bench/`, 6 iterations
    instead of 3 (medians of 60 calls, both versions interleaved in one process).

    Attributes:
      order: the kernels' positions (in the order given) in the flat vector.
      blocks: int32 ``[blocks, 6]``: per block its offset in the flat vector, rows, width,
        number of kernels, first kernel and first row (into `row_kernel`).
      row_kernel: int32 ``[rows of all blocks]``: each row's kernel within its block.
      kernel_first_row: int32 ``[kernels]``: each kernel's first row within its block.
      unit_slice: int32 ``[units]``: the slice (row of the result, in the order the kernels were
        given) of each unit; units go block by block, kernel by kernel, column by column.
      unit_rows: float64 ``[units]``: rows per unit.
      slice_first_unit: int32 ``[slices]``: each slice's first unit, whose first value is the
        shift of the slice's moments; slice_units: float64 ``[slices]``, units per slice.
    """

    order: tuple[int, ...]
    blocks: np.ndarray
    row_kernel: np.ndarray
    kernel_first_row: np.ndarray
    unit_slice: np.ndarray
    unit_rows: np.ndarray
    slice_first_unit: np.ndarray
    slice_units: np.ndarray

    @classmethod
    def of_kernels(
        cls, kernels: Sequence[tuple[int, int, int]], own_block: int = 2**16
    ) -> Segments:
        """The segments of kernels given as (rows, width of the last axis, gates), in order;
        kernels of `own_block` values or more each have a block of their own.

        Raises:
          ValueError: for a width that `gates` does not divide into equal blocks.
        """
        first_slice = np.cumsum([0] + [gates for _, _, gates in kernels])
        by_block: dict[tuple[int, int], list[int]] = {}
        for k, (height, width, gates) in enumerate(kernels):
            if width % gates:
                raise ValueError(
                    f"a kernel's last axis ({width}) is not divisible by {gates} gates"
                )
            alone = height * width >= own_block
            by_block.setdefault((width, k if alone else -1), []).append(k)
        order = [k for members in by_block.values() for k in members]
        blocks, row_kernel, kernel_first_row = [], [], []
        unit_slice, unit_rows = [], []
        slice_first_unit = np.zeros(first_slice[-1], np.int32)
        slice_units = np.zeros(first_slice[-1], np.float64)
        offset = first_row = first_kernel = unit = 0
        for (width, _), members in by_block.items():
            rows_here = 0
            for local, k in enumerate(members):
                height, _, gates = kernels[k]
                block = width // gates
                kernel_first_row.append(rows_here)
                row_kernel.append(np.full(height, local, np.int32))
                slices = first_slice[k] + np.arange(gates)
                unit_slice.append(np.repeat(slices, block))
                unit_rows.append(np.full(width, height, np.float64))
                slice_first_unit[slices] = unit + np.arange(gates) * block
                slice_units[slices] = block
                rows_here += height
                unit += width
            blocks.append([offset, rows_here, width, len(members), first_kernel, first_row])
            offset += rows_here * width
            first_row += rows_here
            first_kernel += len(members)

        def joined(parts, dtype):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        return cls(
            order=tuple(order),
            blocks=np.asarray(blocks, np.int32).reshape(-1, 6),
            row_kernel=joined(row_kernel, np.int32),
            kernel_first_row=np.asarray(kernel_first_row, np.int32),
            unit_slice=joined(unit_slice, np.int32),
            unit_rows=joined(unit_rows, np.float64),
            slice_first_unit=slice_first_unit,
            slice_units=slice_units,
        )

    @property
    def size(self) -> int:
        """Number of values in the flat vector."""
        return int(np.sum(self.blocks[:, 1].astype(np.int64) * self.blocks[:, 2]))

    @property
    def slices(self) -> int:
        return int(self.slice_units.size)

    def tables(self) -> tuple[np.ndarray, ...]:
        """The arguments of `packed_stats` after the values, in order."""
        return (
            self.blocks,
            self.row_kernel,
            self.kernel_first_row,
            self.unit_slice,
            self.unit_rows,
            self.slice_first_unit,
            self.slice_units,
        )


_UNIT_COLUMNS = 11
"""Per-unit partials of `packed_stats`' loop: finite, near-zero and NaN counts, shift, sums of
(x - shift), (x - shift)^2 and |x|, max, min, and the sums of squared change and of squared
previous values (update size)."""
_ABS_SUM, _MAX, _MIN, _CHANGE_SUM = 6, 7, 8, 9


def packed_stats(
    values: tf.Tensor,
    previous: tf.Tensor,
    has_previous: tf.Tensor,
    blocks: tf.Tensor,
    row_kernel: tf.Tensor,
    kernel_first_row: tf.Tensor,
    unit_slice: tf.Tensor,
    unit_rows: tf.Tensor,
    slice_first_unit: tf.Tensor,
    slice_units: tf.Tensor,
    bins: tf.Tensor,
    near_zero: tf.Tensor,
) -> tf.Tensor:
    """`gate_stats` of every slice of a flat vector laid out by `Segments` (its tables are the
    arguments of the same names), in one compiled call (`compiled_packed_stats`).

    Args:
      values: the flat vector, in its compute dtype (`compute_dtype`).
      previous: the same slices at the previous logged step, for ``update_size``; read only
        where `has_previous` (a bool scalar) is true, so any vector of the same length will do
        otherwise (the values themselves, for gradients).
      bins: int32 scalar, buckets per histogram; near_zero: float64 scalar, see `gate_stats`.

    Returns:
      float64 ``[slices, len(STAT_FIELDS) + bins]``, one `gate_stats` row per slice.

    One loop over the blocks (one iteration per distinct width of small kernels, and one per
    large kernel) reduces each block's columns per kernel to per-unit partials in the compute dtype
    (`rows` values each), and counts the block's histogram buckets with its slices' ranges, ids
    ``slice * bins + bucket``, one `Bincount` (int32 ids and counts stay on the GPU and are
    deterministic). The partials are combined per slice in float64 after the loop.

    The loop first runs without masks; only if some block's sums come out non-finite (a NaN or
    Inf among its values or previous values; or an overflow, which the masks leave as it is)
    does it run again with them, so a healthy model pays for no mask and no test of its values.
    Moments are taken about a shift (each unit's first value, or 0 if not finite, moved to its
    slice's first unit's in float64), so the variance of a tight cluster far from zero, like a
    forget-gate bias near 1, does not cancel away in float32.
    """
    dtype = values.dtype
    count_blocks = tf.shape(blocks)[0]
    slices = tf.shape(slice_units)[0]
    zero = tf.zeros([], dtype)
    inf = tf.constant(float("inf"), dtype)
    threshold = tf.cast(near_zero, dtype)
    first_unit = tf.concat([[0], tf.cumsum(blocks[:, 3] * blocks[:, 2])], axis=0)

    def block_values(vector: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        offset, rows, width = blocks[b, 0], blocks[b, 1], blocks[b, 2]
        return tf.reshape(tf.slice(vector, [offset], [rows * width]), [rows, width])

    def reduce_blocks(masked: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The per-unit partials ``[units, _UNIT_COLUMNS]``, the bucket counts and whether every
        block's sums came out finite; `masked` leaves non-finite values out of everything."""

        def body(b, written, counts, clean):
            x = block_values(values, b)
            rows, width, kernels = blocks[b, 1], blocks[b, 2], blocks[b, 3]
            ids = tf.slice(row_kernel, [blocks[b, 5]], [rows])
            spread_ids = ids[: tf.where(kernels > 1, rows, tf.minimum(rows, 1))]
            starts = tf.slice(kernel_first_row, [blocks[b, 4]], [kernels])
            first = tf.cond(
                rows > 0,
                lambda: tf.gather(x, tf.minimum(starts, rows - 1)),
                lambda: tf.zeros([kernels, width], dtype),
            )
            shift = tf.where(tf.math.is_finite(first), first, zero)
            none = tf.zeros([kernels * width], tf.float64)
            finite = tf.math.is_finite(x) if masked else None

            def per_unit(tensor, reduce=tf.math.segment_sum):
                """Per kernel and column, flattened: sorted segment reductions over the rows (a
                kernel's rows are contiguous), padded for trailing kernels without rows. Not a
                product with the rows' indicator, which would be faster on CPUs but lets an Inf
                of one kernel make NaNs of the others', and rounds to 10 bits on GPUs that
                multiply in TensorFloat-32."""
                reduced = reduce(tensor, ids)
                reduced = tf.pad(reduced, [[0, kernels - tf.shape(reduced)[0]], [0, 0]])
                return tf.reshape(tf.cast(reduced, tf.float64), [-1])

            def per_row(table):
                """A per kernel and column table, over the block's rows: gathered for a block of
                several kernels, one row that broadcasts for a block of one."""
                return tf.gather(tf.reshape(table, [kernels, width]), spread_ids)

            def keep(tensor, fill=zero):
                return tf.where(finite, tensor, fill) if masked else tensor

            def update():
                before = block_values(previous, b)
                if masked:
                    both = tf.logical_and(finite, tf.math.is_finite(before))
                    change = tf.where(both, x - before, zero)
                    before = tf.where(both, before, zero)
                    return per_unit(tf.square(change)), per_unit(tf.square(before))
                return per_unit(tf.math.squared_difference(x, before)), per_unit(tf.square(before))

            centered = keep(x - per_row(shift))
            magnitude = tf.abs(keep(x))
            if masked:
                finite_count = per_unit(tf.cast(finite, dtype))
            else:
                finite_count = tf.slice(unit_rows, [first_unit[b]], [kernels * width])
            partials = [
                finite_count,
                # Non-finite entries were zeroed, so they count as near zero; see near_count.
                per_unit(tf.cast(magnitude <= threshold, dtype)),
                per_unit(tf.cast(tf.math.is_nan(x), dtype)) if masked else none,
                tf.reshape(tf.cast(shift, tf.float64), [-1]),
                per_unit(centered),
                per_unit(tf.square(centered)),
                per_unit(magnitude),
                per_unit(keep(x, -inf), tf.math.segment_max),
                per_unit(keep(x, inf), tf.math.segment_min),
                *tf.cond(has_previous, update, lambda: (none, none)),
            ]
            # Sums of |x| and of squared changes are finite only if every value and previous
            # value is (or nothing overflowed).
            sums = tf.concat([partials[_ABS_SUM], partials[_CHANGE_SUM]], axis=0)
            block_clean = tf.reduce_all(tf.math.is_finite(sums))

            # The block's slices' ranges, as the fields after the loop compute them.
            slice_of = tf.slice(unit_slice, [first_unit[b]], [kernels * width])
            low, high = _histogram_range(
                tf.math.unsorted_segment_min(partials[_MIN], slice_of, slices),
                tf.math.unsorted_segment_max(partials[_MAX], slice_of, slices),
                tf.math.unsorted_segment_sum(finite_count, slice_of, slices) > 0,
            )
            lows, widths = _bucket_scale(low, high, bins, dtype)
            position = tf.math.floordiv(
                x - per_row(tf.gather(lows, slice_of)), per_row(tf.gather(widths, slice_of))
            )
            position = tf.cast(tf.minimum(keep(position), tf.cast(bins - 1, dtype)), tf.int32)
            bucket = position + per_row(slice_of * bins)
            if masked:
                bucket = tf.where(finite, bucket, slices * bins)

            def bincount():
                return tf.raw_ops.Bincount(
                    arr=bucket, size=slices * bins, weights=tf.zeros([0], tf.int32)
                )

            # Without masks, a non-finite value makes an invalid id: such a block is counted
            # again, masked.
            counts += bincount() if masked else tf.cond(block_clean, bincount, lambda: 0 * counts)
            clean = tf.logical_and(clean, block_clean)
            return b + 1, written.write(b, tf.stack(partials, axis=1)), counts, clean

        _, written, counts, clean = tf.while_loop(
            lambda b, *_: b < count_blocks,
            body,
            (
                0,
                tf.TensorArray(
                    tf.float64,
                    size=count_blocks,
                    infer_shape=False,
                    element_shape=tf.TensorShape([None, _UNIT_COLUMNS]),
                ),
                tf.zeros([slices * bins], tf.int32),
                True,
            ),
        )
        return tf.reshape(written.concat(), [-1, _UNIT_COLUMNS]), counts, clean

    units, counts, clean = reduce_blocks(False)
    units, counts = tf.cond(clean, lambda: (units, counts), lambda: reduce_blocks(True)[:2])
    (
        finite_u,
        near_u,
        nan_u,
        shift_u,
        total_u,
        squares_u,
        abs_u,
        max_u,
        min_u,
        change_u,
        before_u,
    ) = tf.unstack(units, axis=1)

    def per_slice(tensor, reduce=tf.math.unsorted_segment_sum):
        return reduce(tensor, unit_slice, slices)

    # Moments about each slice's shift S from each unit's about its own s:
    # sum (x - S) = c + n (s - S), sum (x - S)^2 = q + 2 (s - S) c + n (s - S)^2.
    slice_shift = tf.gather(shift_u, slice_first_unit)
    delta = shift_u - tf.gather(slice_shift, unit_slice)
    finite_count = per_slice(finite_u)
    total = per_slice(total_u + finite_u * delta)
    squares = per_slice(squares_u + 2.0 * delta * total_u + finite_u * tf.square(delta))
    rows = tf.math.unsorted_segment_max(unit_rows, unit_slice, slices)
    count = rows * slice_units
    some = finite_count > 0
    nans = tf.fill([slices], tf.constant(float("nan"), tf.float64))
    offset = total / finite_count
    mean = slice_shift + offset
    variance = tf.maximum(squares / finite_count - tf.square(offset), 0.0)
    minimum = tf.where(some, per_slice(min_u, tf.math.unsorted_segment_min), nans)
    maximum = tf.where(some, per_slice(max_u, tf.math.unsorted_segment_max), nans)
    spread = tf.where(tf.equal(minimum, maximum), tf.zeros_like(mean), tf.sqrt(variance))
    near_count = per_slice(near_u) - (count - finite_count)
    dead = tf.logical_and(near_u >= unit_rows, finite_u > 0)
    low, high = _histogram_range(minimum, maximum, some)
    change_norm, before_norm = tf.sqrt(per_slice(change_u)), tf.sqrt(per_slice(before_u))
    update_size = tf.where(
        tf.logical_and(has_previous, before_norm > 0), change_norm / before_norm, nans
    )
    nan_count = per_slice(nan_u)
    fields = {
        "count": count,
        "mean": mean,
        "std": tf.where(some, spread, nans),
        "min": minimum,
        "max": maximum,
        # sum x^2 = sum (x - S)^2 + 2 S sum (x - S) + n S^2, without a pass.
        "l2_norm": tf.where(
            some,
            tf.sqrt(
                tf.maximum(squares + slice_shift * (2.0 * total + finite_count * slice_shift), 0.0)
            ),
            nans,
        ),
        "mean_abs": per_slice(abs_u) / finite_count,
        "near_zero_fraction": near_count / finite_count,
        "units": slice_units,
        "dead_units": per_slice(tf.cast(dead, tf.float64)),
        "nan_count": nan_count,
        "inf_count": count - finite_count - nan_count,
        "update_size": update_size,
        "hist_low": low,
        "hist_high": high,
    }
    scalars = tf.stack([fields[name] for name in STAT_FIELDS], axis=1)
    counts = tf.reshape(tf.cast(counts, tf.float64), [slices, bins])
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
            tf.TensorSpec([None, 6], tf.int32),
            ids,
            ids,
            ids,
            table,
            ids,
            table,
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float64),
        ]
        _COMPILED[dtype] = compat.logging_function(packed_stats, signature)
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
    return compiled_packed_stats(dtype)(
        tf.reshape(matrix, [-1]),
        tf.reshape(before, [-1]),
        tf.constant(has_previous),
        tf.stack([0, height, width, 1, 0, 0])[None],
        tf.zeros([height], tf.int32),
        tf.zeros([1], tf.int32),
        tf.range(width, dtype=tf.int32) // tf.maximum(block, 1),
        tf.fill([width], tf.cast(height, tf.float64)),
        tf.range(gates, dtype=tf.int32) * block,
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


def _bucket_scale(
    low: tf.Tensor, high: tf.Tensor, bins: tf.Tensor, dtype: tf.DType
) -> tuple[tf.Tensor, tf.Tensor]:
    """Each slice's histogram origin and bucket width in `dtype`. Finite values satisfy
    ``x >= low``, so a position is never negative, and only the top needs clamping (``x ==
    high`` is position `bins`). The width is clipped to the dtype's positive normal range, so
    that no position is ever NaN (which would make an invalid id): a slice without finite values
    has width 0, and ranges of subnormal or overflowing width exist. Non-finite values get the
    id ``slices * bins``, which Bincount ignores."""
    limits = np.finfo(dtype.as_numpy_dtype)
    widths = tf.clip_by_value(
        tf.cast((high - low) / tf.cast(bins, tf.float64), dtype), limits.tiny, limits.max
    )
    return tf.cast(low, dtype), widths


def _histogram_range(
    minimum: tf.Tensor, maximum: tf.Tensor, some: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    single = tf.equal(minimum, maximum)
    low = tf.where(single, minimum - 0.5, minimum)
    high = tf.where(single, maximum + 0.5, maximum)
    return tf.where(some, low, tf.zeros_like(low)), tf.where(some, high, tf.zeros_like(high))
