"""Tests for `stats`: `gate_stats` against a plain NumPy computation, one gate at a time."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tensorboard_plugin_weightgates.format import metadata, options
from tensorboard_plugin_weightgates.keras_writer.stats import (
    Segments,
    compiled_packed_stats,
    compute_dtype,
    gate_stats,
    histogram_tensor,
)

FIELDS = {name: i for i, name in enumerate(metadata.STAT_FIELDS)}
STATS = len(metadata.STAT_FIELDS)


def _reference(values, gates, bins, near_zero, previous=None) -> np.ndarray:
    """The documented semantics in float64 NumPy, one gate and one unit at a time."""
    values = np.asarray(values, np.float32)
    matrix = values.reshape(1, 1) if values.ndim == 0 else values.reshape(-1, values.shape[-1])
    if previous is not None:
        previous = np.asarray(previous, np.float32).reshape(matrix.shape)
    units = matrix.shape[1] // gates
    threshold = np.float32(near_zero)
    out = np.empty((gates, STATS + bins))
    for gate in range(gates):
        columns = slice(gate * units, (gate + 1) * units)
        block = matrix[:, columns].astype(np.float64)
        finite = block[np.isfinite(block)]
        row = dict.fromkeys(metadata.STAT_FIELDS, np.nan)
        row.update(
            count=block.size,
            units=units,
            nan_count=np.isnan(block).sum(),
            inf_count=np.isinf(block).sum(),
            l2_norm=np.sqrt(np.sum(finite**2)) if finite.size else np.nan,
            hist_low=0.0,
            hist_high=0.0,
        )
        counts = np.zeros(bins)
        if finite.size:
            low, high = finite.min(), finite.max()
            if low == high:
                low, high = low - 0.5, high + 0.5
            counts = np.histogram(finite, bins=bins, range=(low, high))[0]
            row.update(
                mean=finite.mean(),
                std=finite.std(),
                min=finite.min(),
                max=finite.max(),
                mean_abs=np.abs(finite).mean(),
                near_zero_fraction=np.mean(np.abs(finite.astype(np.float32)) <= threshold),
                hist_low=low,
                hist_high=high,
            )
        dead = 0
        for unit in block.T:
            kept = unit[np.isfinite(unit)].astype(np.float32)
            dead += bool(kept.size) and bool(np.all(np.abs(kept) <= threshold))
        row["dead_units"] = dead
        if previous is not None:
            before = previous[:, columns].astype(np.float64)
            both = np.isfinite(block) & np.isfinite(before)
            norm = np.linalg.norm(before[both])
            if norm > 0:
                row["update_size"] = np.linalg.norm(block[both] - before[both]) / norm
        out[gate, :STATS] = [row[name] for name in metadata.STAT_FIELDS]
        out[gate, STATS:] = counts
    return out


def _near_edges(values, reference, gates, bins) -> np.ndarray:
    """Per gate, how many finite values lie within 1e-4 bucket widths of an inner edge, where
    float32 bucketing may legitimately differ from NumPy's float64 by one bucket."""
    values = np.asarray(values, np.float32)
    matrix = values.reshape(1, 1) if values.ndim == 0 else values.reshape(-1, values.shape[-1])
    blocks = np.split(matrix.astype(np.float64), gates, axis=1)
    near = np.zeros(gates, int)
    for gate, block in enumerate(blocks):
        low, high = reference[gate, FIELDS["hist_low"]], reference[gate, FIELDS["hist_high"]]
        finite = block[np.isfinite(block)]
        if high > low:
            position = (finite - low) / (high - low) * bins
            gap = np.abs(position - np.round(position))
            near[gate] = np.sum((gap < 1e-4) & (position > 0.5) & (position < bins - 0.5))
    return near


def _assert_matches(result, expected, values, gates, bins):
    result = np.asarray(result)
    assert result.shape == expected.shape and result.dtype == np.float64
    scale = max(1.0, np.nanmax(np.abs(expected[:, FIELDS["l2_norm"]])))
    np.testing.assert_allclose(result[:, :STATS], expected[:, :STATS], rtol=2e-5, atol=1e-6 * scale)
    for name in ("count", "min", "max", "units", "dead_units", "nan_count", "inf_count"):
        np.testing.assert_array_equal(result[:, FIELDS[name]], expected[:, FIELDS[name]], name)
    miscounted = np.abs(result[:, STATS:] - expected[:, STATS:]).sum(axis=1)
    assert np.all(miscounted <= 2 * _near_edges(values, expected, gates, bins))


