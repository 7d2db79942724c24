"""Tests of `reader` against real event files read by TensorBoard's own data provider.

Log directories are written by the real writer (`summary.log_weights`/`log_gradients`) while a
tiny model trains; `LoggedModel` keeps the weights and gradients it logged, so tests compare
what the reader returns with the model's own values. Damaged data that the writer never
produces (an unknown format version, a missing gate, a malformed vector, a half-written step, a
step written twice, a corrupt file) is written record by record with `tf.summary.write`
(`write_run`, `write_raw`), or event by event with TensorBoard's own writer, which takes any
tensor proto and any content (`write_events`). `test_routes`, `test_loader` and `test_fuzz`
use these helpers too.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import glob
import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorboard import context as tb_context  # noqa: E402
from tensorboard.backend.event_processing import data_provider as mux_data_provider  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_multiplexer  # noqa: E402
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2  # noqa: E402
from tensorboard.summary.writer import event_file_writer  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from tensorboard_plugin_weightgates.backend import reader  # noqa: E402
from tensorboard_plugin_weightgates.format import metadata, options, snapshot  # noqa: E402
from tensorboard_plugin_weightgates.keras_writer import custom_loop  # noqa: E402

keras = tf.keras
CTX = tb_context.RequestContext()
LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("update", "reset", "candidate")
FIELD = {name: i for i, name in enumerate(metadata.STAT_FIELDS)}

LSTM_KERNEL = ("bidirectional", None, "forward", "kernel")
LSTM_BACKWARD_BIAS = ("bidirectional", None, "backward", "bias")
GRU_INPUT_BIAS = ("gru", None, "forward", "input_bias")
DENSE_KERNEL = ("dense", None, "forward", "kernel")
DENSE_BIAS = ("dense", None, "forward", "bias")
LSTM_ONLY_KERNEL = ("lstm", None, "forward", "kernel")


def small_model():
    """A bidirectional LSTM(2), a GRU(2) (reset_after: input and recurrent bias rows) and a
    Dense(1) (not gated), on sequences of 4 steps of 3 features."""
    inputs = keras.Input((4, 3))
    hidden = keras.layers.Bidirectional(
        keras.layers.LSTM(2, return_sequences=True), name="bidirectional"
    )(inputs)
    hidden = keras.layers.GRU(2, name="gru")(hidden)
    return keras.Model(inputs, keras.layers.Dense(1, name="dense")(hidden))


def lstm_model():
    inputs = keras.Input((4, 3))
    return keras.Model(inputs, keras.layers.LSTM(2, name="lstm")(inputs))


def stacked_model():
    """An RNN over StackedRNNCells: cell 0 an LSTMCell(2), cell 1 a GRUCell(2)."""
    inputs = keras.Input((4, 3))
    cells = keras.layers.StackedRNNCells([keras.layers.LSTMCell(2), keras.layers.GRUCell(2)])
    return keras.Model(inputs, keras.layers.RNN(cells, name="stacked")(inputs))


class LoggedModel:
    """A model trained with SGD and logged by the real writer into `run_dir`.

    `train(steps, snapshot_steps)` trains up to ``max(steps)`` and logs the weights (and, with
    `gradients`, the gradients) at `steps`, before each step's update, with snapshots at
    `snapshot_steps`; it can be called again to continue. `weights` and `gradients` keep, per
    logged step, each trainable variable's logged value by `id`. `prepare(model)` runs once
    before training; `options` go to the writer (`summary.LogOptions` fields).
    """

    def __init__(
        self,
        run_dir: str,
        build: Callable = small_model,
        gradients: bool = True,
        prepare: Callable | None = None,
        **options: Any,
    ):
        keras.utils.set_random_seed(0)
        self.model = build()
        if prepare is not None:
            prepare(self.model)
        self.writer = tf.summary.create_file_writer(run_dir)
        self.log_gradients = gradients
        self.options = options
        self.weights: dict[int, dict[int, np.ndarray]] = {}
        self.gradients: dict[int, dict[int, np.ndarray]] = {}
        rng = np.random.default_rng(0)
        self._inputs = rng.normal(size=(8, 4, 3)).astype("float32")
        self._targets = rng.normal(size=(8, *self.model.output_shape[1:])).astype("float32")
        self._optimizer = keras.optimizers.SGD(0.1)
        self._next_step = 0

    def train(self, steps: Iterable[int], snapshot_steps: Iterable[int] = ()) -> LoggedModel:
        steps, snapshot_steps = set(steps), set(snapshot_steps)
        variables = self.model.trainable_variables
        for step in range(self._next_step, max(steps) + 1):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((self.model(self._inputs) - self._targets) ** 2)
            pairs = list(zip(tape.gradient(loss, variables), variables))
            if step in steps:
                self._log(step, pairs, step in snapshot_steps)
            self._optimizer.apply_gradients(pairs)
        self._next_step = max(steps) + 1
        self.writer.flush()
        return self

    def _log(self, step: int, pairs: list, snapshot_values: bool) -> None:
        model, writer = self.model, self.writer
        custom_loop.log_weights(model, step, writer, snapshot=snapshot_values, **self.options)
        self.weights[step] = {id(v): np.array(v.numpy()) for _, v in pairs}
        if self.log_gradients:
            custom_loop.log_gradients(
                model, pairs, step, writer, snapshot=snapshot_values, **self.options
            )
            self.gradients[step] = {id(v): np.array(g) for g, v in pairs}

    def value(self, kind: str, step: int, key: reader.KernelKey) -> np.ndarray:
        """The whole kernel `key` as logged for `kind` at `step`."""
        variable, row = kernel_variable(self.model, key)
        logged = (self.weights if kind == "weights" else self.gradients)[step][id(variable)]
        return logged if row is None else logged[row]


def kernel_variable(model, key: reader.KernelKey) -> tuple[Any, int | None]:
    """The variable holding kernel `key`, and its row for a GRU's input or recurrent bias."""
    layer, cell_index, direction, kernel = key
    target = model.get_layer(layer)
    if hasattr(target, "forward_layer"):
        target = target.forward_layer if direction == "forward" else target.backward_layer
    cell = getattr(target, "cell", target)
    if cell_index is not None:
        cell = cell.cells[cell_index]
    if kernel in ("input_bias", "recurrent_bias"):
        return cell.bias, ("input_bias", "recurrent_bias").index(kernel)
    return getattr(cell, kernel), None


