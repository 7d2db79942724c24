"""Tests of `reader` against real event files read by TensorBoard's own data provider.

The helpers at the top write log directories with `tf.summary.write` and the summary content
of `metadata`, with values that `stats_vector` and `snapshot_planes` recompute, so a test can
compare what the reader returns with what was written. `test_plugin` and `test_loader` use
them too.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Iterable, Sequence

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorboard import context as tb_context  # noqa: E402
from tensorboard.backend.event_processing import data_provider as mux_data_provider  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_multiplexer  # noqa: E402

from tensorboard_plugin_weightgates import metadata, reader  # noqa: E402

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("update", "reset", "candidate")
BINS = 5
NEAR_ZERO = 1e-3
NAN_GATE = 1
"""Gate index whose snapshots hold a NaN cell, and whose stats hold a NaN `std` at step 0."""


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """A kernel to write: its gate slices, and which kinds and steps to log."""

    infos: tuple[metadata.SliceInfo, ...]
    kinds: tuple[str, ...] = ("weights", "gradients")
    stats_steps: tuple[int, ...] = (0, 10, 20)
    snapshot_steps: tuple[int, ...] = (0, 20)
    block: tuple[int, int] = (1, 1)


def kernel_infos(
    layer: str = "lstm",
    layer_type: str = "LSTM",
    order: int = 0,
    kernel: str = "kernel",
    gates: Sequence[str | None] = LSTM_GATES,
    shape: tuple[int, ...] = (3, 2),
    direction: str = "forward",
    cell: int | None = None,
) -> tuple[metadata.SliceInfo, ...]:
    """The slices of one kernel; `shape` is one gate's shape."""
    return tuple(
        metadata.SliceInfo(
            layer=layer,
            layer_type=layer_type,
            order=order,
            direction=direction,
            cell=cell,
            kernel=kernel,
            gate=gate,
            gates=tuple(gates),
            gate_index=index,
            shape=tuple(shape),
        )
        for index, gate in enumerate(gates)
    )


def stats_vector(info: metadata.SliceInfo, kind: str, step: int) -> np.ndarray:
    """The stats vector the fixtures write for a slice at a step: distinct per field, gate,
    kind and step; `update_size` NaN for gradients and at step 0 (as the writer does), `std`
    NaN at step 0 of gate `NAN_GATE`, and whole bucket counts."""
    fields = len(metadata.STAT_FIELDS)
    base = step + 0.125 * info.gate_index + (0.5 if kind == "gradients" else 0.0)
    vector = base + 0.001 * np.arange(fields + BINS, dtype=np.float64)
    vector[fields:] = (np.arange(BINS) + step + info.gate_index) % 7
    if kind == "gradients" or step == 0:
        vector[metadata.STAT_FIELDS.index("update_size")] = np.nan
    if step == 0 and info.gate_index == NAN_GATE:
        vector[metadata.STAT_FIELDS.index("std")] = np.nan
    return vector