def _values(shape, seed, nonfinite=True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = (rng.normal(size=shape) * rng.choice([0.01, 1.0, 50.0])).astype(np.float32)
    if nonfinite and values.size >= 8:
        flat = values.reshape(-1)
        flat[rng.choice(flat.size, 3, replace=False)] = [np.nan, np.inf, -np.inf]
    return values


CASES = [
    ((), 1),
    ((12,), 1),
    ((12,), 3),
    ((12,), 4),
    ((7, 12), 4),
    ((6, 24), 3),
    ((3, 5, 16), 4),
    ((3, 3, 4, 12), 4),
    ((2, 3, 2, 9), 3),
]


@pytest.mark.parametrize(("shape", "gates"), CASES)
@pytest.mark.parametrize("nonfinite", [False, True])
def test_matches_numpy(shape, gates, nonfinite):
    values = _values(shape, seed=len(shape) * 10 + gates, nonfinite=nonfinite)
    with np.errstate(invalid="ignore"):  # inf - inf
        previous = values + _values(shape, seed=99, nonfinite=nonfinite) * 0.1
    for before in (None, previous):
        result = gate_stats(values, gates, bins=7, near_zero=0.05, previous=before)
        expected = _reference(values, gates, 7, 0.05, before)
        _assert_matches(result, expected, values, gates, 7)


def test_large_kernel_matches_numpy():
    values = _values((300, 1024), seed=5)
    result = gate_stats(values, 4, options.DEFAULT_BINS, 1e-3)
    expected = _reference(values, 4, options.DEFAULT_BINS, 1e-3)
    _assert_matches(result, expected, values, 4, options.DEFAULT_BINS)
    counts = np.asarray(result)[:, STATS:].sum(axis=1)
    np.testing.assert_array_equal(counts, 300 * 256 - _nonfinite(values))


def _nonfinite(values) -> np.ndarray:
    return (~np.isfinite(values.reshape(values.shape[0], 4, -1))).sum(axis=(0, 2))


PACKED_KERNELS = [(7, 12, 4), (5, 8, 2), (0, 12, 3), (3, 12, 4), (1, 12, 4), (4, 6, 1), (2, 8, 2)]
"""(rows, width, gates): kernels that share a width (a block of several, with a kernel without
rows among them) and kernels alone in theirs, not in block order."""


@pytest.mark.filterwarnings("ignore:All-NaN slice")  # the kernel without rows has no norm
@pytest.mark.parametrize("broken", [None, 3])
@pytest.mark.parametrize("own_block, alone", [(2**16, 1), (36, 5)])
def test_packed_kernels_match_each_kernel_alone(broken, own_block, alone):
    """Every slice's row of one packed call equals the reference for its kernel alone, with a
    NaN and Inf in one kernel (`broken`), which must not touch the others' statistics; also
    where the larger kernels have blocks of their own (`own_block`), whose tables broadcast."""
    segments = Segments.of_kernels(PACKED_KERNELS, own_block)
    assert np.sum(segments.blocks[:, 3] == 1) == alone
    kernels = [
        _values((rows, width), seed=k, nonfinite=k == broken)
        for k, (rows, width, _) in enumerate(PACKED_KERNELS)
    ]
    previous = [
        k + _values(k.shape, seed=50 + i, nonfinite=False) * 0.1 for i, k in enumerate(kernels)
    ]

    def flat(parts):
        return np.concatenate([parts[k].reshape(-1) for k in segments.order]).astype(np.float32)

    assert segments.size == flat(kernels).size
    assert sorted(segments.order) == list(range(len(PACKED_KERNELS)))
    for before, has_previous in ((flat(kernels), False), (flat(previous), True)):
        result = np.asarray(
            compiled_packed_stats(tf.float32)(
                flat(kernels),
                before,
                tf.constant(has_previous),
                *segments.tables(),
                tf.constant(7, tf.int32),
                tf.constant(0.05, tf.float64),
            )
        )
        assert result.shape == (sum(g for _, _, g in PACKED_KERNELS), STATS + 7)
        row = 0
        for k, (_, _, gates) in enumerate(PACKED_KERNELS):
            expected = _reference(kernels[k], gates, 7, 0.05, previous[k] if has_previous else None)
            _assert_matches(result[row : row + gates], expected, kernels[k], gates, 7)
            row += gates


def test_an_overflowing_kernel_leaves_its_block_mates_exact():
    """Squares of a diverged kernel overflow to Inf; a kernel of the same width packed beside
    it keeps statistics equal to its own alone."""
    segments = Segments.of_kernels([(2, 8, 2), (5, 8, 2)])
    huge = np.full((2, 8), 3e38, np.float32) * np.where(np.arange(8) % 2, 1, -1)
    healthy = _values((5, 8), seed=1, nonfinite=False)
    flat = np.concatenate([huge.reshape(-1), healthy.reshape(-1)])
    result = np.asarray(
        compiled_packed_stats(tf.float32)(
            flat,
            flat,
            tf.constant(False),
            *segments.tables(),
            tf.constant(5),
            tf.constant(0.0, tf.float64),
        )
    )
    _assert_matches(result[2:], _reference(healthy, 2, 5, 0.0), healthy, 2, 5)
    np.testing.assert_array_equal(result[:2, FIELDS["max"]], np.float32([3e38, 3e38]))


def test_segments_refuse_a_width_the_gates_do_not_divide():
    with pytest.raises(ValueError, match="not divisible by 4 gates"):
        Segments.of_kernels([(3, 12, 4), (2, 10, 4)])


def test_graph_mode_equals_eager():
    values = _values((6, 40), seed=3)
    previous = _values((6, 40), seed=4)
    traced = tf.function(
        lambda v, p: gate_stats(v, 4, 10, 0.01, previous=p),
        input_signature=[tf.TensorSpec([None, 40]), tf.TensorSpec([None, 40])],
    )
    eager = gate_stats(values, 4, 10, 0.01, previous=previous)
    np.testing.assert_array_equal(traced(values, previous), eager)
    clean = np.nan_to_num(values, posinf=1.0, neginf=-1.0)
    np.testing.assert_array_equal(
        traced(clean, clean + 1.0), gate_stats(clean, 4, 10, 0.01, previous=clean + 1.0)
    )


def test_update_size():
    previous = np.ones((5, 8), np.float32)
    values = previous.copy()
    values[:, :4] += 0.1  # first gate moves by 10 %, second stays
    result = np.asarray(gate_stats(values, 2, 4, 0.0, previous=previous))
    np.testing.assert_allclose(result[:, FIELDS["update_size"]], [0.1, 0.0], rtol=1e-6)
    assert np.isnan(np.asarray(gate_stats(values, 2, 4, 0.0))[:, FIELDS["update_size"]]).all()
    from_zero = gate_stats(values, 2, 4, 0.0, previous=np.zeros_like(previous))
    assert np.isnan(np.asarray(from_zero)[:, FIELDS["update_size"]]).all()


def test_dead_units():
    kernel = np.full((4, 6), 0.5, np.float32)  # gates=2: units 0-2 and 3-5
    kernel[:, 0] = 0.0  # dead
    kernel[:, 1] = [0.0, np.nan, 1e-4, -1e-4]  # dead: every finite value is near zero
    kernel[:, 3] = np.nan  # no finite value: broken, not dead
    kernel[:, 4] = [0.0, 0.0, 0.0, 0.2]  # one large value keeps it alive
    result = np.asarray(gate_stats(kernel, 2, 5, near_zero=1e-3))
    np.testing.assert_array_equal(result[:, FIELDS["dead_units"]], [2, 0])
    np.testing.assert_array_equal(result[:, FIELDS["nan_count"]], [1, 4])
    np.testing.assert_allclose(result[:, FIELDS["near_zero_fraction"]], [7 / 11, 3 / 8])


def test_constant_and_nonfinite_gates():
    values = np.array([[3.0, np.nan], [3.0, np.inf]], np.float32)
    result = np.asarray(gate_stats(values, 2, 4, 0.1))
    constant, broken = result
    assert constant[FIELDS["std"]] == 0.0
    assert (constant[FIELDS["hist_low"]], constant[FIELDS["hist_high"]]) == (2.5, 3.5)
    np.testing.assert_array_equal(constant[STATS:], [0, 0, 2, 0])
    for name in ("mean", "std", "min", "max", "mean_abs", "l2_norm", "near_zero_fraction"):
        assert np.isnan(broken[FIELDS[name]]), name
    assert (broken[FIELDS["hist_low"]], broken[FIELDS["hist_high"]]) == (0.0, 0.0)
    np.testing.assert_array_equal(broken[STATS:], 0)
    assert (broken[FIELDS["nan_count"]], broken[FIELDS["inf_count"]]) == (1, 1)


def test_tight_cluster_keeps_its_spread():
    # A forget-gate bias: 1.0 plus a tiny spread. Unshifted float32 moments would cancel it away.
    values = (1.0 + 1e-4 * np.random.default_rng(2).normal(size=4096)).astype(np.float32)
    result = np.asarray(gate_stats(values, 1, 10, 0.0))[0]
    np.testing.assert_allclose(result[FIELDS["std"]], values.astype(np.float64).std(), rtol=1e-4)
    np.testing.assert_allclose(result[FIELDS["l2_norm"]], np.linalg.norm(values), rtol=1e-6)


def test_histogram_tensor_layout():
    values = _values((8, 30), seed=6)
    stats = gate_stats(values, 3, 12, 0.0)
    for gate in range(3):
        histogram = np.asarray(histogram_tensor(stats[gate]))
        record = metadata.parse_stats_tensor(np.asarray(stats[gate]), 12)
        edges = metadata.histogram_edges(record["hist_low"], record["hist_high"], 12)
        assert histogram.shape == (12, 3) and histogram.dtype == np.float64
        np.testing.assert_array_equal(histogram[:, 0], edges[:-1])
        np.testing.assert_array_equal(histogram[:, 1], edges[1:])
        np.testing.assert_array_equal(histogram[:, 2], record["counts"])


def test_parse_round_trip():
    values = _values((10, 16), seed=7)
    stats = np.asarray(gate_stats(values, 4, options.DEFAULT_BINS, 1e-3))
    for gate, vector in enumerate(stats):
        record = metadata.parse_stats_tensor(vector, options.DEFAULT_BINS)
        assert record["units"] == 4 and record["count"] == 40
        finite = record["count"] - record["nan_count"] - record["inf_count"]
        assert record["counts"].sum() == finite
        block = values[:, gate * 4 : (gate + 1) * 4]
        assert record["max"] == np.max(block[np.isfinite(block)])


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64, tf.int32])
def test_dtypes(dtype):
    values = tf.cast(tf.reshape(tf.range(-6, 6), [3, 4]), dtype)
    result = np.asarray(gate_stats(values, 2, 4, 0.5))
    np.testing.assert_array_equal(result[:, FIELDS["min"]], [-6, -4])
    np.testing.assert_array_equal(result[:, FIELDS["max"]], [3, 5])
    assert compute_dtype(dtype) == (tf.float64 if dtype == tf.float64 else tf.float32)