def nan_and_inf(model) -> None:
    """Puts a NaN in the input gate and an Inf in the forget gate of `lstm_model`'s kernel."""
    kernel = model.get_layer("lstm").cell.kernel
    values = kernel.numpy()
    values[0, 0] = np.nan
    values[1, 3] = np.inf
    kernel.assign(values)


@functools.cache
def models_logdir() -> tuple[str, dict[str, LoggedModel]]:
    """A logdir of three runs, by run name: ``run``, `small_model` with weights and gradients
    logged at steps 0, 1, 2 and snapshots at 0 and 2; ``stacked``, `stacked_model` with
    weights at steps 0 and 1, snapshots at 1; ``nan``, `lstm_model` with a NaN in its kernel's
    input gate and an Inf in its forget gate, weights and a snapshot at step 0. Written once
    per test session (the writer's first calls compile its graphs, which takes seconds) and
    shared by the test modules."""
    logdir = tempfile.mkdtemp(prefix="weightgates_test_")
    atexit.register(shutil.rmtree, logdir, ignore_errors=True)
    models = {
        "run": LoggedModel(os.path.join(logdir, "run")).train((0, 1, 2), (0, 2)),
        "stacked": LoggedModel(os.path.join(logdir, "stacked"), stacked_model, False).train(
            (0, 1), (1,)
        ),
        "nan": LoggedModel(os.path.join(logdir, "nan"), lstm_model, False, nan_and_inf).train(
            (0,), (0,)
        ),
    }
    for logged in models.values():
        logged.writer.close()
    return logdir, models


def expected_stats(values: np.ndarray, previous: np.ndarray | None) -> dict[str, float]:
    """Statistics of one gate slice, from its values (and those at the previous logged step),
    as `metadata.STAT_FIELDS` defines them."""
    finite = values[np.isfinite(values)].astype(np.float64)
    before = None if previous is None else np.linalg.norm(previous.astype(np.float64))
    return {
        "update_size": np.nan
        if not before
        else np.linalg.norm(values.astype(np.float64) - previous) / before,
        "count": values.size,
        "mean": finite.mean(),
        "min": finite.min(),
        "max": finite.max(),
        "l2_norm": np.sqrt(np.sum(finite**2)),
        "mean_abs": np.abs(finite).mean(),
        "units": values.shape[-1] if values.ndim else 1,
        "nan_count": np.isnan(values).sum(),
        "inf_count": np.isinf(values).sum(),
    }


def gate_values(kernel: np.ndarray, gates: int) -> list[np.ndarray]:
    return np.split(kernel, gates, axis=-1)


# Records the writer never produces, written one by one.


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """A kernel to write record by record: its gate slices, kinds and steps."""

    infos: tuple[metadata.SliceInfo, ...]
    kinds: tuple[str, ...] = ("weights",)
    stats_steps: tuple[int, ...] = (0, 10, 20)
    snapshot_steps: tuple[int, ...] = (0, 20)


