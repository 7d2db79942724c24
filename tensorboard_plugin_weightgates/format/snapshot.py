"""Heatmap snapshots: a gate slice reduced to a bounded grid of blocks, on the host with NumPy.

Snapshots are taken only at snapshot steps, from a copy of the slice already on the host, so
this module uses NumPy; `stats` does the per-step work on the device.

Bound and reduction (format version 1, see `metadata`):

* The slice is read as a matrix: all axes but the last are flattened into rows (a conv kernel
  ``[kh, kw, in, filters]`` has ``kh * kw * in`` rows), a vector is one row, a scalar is 1x1.
* The block is the smallest square ``b x b`` whose grid of ``ceil(rows / b) x ceil(cols / b)``
  blocks has at most ``max_cells`` cells; a side shorter than ``b`` becomes a single block, so
  ``block = (min(b, rows), min(b, cols))``. The heatmap is the matrix zoomed out by one integer
  factor: cells stay square, the picture keeps the matrix's aspect, and no side has more cells
  than the matrix has entries. With the default 128 * 128 cells: ``[1, 4096]`` -> block (1, 1),
  grid 1 x 4096; ``[1024, 1024]`` -> (8, 8), 128 x 128; ``[64, 1024]`` -> (2, 2), 32 x 512;
  ``[1, 100000]`` -> (1, 7), 1 x 14286.
* Plane 0 (``mean``): the mean of the block's entries, accumulated in float64. The last row and
  column of blocks may be smaller than ``block`` when it does not divide the matrix; they average
  only the entries they cover (no padding).
* Plane 1 (``max_abs``): the block's entry of largest magnitude with its sign; ``+v`` wins a tie
  with ``-v``.
* A NaN anywhere in a block makes both planes NaN. Infinities follow IEEE arithmetic: a block
  holding ``+inf`` has mean ``+inf`` and max_abs ``+inf`` (likewise ``-inf``); one holding both
  has mean NaN and max_abs ``+inf``.
"""

from __future__ import annotations

import operator

import numpy as np

from tensorboard_plugin_weightgates.format import metadata


def snapshot_block(shape: tuple[int, ...], max_cells: int) -> tuple[int, int]:
    """The block ``(block_rows, block_cols)`` `reduce_snapshot` uses for a slice of `shape`.

    Depends on the shape only, so writers can record it in the summary metadata before any data.

    Raises:
      ValueError: if `max_cells` is not a positive integer.
    """
    max_cells = _check_max_cells(max_cells)
    rows, cols = metadata.matrix_shape(shape)
    low, high = 1, max(rows, cols, 1)
    while low < high:  # the cell count only falls as b grows, and b = high gives one cell
        middle = (low + high) // 2
        if _ceil_div(rows, middle) * _ceil_div(cols, middle) <= max_cells:
            high = middle
        else:
            low = middle + 1
    return max(1, min(low, rows)), max(1, min(low, cols))


def reduce_snapshot(values: np.ndarray, max_cells: int) -> np.ndarray:
    """`values` as a float32 ``[2, rows, cols]`` snapshot of at most `max_cells` cells per plane:
    block means, then block entries of largest magnitude (see the module docstring).

    `values` may have any real dtype (float16 and bfloat16 included); it is read as float32, so
    a float64 slice's entries are rounded first.

    Raises:
      ValueError: if `max_cells` is not a positive integer.
    """
    values = np.asarray(values)
    block_rows, block_cols = snapshot_block(values.shape, max_cells)
    rows, cols = metadata.matrix_shape(values.shape)
    matrix = values.astype(np.float32, copy=False).reshape(rows, cols)
    grid = (_ceil_div(rows, block_rows), _ceil_div(cols, block_cols))
    if matrix.size == 0:
        return np.zeros((2, *grid), np.float32)

    def per_block(ufunc: np.ufunc, dtype: type[np.floating] = np.float32) -> np.ndarray:
        by_rows = _reduce_runs(ufunc, matrix, block_rows, dtype)
        return _reduce_runs(ufunc, by_rows.T, block_cols, dtype).T

    block_sizes = np.outer(_run_lengths(rows, block_rows), _run_lengths(cols, block_cols))
    with np.errstate(invalid="ignore"):  # +inf and -inf in one block: NaN, as documented
        mean = per_block(np.add, np.float64) / block_sizes
    highest = per_block(np.maximum)
    lowest = per_block(np.minimum)
    # NaN compares false, so a NaN block takes `lowest`, which is NaN too.
    max_abs = np.where(highest >= -lowest, highest, lowest)
    return np.stack([mean.astype(np.float32), max_abs])


def _reduce_runs(
    ufunc: np.ufunc, matrix: np.ndarray, run: int, dtype: type[np.floating]
) -> np.ndarray:
    """`ufunc` over consecutive runs of `run` rows of `matrix`; the last run may be shorter.

    A reshape of the whole runs plus one reduction of the rest: `ufunc.reduceat` does the same
    but is ten times slower on a 4096 x 4096 kernel.
    """
    whole = matrix.shape[0] // run * run
    parts = [ufunc.reduce(matrix[:whole].reshape(-1, run, matrix.shape[1]), axis=1, dtype=dtype)]
    if whole < matrix.shape[0]:
        parts.append(ufunc.reduce(matrix[whole:], axis=0, keepdims=True, dtype=dtype))
    return np.concatenate(parts)


def _run_lengths(total: int, run: int) -> np.ndarray:
    return np.diff(np.arange(0, total, run), append=total)


def _check_max_cells(max_cells: int) -> int:
    try:
        checked = operator.index(max_cells)
    except TypeError:
        checked = 0
    if checked < 1:
        raise ValueError(f"max_cells must be a positive integer, got {max_cells!r}")
    return checked


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