def snapshot_planes(
    info: metadata.SliceInfo, kind: str, step: int, block: tuple[int, int] = (1, 1)
) -> np.ndarray:
    """The float32 ``[2, rows, cols]`` snapshot the fixtures write for a slice at a step, with
    a NaN cell at (0, 0) in gate `NAN_GATE` and an Inf cell at (0, 1) in gate 0."""
    rows = int(np.prod(info.shape[:-1])) if len(info.shape) > 1 else 1
    cols = info.shape[-1] if info.shape else 1
    rows, cols = -(-rows // block[0]), -(-cols // block[1])
    grid = np.add.outer(10 * np.arange(rows), np.arange(cols)).astype(np.float32)
    mean = grid + step + 100 * info.gate_index + (0.5 if kind == "gradients" else 0.0)
    planes = np.stack([mean, mean + 0.25]).astype(np.float32)
    if info.gate_index == NAN_GATE:
        planes[:, 0, 0] = np.nan
    if info.gate_index == 0 and cols > 1:
        planes[:, 0, 1] = np.inf
    return planes


def write_run(run_dir: str, kernels: Iterable[KernelSpec]) -> None:
    """Writes the kernels' records into one event file in `run_dir`, step by step as a
    training loop does, with each tag's metadata on its first write only."""
    kernels = list(kernels)
    steps = sorted({s for k in kernels for s in (*k.stats_steps, *k.snapshot_steps)})
    described: set[str] = set()
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for step in steps:
            for spec in kernels:
                for kind in spec.kinds:
                    for info in spec.infos:
                        if step in spec.stats_steps:
                            tag = metadata.stats_tag(info, kind)
                            stats_md = metadata.create_stats_metadata(info, kind, BINS, NEAR_ZERO)
                            tf.summary.write(
                                tag,
                                stats_vector(info, kind, step),
                                step=step,
                                metadata=None if tag in described else stats_md,
                            )
                            described.add(tag)
                        if step in spec.snapshot_steps:
                            tag = metadata.snapshot_tag(info, kind)
                            snapshot_md = metadata.create_snapshot_metadata(
                                info, kind, 1 << 20, spec.block
                            )
                            tf.summary.write(
                                tag,
                                snapshot_planes(info, kind, step, spec.block),
                                step=step,
                                metadata=None if tag in described else snapshot_md,
                            )
                            described.add(tag)
    writer.close()


def write_raw(run_dir: str, tag: str, values: np.ndarray, step: int, content: bytes) -> None:
    """Writes one record under the stats plugin name with arbitrary summary content."""
    summary_metadata = metadata.create_stats_metadata(kernel_infos()[0], "weights", BINS, 0.0)
    summary_metadata.plugin_data.content = content
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tf.summary.write(tag, values, step=step, metadata=summary_metadata)
    writer.close()


def model_kernels() -> list[KernelSpec]:
    """A model's kernels, written in an order unlike the model's: a bidirectional LSTM
    (order 0, both directions, kernel and bias), a GRU (order 1, weights only, no snapshots),
    a SimpleRNN (order 2, not gated) and the two LSTM cells of a StackedRNNCells (order 3)."""
    return [
        KernelSpec(
            kernel_infos("gru", "GRU", 1, "recurrent_kernel", GRU_GATES, (2, 2)),
            kinds=("weights",),
            snapshot_steps=(),
        ),
        KernelSpec(kernel_infos("bidirectional", "LSTM", 0, "kernel", direction="backward")),
        KernelSpec(kernel_infos("bidirectional", "LSTM", 0, "bias", shape=(2,))),
        KernelSpec(kernel_infos("simple_rnn", "SimpleRNN", 2, "kernel", (None,), (3, 4))),
        KernelSpec(kernel_infos("stacked", "RNN", 3, "kernel", cell=1), kinds=("weights",)),
        KernelSpec(kernel_infos("stacked", "RNN", 3, "kernel", cell=0), kinds=("weights",)),
        KernelSpec(kernel_infos("bidirectional", "LSTM", 0, "kernel")),
    ]


def event_files(run_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*")))


def multiplexer_provider(logdir: str) -> mux_data_provider.MultiplexerDataProvider:
    """TensorBoard's in-process data provider over `logdir`, keeping what the loader asks."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance=dict(metadata.SAMPLES_PER_PLUGIN)
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    return mux_data_provider.MultiplexerDataProvider(multiplexer, logdir)


CTX = tb_context.RequestContext()


@pytest.fixture(scope="module")
def model_logdir(tmp_path_factory) -> str:
    logdir = str(tmp_path_factory.mktemp("logs"))
    write_run(os.path.join(logdir, "run_a"), model_kernels())
    return logdir


@pytest.fixture(scope="module")
def provider(model_logdir):
    return multiplexer_provider(model_logdir)


def _kernel(provider, key, run="run_a") -> reader.Kernel:
    return reader.list_kernels(provider, CTX, "").kernel(run, key)


def test_index_lists_kernels_in_model_order_with_shapes_and_steps(provider):
    index = reader.read_index(provider, CTX, "")

    assert index.errors == {}
    entries = index.runs["run_a"]
    assert [e.kernel.key for e in entries] == [
        ("bidirectional", None, "forward", "kernel"),
        ("bidirectional", None, "forward", "bias"),
        ("bidirectional", None, "backward", "kernel"),
        ("gru", None, "forward", "recurrent_kernel"),
        ("simple_rnn", None, "forward", "kernel"),
        ("stacked", 0, "forward", "kernel"),
        ("stacked", 1, "forward", "kernel"),
    ]
    lstm, bias, _, gru, simple, _, _ = entries
    assert lstm.kernel.shape == (3, 8)
    assert lstm.kernel.gates == LSTM_GATES
    assert lstm.kernel.gate_boundaries == (0, 2, 4, 6, 8)
    assert bias.kernel.shape == (8,)
    assert gru.kernel.shape == (2, 6)
    assert gru.kernel.gate_boundaries == (0, 2, 4, 6)
    assert lstm.steps == {
        kind: reader.KindSteps(stats_steps=(0, 10, 20), snapshot_steps=(0, 20))
        for kind in ("weights", "gradients")
    }
    assert gru.steps == {"weights": reader.KindSteps((0, 10, 20), ())}
    assert simple.kernel.gates == (None,)
    assert (simple.kernel.shape, simple.kernel.gate_boundaries) == ((3, 4), (0, 4))


def test_stats_are_the_values_written_with_nan_kept(provider):
    kernel = _kernel(provider, ("bidirectional", None, "forward", "kernel"))

    stats = reader.read_stats(provider, CTX, "", kernel, "gradients")

    assert (stats.bins, stats.near_zero) == (BINS, NEAR_ZERO)
    assert [g.gate for g in stats.gates] == list(LSTM_GATES)
    fields = len(metadata.STAT_FIELDS)
    for gate, info in zip(stats.gates, kernel_infos("bidirectional")):
        assert gate.steps.tolist() == [0, 10, 20]
        written = np.stack([stats_vector(info, "gradients", s) for s in (0, 10, 20)])
        np.testing.assert_array_equal(gate.values, written[:, :fields])
        np.testing.assert_array_equal(gate.counts, written[:, fields:])
    update_size = metadata.STAT_FIELDS.index("update_size")
    assert np.isnan(stats.gates[0].values[:, update_size]).all()
    assert np.isnan(stats.gates[NAN_GATE].values[0, metadata.STAT_FIELDS.index("std")])


def test_stats_of_one_gate(provider):
    kernel = _kernel(provider, ("gru", None, "forward", "recurrent_kernel"))

    stats = reader.read_stats(provider, CTX, "", kernel, "weights", gate="reset")

    assert [g.gate for g in stats.gates] == ["reset"]
    written = stats_vector(
        kernel_infos("gru", "GRU", 1, "recurrent_kernel", GRU_GATES)[1], "weights", 10
    )
    np.testing.assert_array_equal(stats.gates[0].values[1], written[: len(metadata.STAT_FIELDS)])


@pytest.mark.parametrize(
    "key, kind, gate, message",
    [
        (("gru", None, "forward", "recurrent_kernel"), "gradients", None, "no statistics of"),
        (("gru", None, "forward", "recurrent_kernel"), "weights", "forget", "no gate 'forget'"),
        (("gru", None, "forward", "recurrent_kernel"), "biases", None, "unknown kind"),
        (("simple_rnn", None, "forward", "kernel"), "weights", "input", "not a gated kernel"),
    ],
)
def test_stats_not_found(provider, key, kind, gate, message):
    kernel = _kernel(provider, key)
    with pytest.raises(reader.NotFoundError, match=message):
        reader.read_stats(provider, CTX, "", kernel, kind, gate=gate)


def test_unknown_run_and_kernel_are_not_found(provider):
    listing = reader.list_kernels(provider, CTX, "")
    with pytest.raises(reader.NotFoundError, match="run 'nope'"):
        listing.kernel("nope", ("gru", None, "forward", "recurrent_kernel"))
    with pytest.raises(reader.NotFoundError, match="no records of kernel 'kernel'"):
        listing.kernel("run_a", ("gru", None, "forward", "kernel"))
    with pytest.raises(reader.NotFoundError, match="cell 0"):
        listing.kernel("run_a", ("gru", 0, "forward", "recurrent_kernel"))


def test_snapshot_puts_gates_side_by_side(provider):
    kernel = _kernel(provider, ("bidirectional", None, "forward", "kernel"))

    latest = reader.read_snapshot(provider, CTX, "", kernel, "weights")
    first = reader.read_snapshot(provider, CTX, "", kernel, "weights", step=0)

    assert (latest.step, latest.steps, first.step) == (20, (0, 20), 0)
    assert latest.gate_boundaries == (0, 2, 4, 6, 8)
    assert latest.block == (1, 1)
    written = np.concatenate(
        [snapshot_planes(info, "weights", 0) for info in kernel_infos("bidirectional")], axis=2
    )
    assert first.values.dtype == np.float32
    np.testing.assert_array_equal(first.values, written)  # NaN and Inf in place
    assert np.isnan(first.values[:, 0, 2]).all() and np.isinf(first.values[:, 0, 1]).all()


def test_snapshot_of_a_vector_is_one_row(provider):
    kernel = _kernel(provider, ("bidirectional", None, "forward", "bias"))

    snapshot = reader.read_snapshot(provider, CTX, "", kernel, "gradients", step=20)

    assert snapshot.values.shape == (2, 1, 8)


def test_snapshot_at_unknown_step_is_not_found(provider):
    kernel = _kernel(provider, ("bidirectional", None, "forward", "kernel"))
    with pytest.raises(reader.NotFoundError, match="no snapshot at step 10"):
        reader.read_snapshot(provider, CTX, "", kernel, "weights", step=10)


def test_snapshot_default_is_the_latest_step_of_every_gate(tmp_path):
    """While a step is being written, some gates have it and others not yet."""
    infos = kernel_infos()
    write_run(str(tmp_path / "run"), [KernelSpec(infos, kinds=("weights",))])
    write_run(str(tmp_path / "run"), [KernelSpec(infos[:2], ("weights",), (), (30,))])
    provider = multiplexer_provider(str(tmp_path))
    kernel = reader.list_kernels(provider, CTX, "").kernel("run", infos[0].kernel_key)

    snapshot = reader.read_snapshot(provider, CTX, "", kernel, "weights")

    assert (snapshot.step, snapshot.steps) == (20, (0, 20))
    with pytest.raises(reader.NotFoundError, match="step 30"):
        reader.read_snapshot(provider, CTX, "", kernel, "weights", step=30)


def test_block_reduced_snapshot(tmp_path):
    infos = kernel_infos(shape=(5, 4))
    write_run(str(tmp_path / "run"), [KernelSpec(infos, ("weights",), (0,), (0,), block=(2, 3))])
    provider = multiplexer_provider(str(tmp_path))
    kernel = reader.list_kernels(provider, CTX, "").kernel("run", infos[0].kernel_key)

    snapshot = reader.read_snapshot(provider, CTX, "", kernel, "weights")

    assert kernel.shape == (5, 16)
    assert snapshot.block == (2, 3)
    assert snapshot.values.shape == (2, 3, 8)
    assert snapshot.gate_boundaries == (0, 2, 4, 6, 8)


def test_unsupported_version_is_skipped_and_reported(tmp_path):
    run_dir = str(tmp_path / "run")
    write_run(run_dir, [KernelSpec(kernel_infos(), kinds=("weights",))])
    future = kernel_infos(layer="future")[0]
    write_raw(
        run_dir,
        metadata.stats_tag(future, "weights"),
        np.zeros(len(metadata.STAT_FIELDS) + BINS),
        0,
        b'{"version": 2, "record": "stats", "kind": "weights"}',
    )

    index = reader.read_index(multiplexer_provider(str(tmp_path)), CTX, "")

    assert [e.kernel.layer for e in index.runs["run"]] == ["lstm"]
    assert "format version 2 is not supported" in index.errors["run"]
    assert "future" in index.errors["run"]


def test_kernel_missing_a_gate_is_skipped_and_reported(tmp_path):
    infos = kernel_infos()
    write_run(str(tmp_path / "run"), [KernelSpec(infos[:3], kinds=("weights",))])

    index = reader.read_index(multiplexer_provider(str(tmp_path)), CTX, "")

    assert index.runs == {}
    assert "no readable records of gates ['output']" in index.errors["run"]


def test_corrupt_event_file_does_not_break_other_runs(tmp_path):
    kernels = [KernelSpec(kernel_infos(), kinds=("weights",))]
    write_run(str(tmp_path / "good"), kernels)
    write_run(str(tmp_path / "broken"), kernels)
    (path,) = event_files(str(tmp_path / "broken"))
    with open(path, "r+b") as f:
        size = os.path.getsize(path)
        f.seek(size // 2)
        f.write(b"\xff" * 64)
        f.truncate(size - 10)
    with open(os.path.join(tmp_path, "broken", "events.out.tfevents.0.garbage"), "wb") as f:
        f.write(os.urandom(1000))
    provider = multiplexer_provider(str(tmp_path))

    index = reader.read_index(provider, CTX, "")

    assert "broken" in index.errors
    (good,) = index.runs["good"]
    assert good.steps["weights"] == reader.KindSteps((0, 10, 20), (0, 20))
    stats = reader.read_stats(provider, CTX, "", good.kernel, "weights")
    assert [g.steps.tolist() for g in stats.gates] == [[0, 10, 20]] * 4
    for entry in index.runs.get("broken", ()):  # whatever was readable before the damage
        reader.read_stats(provider, CTX, "", entry.kernel, "weights")


def test_malformed_stats_vector_is_a_format_error(tmp_path):
    info = kernel_infos(gates=(None,))[0]
    content = metadata.create_stats_metadata(info, "weights", BINS, 0.0).plugin_data.content
    write_raw(str(tmp_path / "run"), metadata.stats_tag(info, "weights"), np.zeros(3), 5, content)
    provider = multiplexer_provider(str(tmp_path))
    kernel = reader.list_kernels(provider, CTX, "").kernel("run", info.kernel_key)

    with pytest.raises(metadata.FormatError, match="step 5: stats tensor has shape"):
        reader.read_stats(provider, CTX, "", kernel, "weights")


def test_index_sees_new_steps_through_its_cache(tmp_path):
    infos = kernel_infos()
    run_dir = str(tmp_path / "run")
    write_run(run_dir, [KernelSpec(infos, ("weights",), (0, 10), (0,))])
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance=dict(metadata.SAMPLES_PER_PLUGIN)
    )
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    provider = mux_data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path))
    cache = reader.StepCache()
    before = reader.read_index(provider, CTX, "", cache).runs["run"][0].steps["weights"]

    write_run(run_dir, [KernelSpec(infos, ("weights",), (20,), (20,))])
    multiplexer.Reload()
    after = reader.read_index(provider, CTX, "", cache).runs["run"][0].steps["weights"]

    assert before == reader.KindSteps((0, 10), (0,))
    assert after == reader.KindSteps((0, 10, 20), (0, 20))