def kernel_infos(
    layer: str = "lstm",
    gates: Sequence[str | None] = LSTM_GATES,
    shape: tuple[int, ...] = (3, 2),
) -> tuple[metadata.SliceInfo, ...]:
    """The slices of an LSTM-like kernel; `shape` is one gate's shape."""
    return tuple(
        metadata.SliceInfo(
            layer=layer,
            layer_type="LSTM",
            order=0,
            direction="forward",
            cell=None,
            bidirectional=False,
            kernel="kernel",
            gates=tuple(gates),
            kernel_order=0,
            axes=("input", "unit")[-len(shape) :] if shape else (),
            variable_shape=(*shape[:-1], shape[-1] * len(gates)) if shape else (),
            gate_index=index,
            shape=tuple(shape),
        )
        for index in range(len(gates))
    )


def kernel_records(kernels: Iterable[KernelSpec], offset: float = 0.0):
    """Well-formed records ``(tag, values, step, metadata)`` of the kernels, step by step, with
    each tag's metadata on its first record only; every value of gate ``g`` at step ``s`` is
    ``s + g + offset``."""
    kernels = list(kernels)
    steps = sorted({s for k in kernels for s in (*k.stats_steps, *k.snapshot_steps)})
    described: set[str] = set()
    for step in steps:
        for spec in kernels:
            for kind, info in itertools.product(spec.kinds, spec.infos):
                for tag, values, md in _records(spec, kind, info, step, offset):
                    yield tag, values, step, None if tag in described else md
                    described.add(tag)


def write_run(run_dir: str, kernels: Iterable[KernelSpec], offset: float = 0.0) -> None:
    """Writes `kernel_records` with a TensorFlow summary writer."""
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for tag, values, step, md in kernel_records(kernels, offset):
            tf.summary.write(tag, values, step=step, metadata=md)
    writer.close()


def _records(spec: KernelSpec, kind: str, info: metadata.SliceInfo, step: int, offset: float):
    value = step + info.gate_index + offset
    if step in spec.stats_steps:
        length = metadata.stats_vector_length(options.DEFAULT_BINS)
        md = metadata.create_stats_metadata(info, kind, options.DEFAULT_BINS, 0.0)
        yield metadata.stats_tag(info, kind), np.full(length, value, float), md
    if step in spec.snapshot_steps:
        md = metadata.create_snapshot_metadata(info, kind, 1 << 20, (1, 1))
        planes = np.full((2, *info.shape), value, np.float32)
        yield metadata.snapshot_tag(info, kind), planes, md


def write_raw(run_dir: str, tag: str, values: np.ndarray, step: int, content: bytes) -> None:
    """Writes one record under the stats plugin name with arbitrary summary content."""
    info = kernel_infos()[0]
    summary_metadata = metadata.create_stats_metadata(info, "weights", options.DEFAULT_BINS, 0.0)
    summary_metadata.plugin_data.content = content
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tf.summary.write(tag, values, step=step, metadata=summary_metadata)
    writer.close()


def write_events(
    run_dir: str,
    records: Iterable[tuple[str, Any, int, summary_pb2.SummaryMetadata | None]],
) -> None:
    """Writes `records` ``(tag, values, step, metadata)``, one event each in this order, into one
    new event file with TensorBoard's own writer: `values` is an array or any `TensorProto`
    (dtypes TensorBoard cannot convert, bytes that do not fill the shape), `metadata` any
    content (or None, as after a tag's first event)."""
    writer = event_file_writer.EventFileWriter(run_dir)
    for tag, values, step, summary_metadata in records:
        if isinstance(values, tensor_pb2.TensorProto):
            tensor = values
        else:
            tensor = tensor_util.make_tensor_proto(values)
        event = event_pb2.Event(step=step, wall_time=time.time())
        value = event.summary.value.add(tag=tag, tensor=tensor)
        if summary_metadata is not None:
            value.metadata.CopyFrom(summary_metadata)
        writer.add_event(event)
    writer.close()


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


@pytest.fixture(scope="module")
def logged() -> tuple[LoggedModel, mux_data_provider.MultiplexerDataProvider]:
    logdir, models = models_logdir()
    return models["run"], multiplexer_provider(logdir)


def _kernel(provider, key, run="run") -> reader.Kernel:
    return reader.list_kernels(provider, CTX, "").kernel(run, key)


