"""Tests for `snapshot`: block choice and block reduction against a slow loop over blocks."""

from __future__ import annotations

import numpy as np
import pytest

from tensorboard_plugin_weightgates.format import metadata, options
from tensorboard_plugin_weightgates.format.snapshot import reduce_snapshot, snapshot_block


def _cells(rows: int, cols: int, side: int) -> int:
    return -(-rows // side) * -(-cols // side)


def _reference(values: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """One block at a time, straight from the format description in `metadata`."""
    values = np.asarray(values, np.float32)
    matrix = values.reshape(1, 1) if values.ndim == 0 else values.reshape(-1, values.shape[-1])
    rows, cols = matrix.shape
    grid = (-(-rows // block[0]), -(-cols // block[1]))
    out = np.empty((2, *grid), np.float32)
    for i in range(grid[0]):
        for j in range(grid[1]):
            cells = matrix[i * block[0] : (i + 1) * block[0], j * block[1] : (j + 1) * block[1]]
            if np.isnan(cells).any():
                out[:, i, j] = np.nan
                continue
            with np.errstate(invalid="ignore"):
                out[0, i, j] = np.mean(cells.astype(np.float64))
            largest = np.abs(cells).max()
            out[1, i, j] = cells[np.abs(cells) == largest].max()
    return out


@pytest.mark.parametrize(
    ("shape", "max_cells", "block"),
    [
        ((1, 4096), 16384, (1, 1)),
        ((4096,), 16384, (1, 1)),
        ((1024, 1024), 16384, (8, 8)),
        ((64, 1024), 16384, (2, 2)),
        ((1, 100000), 16384, (1, 7)),
        ((3, 3, 64, 256), 16384, (4, 4)),
        ((), 1, (1, 1)),
        ((7, 5), 1, (7, 5)),
    ],
)
def test_block_examples(shape, max_cells, block):
    assert snapshot_block(shape, max_cells) == block


@pytest.mark.parametrize("max_cells", [1, 2, 7, 100, 16384])
def test_block_is_smallest_square_within_bound(max_cells):
    rng = np.random.default_rng(max_cells)
    shapes = [tuple(int(d) for d in rng.integers(1, 3000, size=2)) for _ in range(40)]
    shapes += [(1, 50000), (50000, 1), (1, 1), (3, 100000)]
    for rows, cols in shapes:
        block_rows, block_cols = snapshot_block((rows, cols), max_cells)
        side = max(block_rows, block_cols)
        assert (block_rows, block_cols) == (min(side, rows), min(side, cols))
        assert _cells(rows, cols, side) <= max_cells
        assert side == 1 or _cells(rows, cols, side - 1) > max_cells


@pytest.mark.parametrize(
    ("shape", "max_cells"),
    [
        ((), 4),
        ((9,), 4),
        ((9,), 100),
        ((7, 10), 6),
        ((7, 10), 1),
        ((5, 3, 11), 8),
        ((2, 3, 4, 5), 9),
    ],
)
def test_reduce_matches_block_loop(shape, max_cells):
    rng = np.random.default_rng(len(shape) * 100 + max_cells)
    values = rng.normal(size=shape).astype(np.float32)
    if values.size > 4:
        flat = values.reshape(-1)
        flat[rng.choice(flat.size, 3, replace=False)] = [np.nan, np.inf, -np.inf]
    result = reduce_snapshot(values, max_cells)
    expected = _reference(values, snapshot_block(shape, max_cells))
    assert result.dtype == np.float32
    assert result.shape[1] * result.shape[2] <= max_cells
    np.testing.assert_allclose(result[0], expected[0], rtol=1e-6)
    np.testing.assert_array_equal(result[1], expected[1])


def test_infinities_and_ties():
    values = np.array([[np.inf, 1.0, -2.0, 2.0], [-np.inf, 0.0, 0.0, 0.0]], np.float32)
    result = reduce_snapshot(values, 2)  # blocks (2, 2): [[inf, 1], [-inf, 0]], [[-2, 2], [0, 0]]
    np.testing.assert_array_equal(result[0], [[np.nan, 0.0]])
    np.testing.assert_array_equal(result[1], [[np.inf, 2.0]])
    only_positive = reduce_snapshot(np.array([[np.inf, -5.0]], np.float32), 1)
    np.testing.assert_array_equal(only_positive[:, 0, 0], [np.inf, np.inf])


def test_block_one_keeps_values():
    values = np.arange(-6, 6, dtype=np.float32).reshape(3, 4)
    values[1, 2] = np.nan
    result = reduce_snapshot(values, 12)
    np.testing.assert_array_equal(result[0], values)
    np.testing.assert_array_equal(result[1], values)


def test_ragged_blocks_average_only_real_entries():
    values = np.full((10, 10), 3.0, np.float32)  # max_cells 9 -> block (4, 4), last blocks 2 wide
    result = reduce_snapshot(values, 9)
    assert result.shape == (2, 3, 3)
    np.testing.assert_array_equal(result, np.full((2, 3, 3), 3.0, np.float32))


def test_large_kernel_is_bounded():
    values = np.random.default_rng(0).normal(size=(4096, 4096)).astype(np.float32)
    result = reduce_snapshot(values, options.DEFAULT_SNAPSHOT_MAX_CELLS)
    assert result.shape == (2, 128, 128)
    np.testing.assert_allclose(result[0, 0, 0], values[:32, :32].mean(dtype=np.float64), rtol=1e-5)
    assert reduce_snapshot(np.ones((1, 4096)), 16384).shape == (2, 1, 4096)


def test_dtypes_are_read_as_float32():
    values = np.arange(12).reshape(3, 4)
    for dtype in (np.int32, np.float16, np.float64):
        result = reduce_snapshot(values.astype(dtype), 12)
        assert result.dtype == np.float32
        np.testing.assert_array_equal(result[0], values)


def test_empty_slice_gives_empty_grid():
    assert reduce_snapshot(np.zeros((0, 8), np.float32), 4).shape == (2, 0, 8)


def test_parse_round_trip():
    values = np.random.default_rng(1).normal(size=(6, 40)).astype(np.float32)
    values[0, 0] = np.nan
    result = reduce_snapshot(values, 16)
    parsed = metadata.parse_snapshot_tensor(result)
    assert parsed.shape == (len(metadata.SNAPSHOT_PLANES), 2, 8)  # block (5, 5)
    np.testing.assert_array_equal(parsed, result)


@pytest.mark.parametrize("max_cells", [0, -3, 2.5, None])
def test_bad_max_cells(max_cells):
    with pytest.raises(ValueError, match="max_cells"):
        snapshot_block((4, 4), max_cells)