def test_numpy_integer_arguments():
    values = _values((4, 12), seed=8)
    np.testing.assert_array_equal(
        gate_stats(values, np.int64(3), np.int32(5), 0.1), gate_stats(values, 3, 5, 0.1)
    )


def test_float64_keeps_its_range():
    result = np.asarray(gate_stats(np.array([1e300, -1e300]), 1, 2, 0.0))[0]
    assert result[FIELDS["inf_count"]] == 0 and result[FIELDS["max"]] == 1e300


def test_extreme_values_never_raise():
    values = np.array([[-3e38, 3e38, np.nan, 1.0, 1e-44, 0.0]], np.float32)
    for function in (gate_stats, tf.function(gate_stats)):
        result = np.asarray(function(values, 2, 4, 0.0))
        np.testing.assert_array_equal(result[:, FIELDS["min"]], np.float32([-3e38, 0.0]))
        np.testing.assert_array_equal(result[:, FIELDS["max"]], np.float32([3e38, 1.0]))
        np.testing.assert_array_equal(result[:, STATS:].sum(axis=1), [2, 3])


def test_empty_slice():
    result = np.asarray(gate_stats(np.zeros((0, 8), np.float32), 2, 3, 0.0))
    np.testing.assert_array_equal(result[:, FIELDS["count"]], [0, 0])
    np.testing.assert_array_equal(result[:, STATS:], 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"gates": 5}, ValueError, "divisible"),
        ({"gates": 0}, ValueError, "gates"),
        ({"bins": 0}, ValueError, "bins"),
        ({"near_zero": -1.0}, ValueError, "near_zero"),
        ({"near_zero": float("nan")}, ValueError, "near_zero"),
        ({"previous": np.zeros((4, 4))}, ValueError, "previous"),
        ({"values": np.zeros((2, 4), bool)}, TypeError, "bool"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    arguments = {"values": np.zeros((2, 4), np.float32), "gates": 2, "bins": 3, "near_zero": 0.0}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        gate_stats(**arguments)