def test_index_lists_the_models_kernels_in_model_order(logged):
    model, provider = logged

    index = reader.read_index(provider, CTX, "")

    assert index.errors == {}
    entries = {e.kernel.key: e for e in index.runs["run"]}
    assert list(entries) == [
        ("bidirectional", None, "forward", "kernel"),
        ("bidirectional", None, "forward", "recurrent_kernel"),
        ("bidirectional", None, "forward", "bias"),
        ("bidirectional", None, "backward", "kernel"),
        ("bidirectional", None, "backward", "recurrent_kernel"),
        ("bidirectional", None, "backward", "bias"),
        ("gru", None, "forward", "kernel"),
        ("gru", None, "forward", "recurrent_kernel"),
        ("gru", None, "forward", "input_bias"),
        ("gru", None, "forward", "recurrent_bias"),
        ("dense", None, "forward", "kernel"),
        ("dense", None, "forward", "bias"),
    ]
    for key, entry in entries.items():
        kernel = entry.kernel
        assert kernel.shape == model.value("weights", 0, key).shape, key
        assert entry.steps == {
            kind: reader.KindSteps(stats_steps=(0, 1, 2), snapshot_steps=(0, 2))
            for kind in ("weights", "gradients")
        }
    lstm = entries[LSTM_KERNEL].kernel
    assert (lstm.layer_type, lstm.order, lstm.gates) == ("LSTM", 0, LSTM_GATES)
    assert lstm.gate_boundaries == (0, 2, 4, 6, 8)
    gru = entries[GRU_INPUT_BIAS].kernel
    assert (gru.layer_type, gru.order, gru.gates, gru.shape) == ("GRU", 1, GRU_GATES, (6,))
    dense = entries[DENSE_KERNEL].kernel
    assert (dense.layer_type, dense.order) == ("Dense", 2)
    assert (dense.gates, dense.gate_boundaries) == ((None,), (0, 1))


def test_cells_of_stacked_rnn_cells_are_read_apart(logged):
    _, provider = logged
    stacked = models_logdir()[1]["stacked"]

    index = reader.read_index(provider, CTX, "")
    lstm_cell = _kernel(provider, ("stacked", 0, "forward", "kernel"), run="stacked")
    gru_cell = _kernel(provider, ("stacked", 1, "forward", "recurrent_kernel"), run="stacked")
    result = reader.read_snapshot(provider, CTX, "", gru_cell, "weights")

    kernels = [e.kernel for e in index.runs["stacked"]]
    assert [(k.cell, k.kernel, k.layer_type) for k in kernels] == [
        (0, "kernel", "LSTMCell"),
        (0, "recurrent_kernel", "LSTMCell"),
        (0, "bias", "LSTMCell"),
        (1, "kernel", "GRUCell"),
        (1, "recurrent_kernel", "GRUCell"),
        (1, "input_bias", "GRUCell"),
        (1, "recurrent_bias", "GRUCell"),
    ]
    assert (lstm_cell.gates, gru_cell.gates) == (LSTM_GATES, GRU_GATES)
    value = stacked.value("weights", 1, gru_cell.key)
    np.testing.assert_array_equal(result.values, np.stack([value, value]))


@pytest.mark.parametrize("kind", ["weights", "gradients"])
@pytest.mark.parametrize("key", [LSTM_KERNEL, LSTM_BACKWARD_BIAS, GRU_INPUT_BIAS, DENSE_KERNEL])
def test_stats_are_those_of_the_logged_values(logged, key, kind):
    model, provider = logged
    kernel = _kernel(provider, key)

    stats = reader.read_stats(provider, CTX, "", kernel, kind)

    assert [g.gate for g in stats.gates] == list(kernel.gates)
    assert stats.bins == options.DEFAULT_BINS
    for gate_index, gate in enumerate(stats.gates):
        assert gate.steps.tolist() == [0, 1, 2]
        assert gate.values.shape == (3, len(metadata.STAT_FIELDS))
        assert gate.counts.shape == (3, options.DEFAULT_BINS)
        for row, step in enumerate((0, 1, 2)):
            values = gate_values(model.value(kind, step, key), len(kernel.gates))[gate_index]
            previous = None
            if kind == "weights" and step > 0:
                previous = gate_values(model.value(kind, step - 1, key), len(kernel.gates))
                previous = previous[gate_index]
            for name, expected in expected_stats(values, previous).items():
                np.testing.assert_allclose(
                    gate.values[row, FIELD[name]], expected, rtol=1e-5, atol=1e-7, err_msg=name
                )
            assert gate.counts[row].sum() == values.size


def test_stats_of_one_gate(logged):
    model, provider = logged
    kernel = _kernel(provider, LSTM_KERNEL)

    stats = reader.read_stats(provider, CTX, "", kernel, "weights", gate="cell")

    assert [g.gate for g in stats.gates] == ["cell"]
    cell = gate_values(model.value("weights", 1, LSTM_KERNEL), 4)[2]
    np.testing.assert_allclose(stats.gates[0].values[1, FIELD["max"]], cell.max(), rtol=1e-6)


@pytest.mark.parametrize(
    "key, kind, gate, message",
    [
        (LSTM_KERNEL, "weights", "update", "no gate 'update'"),
        (DENSE_KERNEL, "weights", "input", "not a gated kernel"),
        (LSTM_KERNEL, "biases", None, "unknown kind"),
    ],
)
def test_stats_not_found(logged, key, kind, gate, message):
    _, provider = logged
    kernel = _kernel(provider, key)
    with pytest.raises(reader.NotFoundError, match=message):
        reader.read_stats(provider, CTX, "", kernel, kind, gate=gate)


def test_unknown_run_and_kernel_are_not_found(logged):
    _, provider = logged
    listing = reader.list_kernels(provider, CTX, "")
    with pytest.raises(reader.NotFoundError, match="run 'nope'"):
        listing.kernel("nope", LSTM_KERNEL)
    with pytest.raises(reader.NotFoundError, match="no records of kernel 'kernel'"):
        listing.kernel("run", ("gru", None, "backward", "kernel"))
    with pytest.raises(reader.NotFoundError, match="cell 0"):
        listing.kernel("run", ("gru", 0, "forward", "kernel"))


@pytest.mark.parametrize("kind", ["weights", "gradients"])
@pytest.mark.parametrize("key", [LSTM_KERNEL, LSTM_BACKWARD_BIAS, GRU_INPUT_BIAS, DENSE_BIAS])
def test_snapshot_is_the_logged_kernel(logged, key, kind):
    model, provider = logged
    kernel = _kernel(provider, key)

    latest = reader.read_snapshot(provider, CTX, "", kernel, kind)
    first = reader.read_snapshot(provider, CTX, "", kernel, kind, step=0)

    assert (latest.step, latest.steps, first.step) == (2, (0, 2), 0)
    assert (latest.block, latest.gate_boundaries) == ((1, 1), kernel.gate_boundaries)
    for result in (first, latest):
        value = model.value(kind, result.step, key)
        matrix = value.reshape(-1, value.shape[-1])
        assert result.values.dtype == np.float32
        np.testing.assert_array_equal(result.values, np.stack([matrix, matrix]))


def test_snapshot_at_unknown_step_is_not_found(logged):
    _, provider = logged
    kernel = _kernel(provider, LSTM_KERNEL)
    with pytest.raises(reader.NotFoundError, match="no snapshot at step 1"):
        reader.read_snapshot(provider, CTX, "", kernel, "weights", step=1)


def test_block_reduced_snapshot_is_the_gates_reduced_side_by_side(tmp_path):
    run_dir = str(tmp_path / "run")
    model = LoggedModel(run_dir, lstm_model, False, snapshot_max_cells=2).train((0,), (0,))
    provider = multiplexer_provider(str(tmp_path))
    kernel = _kernel(provider, LSTM_ONLY_KERNEL)

    result = reader.read_snapshot(provider, CTX, "", kernel, "weights")

    gates = gate_values(model.value("weights", 0, LSTM_ONLY_KERNEL), 4)
    assert result.block == snapshot.snapshot_block(gates[0].shape, 2)
    expected = np.concatenate([snapshot.reduce_snapshot(g, 2) for g in gates], axis=2)
    np.testing.assert_array_equal(result.values, expected)
    columns = expected.shape[2] // 4
    assert result.gate_boundaries == (0, columns, 2 * columns, 3 * columns, 4 * columns)


def test_nan_and_inf_survive(logged):
    _, provider = logged
    model = models_logdir()[1]["nan"]
    key = LSTM_ONLY_KERNEL
    kernel = _kernel(provider, key, run="nan")

    result = reader.read_snapshot(provider, CTX, "", kernel, "weights")
    stats = reader.read_stats(provider, CTX, "", kernel, "weights")

    np.testing.assert_array_equal(result.values[0], model.value("weights", 0, key))
    nan_count, inf_count = (
        [g.values[0, FIELD[name]] for g in stats.gates] for name in ("nan_count", "inf_count")
    )
    assert (nan_count, inf_count) == ([1, 0, 0, 0], [0, 1, 0, 0])
    input_gate = gate_values(model.value("weights", 0, key), 4)[0]
    np.testing.assert_allclose(
        stats.gates[0].values[0, FIELD["mean"]],
        np.nanmean(input_gate.astype(np.float64)),
        rtol=1e-6,
    )


def test_index_sees_new_steps_through_its_cache(tmp_path):
    model = LoggedModel(str(tmp_path / "run"), lstm_model, gradients=False).train((0, 1), (0,))
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance=dict(metadata.SAMPLES_PER_PLUGIN)
    )
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    provider = mux_data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path))
    cache = reader.StepCache()
    before = reader.read_index(provider, CTX, "", cache).runs["run"][0].steps["weights"]

    model.train((2, 3), (3,))
    multiplexer.Reload()
    after = reader.read_index(provider, CTX, "", cache).runs["run"][0].steps["weights"]

    assert before == reader.KindSteps((0, 1), (0,))
    assert after == reader.KindSteps((0, 1, 2, 3), (0, 3))


def test_index_reads_steps_in_batches_under_a_budget():
    sized = [("a", 10), ("b", 60), ("c", 50), ("d", 200), ("e", 1)]

    assert reader._batches(sized, 100) == [["a", "b"], ["c"], ["d"], ["e"]]
    assert reader._batches([], 100) == []


def test_snapshot_default_is_the_latest_step_of_every_gate(tmp_path):
    """While a step is being written, some gates have it and others not yet."""
    infos = kernel_infos()
    write_run(str(tmp_path / "run"), [KernelSpec(infos)])
    write_run(str(tmp_path / "run"), [KernelSpec(infos[:2], ("weights",), (), (30,))])
    provider = multiplexer_provider(str(tmp_path))
    kernel = _kernel(provider, infos[0].key)

    result = reader.read_snapshot(provider, CTX, "", kernel, "weights")

    assert (result.step, result.steps) == (20, (0, 20))
    np.testing.assert_array_equal(result.values[:, :, 2:4], np.full((2, 3, 2), 21))
    with pytest.raises(reader.NotFoundError, match="step 30"):
        reader.read_snapshot(provider, CTX, "", kernel, "weights", step=30)


def test_unsupported_version_is_skipped_and_reported(tmp_path):
    run_dir = str(tmp_path / "run")
    write_run(run_dir, [KernelSpec(kernel_infos())])
    future = kernel_infos(layer="future")[0]
    write_raw(
        run_dir,
        metadata.stats_tag(future, "weights"),
        np.zeros(metadata.stats_vector_length(options.DEFAULT_BINS)),
        0,
        b'{"version": 3, "record": "stats", "kind": "weights"}',
    )

    index = reader.read_index(multiplexer_provider(str(tmp_path)), CTX, "")

    assert [e.kernel.layer for e in index.runs["run"]] == ["lstm"]
    assert "format version 3 is not supported" in index.errors["run"]
    assert "future" in index.errors["run"]


def test_kernel_missing_a_gate_is_skipped_and_reported(tmp_path):
    write_run(str(tmp_path / "run"), [KernelSpec(kernel_infos()[:3])])

    index = reader.read_index(multiplexer_provider(str(tmp_path)), CTX, "")

    assert index.runs == {}
    assert "no readable records of gates ['output']" in index.errors["run"]


def test_corrupt_event_file_does_not_break_other_runs(tmp_path):
    kernels = [KernelSpec(kernel_infos())]
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
        if "weights" in entry.kernel.stats:
            reader.read_stats(provider, CTX, "", entry.kernel, "weights")


def test_unreadable_steps_are_skipped_and_reported(tmp_path):
    """A stats vector of another length at step 10 of the forget gate, a snapshot of another
    grid at step 20 of the cell gate: the index and the reads leave those steps out and say
    why; every other step and gate is served."""
    infos = kernel_infos()
    forget, cell = (
        metadata.stats_tag(infos[1], "weights"),
        metadata.snapshot_tag(infos[2], "weights"),
    )
    bad = {(forget, 10): np.zeros(3), (cell, 20): np.zeros((2, 1, 1), np.float32)}
    records = [
        (tag, bad.get((tag, step), values), step, md)
        for tag, values, step, md in kernel_records([KernelSpec(infos)])
    ]
    write_events(str(tmp_path / "run"), records)
    provider = multiplexer_provider(str(tmp_path))
    kernel = _kernel(provider, infos[0].key)

    index = reader.read_index(provider, CTX, "")
    stats = reader.read_stats(provider, CTX, "", kernel, "weights")
    latest = reader.read_snapshot(provider, CTX, "", kernel, "weights")

    assert index.runs["run"][0].steps["weights"] == reader.KindSteps((0, 10, 20), (0, 20))
    assert index.errors == {}  # The index reads the first gate only.
    assert [g.steps.tolist() for g in stats.gates] == [
        [0, 10, 20],
        [0, 20],
        [0, 10, 20],
        [0, 10, 20],
    ]
    np.testing.assert_array_equal(stats.gates[1].values[:, FIELD["mean"]], [1, 21])
    (error,) = stats.errors
    assert (
        f"skipped step 10 of tag {forget!r}: stats tensor has shape (3,), expected (45,)" in error
    )
    assert (latest.step, latest.steps) == (0, (0,))
    with pytest.raises(metadata.FormatError, match=r"step 20 of tag .*has shape \(2, 1, 1\)"):
        reader.read_snapshot(provider, CTX, "", kernel, "weights", step=20)


def test_index_reports_the_unreadable_steps_of_a_first_gate(tmp_path):
    info = kernel_infos(gates=(None,))[0]
    tag = metadata.stats_tag(info, "weights")
    records = list(kernel_records([KernelSpec((info,), snapshot_steps=())]))
    strings = np.array([b"x"] * metadata.stats_vector_length(options.DEFAULT_BINS))
    write_events(
        str(tmp_path / "run"), records + [(tag, strings, 30, None), (tag, np.zeros(2), 40, None)]
    )
    provider = multiplexer_provider(str(tmp_path))

    index = reader.read_index(provider, CTX, "")

    assert index.runs["run"][0].steps["weights"] == reader.KindSteps((0, 10, 20), ())
    assert (
        f"skipped 2 steps of tag {tag!r} ([30, 40]); step 30: stats tensor has dtype object"
        in (index.errors["run"])
    )


def test_tag_tensorboard_cannot_read_is_skipped_and_reported(tmp_path):
    """A dtype without a NumPy type makes TensorBoard's data provider fail the whole read: the
    kernel whose tag it is goes, with the reason; the run's other kernels stay."""
    good, broken = kernel_infos(gates=(None,))[0], kernel_infos("broken", gates=(None,))[0]
    tag = metadata.stats_tag(broken, "weights")
    variant = tensor_pb2.TensorProto(dtype=21)  # DT_VARIANT
    md = metadata.create_stats_metadata(broken, "weights", options.DEFAULT_BINS, 0.0)
    write_events(
        str(tmp_path / "run"),
        [*kernel_records([KernelSpec((good,))]), (tag, variant, 0, md)],
    )
    provider = multiplexer_provider(str(tmp_path))
    kernel = _kernel(provider, broken.key)

    index = reader.read_index(provider, CTX, "")
    stats = reader.read_stats(provider, CTX, "", kernel, "weights")

    assert [e.kernel.layer for e in index.runs["run"]] == ["lstm"]
    assert f"skipped tag {tag!r}: TensorBoard could not read its values" in index.errors["run"]
    assert stats.gates[0].steps.tolist() == []
    assert "TensorBoard could not read its values" in stats.errors[0]


def test_last_record_of_a_step_wins(tmp_path):
    """A run logged to step 20, then resumed from step 10 (an interrupt, a checkpoint): the
    records written again replace those from step 10 on, as in TensorBoard's data server."""
    infos = kernel_infos()
    spec = KernelSpec(infos, stats_steps=(0, 10, 20), snapshot_steps=(0, 10, 20))
    write_events(
        str(tmp_path / "run"),
        [
            *kernel_records([spec]),
            *kernel_records([KernelSpec(infos, stats_steps=(10, 15), snapshot_steps=(10,))], 100),
        ],
    )
    provider = multiplexer_provider(str(tmp_path))
    kernel = _kernel(provider, infos[0].key)

    index = reader.read_index(provider, CTX, "")
    stats = reader.read_stats(provider, CTX, "", kernel, "weights")
    at_10 = reader.read_snapshot(provider, CTX, "", kernel, "weights", step=10)
    latest = reader.read_snapshot(provider, CTX, "", kernel, "weights")

    assert index.runs["run"][0].steps["weights"] == reader.KindSteps((0, 10, 15), (0, 10))
    for gate_index, gate in enumerate(stats.gates):
        assert gate.steps.tolist() == [0, 10, 15]
        expected = [0 + gate_index, 110 + gate_index, 115 + gate_index]
        np.testing.assert_array_equal(gate.values[:, FIELD["mean"]], expected)
    assert (at_10.steps, latest.step) == ((0, 10), 10)
    np.testing.assert_array_equal(at_10.values[0, 0], [110, 110, 111, 111, 112, 112, 113, 113])


def test_nan_near_zero_is_reported_as_such(tmp_path):
    info = kernel_infos(gates=(None,))[0]
    tag = metadata.stats_tag(info, "weights")
    content = metadata.create_stats_metadata(info, "weights", 5, float("nan")).plugin_data.content
    write_raw(str(tmp_path / "run"), tag, np.zeros(metadata.stats_vector_length(5)), 0, content)

    index = reader.read_index(multiplexer_provider(str(tmp_path)), CTX, "")

    assert index.runs == {}
    assert "near_zero must be a finite number >= 0.0, got nan" in index.errors["run"]
    assert "different near_zero" not in index.errors["run"]


def test_two_tags_of_one_gate_are_reported(tmp_path):
    """Tags of different slices that both claim gate 0 of one kernel: neither is guessed."""
    ours = kernel_infos(gates=("a", "b"))
    theirs = kernel_infos(gates=("c", "b"))
    write_run(str(tmp_path / "run"), [KernelSpec(ours), KernelSpec(theirs[:1])])

    index = reader.read_index(multiplexer_provider(str(tmp_path)), CTX, "")

    assert index.runs == {}
    assert "all describe gate 'a'" in index.errors["run"]


def test_error_texts_are_bounded():
    parts = [f"problem {i}" for i in range(100)]
    many = list(range(1000))

    assert reader._error_text(parts).endswith("; problem 9; and 90 more")
    assert reader._few(many) == "[0, 1, 2, 3, 4, 5, 6, 7, ... (1000 in all)]"
    assert reader._few([1, 2]) == "[1, 2]"


def write_version_1_run(run_dir: str, kernels: Sequence[dict[str, Any]]) -> None:
    """Writes stats and snapshot records of `kernels` (the slice fields of format version 1,
    without `gate_index` and `gate`: one record per gate) as weightgates 0.1 wrote them, at
    step 0; every statistic of gate ``g`` is ``g + 1``."""
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for kernel in kernels:
            for index, gate in enumerate(kernel["gates"]):
                info = {**kernel, "gate_index": index, "gate": gate}
                path = "/".join(
                    [info["layer"], info["direction"], info["kernel"]]
                    + ([] if gate is None else [gate])
                )
                for record, plugin, values, extra in (
                    (
                        "stats",
                        metadata.PLUGIN_NAME,
                        np.full(metadata.stats_vector_length(4), index + 1.0),
                        {"bins": 4, "near_zero": 0.001},
                    ),
                    (
                        "snapshot",
                        metadata.SNAPSHOT_PLUGIN_NAME,
                        np.full(
                            (2, *metadata.matrix_shape(tuple(info["shape"]))),
                            index + 1.0,
                            np.float32,
                        ),
                        {"max_cells": 16384, "block": [1, 1]},
                    ),
                ):
                    content = {"version": 1, "record": record, "kind": "weights", "slice": info}
                    summary_metadata = metadata.summary_pb2.SummaryMetadata(
                        plugin_data=metadata.summary_pb2.SummaryMetadata.PluginData(
                            plugin_name=plugin,
                            content=json.dumps({**content, **extra}).encode("utf-8"),
                        ),
                        data_class=metadata.summary_pb2.DATA_CLASS_TENSOR,
                    )
                    tag = f"weightgates/{record}/weights/{path}"
                    tf.summary.write(tag, values, step=0, metadata=summary_metadata)
    writer.close()


def _v1_kernel(layer, layer_type, order, direction, kernel, gates, shape) -> dict[str, Any]:
    return dict(
        layer=layer,
        layer_type=layer_type,
        order=order,
        direction=direction,
        cell=None,
        kernel=kernel,
        gates=list(gates),
        shape=list(shape),
    )


def test_records_of_format_version_1_are_read_with_defaults(tmp_path):
    """Runs written by weightgates 0.1: axes from the layer type and kernel name, the kernel's
    shape as variable shape, Keras' usual storage order, directions only where a layer has a
    backward one, and no dead units for a bias."""
    write_version_1_run(
        str(tmp_path / "old"),
        [
            _v1_kernel("bi", "LSTM", 0, "forward", "bias", LSTM_GATES, (2,)),
            _v1_kernel("bi", "LSTM", 0, "forward", "kernel", LSTM_GATES, (3, 2)),
            _v1_kernel("bi", "LSTM", 0, "backward", "kernel", LSTM_GATES, (3, 2)),
            _v1_kernel("gru", "GRU", 1, "forward", "input_bias", GRU_GATES, (2,)),
            _v1_kernel(
                "mha", "MultiHeadAttention", 2, "forward", "query/kernel", [None], (4, 2, 2)
            ),
            _v1_kernel(
                "mha", "MultiHeadAttention", 2, "forward", "attention_output/bias", [None], (4,)
            ),
        ],
    )
    provider = multiplexer_provider(str(tmp_path))

    index = reader.read_index(provider, CTX, "")

    assert index.errors == {}
    kernels = [e.kernel for e in index.runs["old"]]
    assert [
        (k.layer, k.direction, k.kernel, k.bidirectional, k.kernel_order, k.axes, k.variable_shape)
        for k in kernels
    ] == [
        ("bi", "forward", "kernel", True, None, ("input", "unit"), (3, 8)),
        ("bi", "forward", "bias", True, None, ("unit",), (8,)),
        ("bi", "backward", "kernel", True, None, ("input", "unit"), (3, 8)),
        ("gru", "forward", "input_bias", False, None, ("unit",), (2, 6)),
        ("mha", "forward", "query/kernel", False, None, ("axis_0", "axis_1", "unit"), (4, 2, 2)),
        ("mha", "forward", "attention_output/bias", False, None, ("unit",), (4,)),
    ]
    dead = FIELD["dead_units"]
    for kernel in kernels:
        stats = reader.read_stats(provider, CTX, "", kernel, "weights")
        values = [gate.values[0, dead] for gate in stats.gates]
        if kernel.kernel in ("kernel", "query/kernel"):
            assert values == [g + 1.0 for g in range(len(kernel.gates))]
        else:
            assert all(np.isnan(values))
    snapshot = reader.read_snapshot(provider, CTX, "", kernels[0], "weights")
    assert snapshot.values.shape == (2, 3, 8)
