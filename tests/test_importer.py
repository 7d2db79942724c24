"""Importing saved models and checkpoint series, read back through TensorBoard's data provider.

Models are real files: saved by Keras 3 here (`model_files`) and by tf-keras in a subprocess
under ``TF_USE_LEGACY_KERAS=1`` (`legacy_files`), with the weights each file holds kept beside
it. Tests import them and compare what the reader returns (snapshots stored whole: the test
kernels are far below the snapshot cell bound) with those weights, split per gate here with
NumPy in Keras' storage order, independently of `gates`. `test_cli` and `test_report` share
these files.

Not marked `keras`: the tf-keras files come from their own subprocess, so running this module
again under ``TF_USE_LEGACY_KERAS=1`` would test nothing new.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import glob
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from test_reader import CTX, multiplexer_provider  # noqa: E402

from tensorboard_plugin_weightgates.backend import reader  # noqa: E402
from tensorboard_plugin_weightgates.cli import importer  # noqa: E402

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("update", "reset", "candidate")

KERNELS = (
    (("bi", None, "forward", "kernel"), LSTM_GATES),
    (("bi", None, "forward", "recurrent_kernel"), LSTM_GATES),
    (("bi", None, "forward", "bias"), LSTM_GATES),
    (("bi", None, "backward", "kernel"), LSTM_GATES),
    (("bi", None, "backward", "recurrent_kernel"), LSTM_GATES),
    (("bi", None, "backward", "bias"), LSTM_GATES),
    (("gru", None, "forward", "kernel"), GRU_GATES),
    (("gru", None, "forward", "recurrent_kernel"), GRU_GATES),
    (("gru", None, "forward", ("input_bias", "recurrent_bias")), GRU_GATES),
    (("dense", None, "forward", "kernel"), (None,)),
    (("dense", None, "forward", "bias"), (None,)),
)
"""The test model's variables in `model.weights` order (the same in Keras 3 and tf-keras):
the kernel each holds and its gates. The GRU's bias (``reset_after``) holds two kernels, one
per row."""


def build_model(keras, units=2):
    """A Bidirectional LSTM, a GRU (``reset_after``) and a Dense layer, named as `KERNELS`
    says; `keras` is whichever Keras builds it (Keras 3 here, tf-keras in `legacy_files`)."""
    inputs = keras.Input((4, 3))
    hidden = keras.layers.Bidirectional(
        keras.layers.LSTM(units, return_sequences=True, name="lstm"), name="bi"
    )(inputs)
    hidden = keras.layers.GRU(2, name="gru")(hidden)
    return keras.Model(inputs, keras.layers.Dense(1, name="dense")(hidden))


def build_gru_model(keras):
    """A GRU and a Dense layer (the last kernels of `KERNELS`); unrolled, which makes tf-keras
    save it as a SavedModel in a second instead of ten."""
    inputs = keras.Input((4, 3))
    hidden = keras.layers.GRU(2, unroll=True, name="gru")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="dense")(hidden))


def random_weights(model, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.5, size=w.shape).astype("float32") for w in model.weights]


LEGACY_SCRIPT = "\n".join(
    [
        "import os, sys",
        "import numpy as np",
        "import tensorflow as tf",
        inspect.getsource(build_model),
        inspect.getsource(build_gru_model),
        inspect.getsource(random_weights),
        textwrap.dedent(
            """
            keras = tf.keras
            out = sys.argv[1]
            model = build_model(keras)
            assert type(model).__module__.startswith("tf_keras"), type(model).__module__

            def save(name, seed, model=model):
                weights = random_weights(model, seed)
                model.set_weights(weights)
                np.savez(os.path.join(out, name + ".npz"), *weights)

            save("legacy", 1)
            model.save(os.path.join(out, "legacy.h5"))
            gru_model = build_gru_model(keras)
            save("legacy_savedmodel", 5, gru_model)
            gru_model.save(os.path.join(out, "legacy_savedmodel"), save_format="tf")
            for step, seed in ((1000, 2), (2000, 3)):
                save(f"ckpt-{step}", seed)
                model.save_weights(os.path.join(out, "tfck", f"ckpt-{step}"))
            save("legacy_weights", 4)
            model.save_weights(os.path.join(out, "legacy_weights.h5"))
            """
        ),
    ]
)
"""Saves tf-keras files of `build_model` (run with ``TF_USE_LEGACY_KERAS=1``)."""


@dataclasses.dataclass(frozen=True)
class Files:
    """Saved files in `directory`, and the weights (in `model.weights` order) of each by name."""

    directory: str
    weights: dict[str, list[np.ndarray]]

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)


def special_weights(model, seed: int) -> list[np.ndarray]:
    """Random weights with, in the forward LSTM's kernel, a dead unit (unit 0 of the input
    gate all zeros) and one near-zero value (forget gate), and a NaN and an Inf in the Dense
    layer."""
    weights = random_weights(model, seed)
    weights[0][:, 0] = 0.0
    weights[0][1, 2] = 5e-4
    weights[9][0, 0] = np.nan
    weights[10][0] = np.inf
    return weights


@functools.cache
def model_files() -> Files:
    """Keras 3 files, saved once per test session:

    * ``a.keras``, ``a.h5``: `special_weights`; ``b.keras``: plain random weights.
    * ``arch.keras`` and weights-only checkpoints ``epoch_003``, ``epoch_010``,
      ``epoch_012.weights.h5`` of it, plus ``epoch_011.weights.h5`` of a wider model (does not
      fit) and ``corrupt.weights.h5``.
    * ``k3ck/``: TensorFlow checkpoints ``ckpt-5``, ``ckpt-7`` of
      ``tf.train.Checkpoint(model=model)``, with their ``checkpoint`` state file.
    * ``corrupt.h5`` and ``junk.keras``: not models.
    """
    directory = tempfile.mkdtemp(prefix="weightgates_models_")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    weights = {}
    model = build_model(keras)

    def save(name: str, values: list[np.ndarray], *files: str) -> None:
        model.set_weights(values)
        weights[name] = values
        for file in files:
            path = os.path.join(directory, file)
            if file.endswith(".weights.h5"):
                model.save_weights(path)
            else:
                model.save(path)

    save("a", special_weights(model, 1), "a.keras", "a.h5")
    save("b", random_weights(model, 2), "b.keras")
    save("arch", random_weights(model, 3), "arch.keras")
    for epoch in (3, 10, 12):
        save(
            f"epoch_{epoch:03d}", random_weights(model, 10 + epoch), f"epoch_{epoch:03d}.weights.h5"
        )
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model), os.path.join(directory, "k3ck"), max_to_keep=None
    )
    for number in (5, 7):
        save(f"ckpt-{number}", random_weights(model, 20 + number))
        manager.save(checkpoint_number=number)
    wider = build_model(keras, units=3)
    wider.save_weights(os.path.join(directory, "epoch_011.weights.h5"))
    for name, content in (
        ("corrupt.h5", b"this is not an HDF5 file"),
        ("corrupt.weights.h5", b"\x89HDF\r\n\x1a\n truncated"),
        ("junk.keras", b"PK but not a zip"),
    ):
        with open(os.path.join(directory, name), "wb") as file:
            file.write(content)
    return Files(directory, weights)


@functools.cache
def legacy_files() -> Files:
    """Files saved by tf-keras (``TF_USE_LEGACY_KERAS=1``, in a subprocess): ``legacy.h5`` (a
    whole model), TensorFlow checkpoints ``tfck/ckpt-1000`` and ``tfck/ckpt-2000`` of
    ``save_weights`` and ``legacy_weights.h5`` (weights only) of `build_model`, and
    ``legacy_savedmodel/``, a SavedModel of `build_gru_model`."""
    directory = tempfile.mkdtemp(prefix="weightgates_legacy_")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", LEGACY_SCRIPT, directory],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    weights = {}
    for path in glob.glob(os.path.join(directory, "*.npz")):
        with np.load(path) as saved:
            weights[os.path.basename(path)[: -len(".npz")]] = [
                saved[f"arr_{i}"] for i in range(len(saved.files))
            ]
    return Files(directory, weights)


def expected_gates(weights: list[np.ndarray]) -> dict[reader.KernelKey, list[np.ndarray]]:
    """Each kernel's gate slices, cut with NumPy in Keras' storage order, for the weights of
    `build_model` or of `build_gru_model` (the last variables of `KERNELS`)."""
    kernels = {}
    for ((layer, cell, direction, names), gates), values in zip(KERNELS[-len(weights) :], weights):
        rows = [values] if isinstance(names, str) else list(values)
        for name, kernel in zip([names] if isinstance(names, str) else names, rows):
            kernels[(layer, cell, direction, name)] = np.split(kernel, len(gates), axis=-1)
    return kernels


def as_matrix(gate_values: list[np.ndarray]) -> np.ndarray:
    """The kernel as a snapshot stores it: gates side by side, all but the last axis in rows."""
    kernel = np.concatenate(gate_values, axis=-1)
    return kernel.reshape(-1, kernel.shape[-1])


def assert_logged(provider, run: str, step: int, weights: list[np.ndarray]) -> None:
    """Every kernel of `run` at `step` has the gate shapes and, in both snapshot planes, the
    values of `weights`; there are no other kernels."""
    expected = expected_gates(weights)
    kernels = reader.list_kernels(provider, CTX, "").kernels[run]
    assert set(kernels) == set(expected)
    for key, gate_values in expected.items():
        kernel = kernels[key]
        assert kernel.gate_shapes == tuple(g.shape for g in gate_values)
        snapshot = reader.read_snapshot(provider, CTX, "", kernel, "weights", step)
        assert snapshot.block == (1, 1)
        for plane in snapshot.values:
            np.testing.assert_array_equal(plane, as_matrix(gate_values), err_msg=str(key))


def test_keras_3_files_log_their_saved_weights_per_gate(tmp_path):
    files = model_files()
    logdir = str(tmp_path / "logs")
    outcomes = importer.import_models([files.path("a.keras"), files.path("b.keras")], logdir)
    outcomes += importer.import_models([files.path("a.h5")], logdir, name="a_h5")
    assert [(o.run, o.step, o.framework, o.ok) for o in outcomes] == [
        ("a", 0, importer.KERAS_3, True),
        ("b", 0, importer.KERAS_3, True),
        ("a_h5", 0, importer.KERAS_3, True),
    ]
    assert sorted(os.listdir(logdir)) == ["a", "a_h5", "b"]
    assert os.listdir(os.path.join(logdir, "a")) == [importer.RUN_SUBDIRECTORY]
    provider = multiplexer_provider(logdir)
    assert_logged(provider, "a/train", 0, files.weights["a"])
    assert_logged(provider, "a_h5/train", 0, files.weights["a"])
    assert_logged(provider, "b/train", 0, files.weights["b"])


def test_tf_keras_files_are_loaded_by_tf_keras_beside_keras_3(tmp_path):
    files = legacy_files()
    logdir = str(tmp_path / "logs")
    outcomes = importer.import_models(
        [files.path("legacy.h5"), files.path("legacy_savedmodel")], logdir
    )
    assert [(o.run, o.step, o.framework, o.ok) for o in outcomes] == [
        ("legacy", 0, importer.TF_KERAS, True),
        ("legacy_savedmodel", 0, importer.TF_KERAS, True),
    ]
    assert sorted(os.listdir(logdir)) == ["legacy", "legacy_savedmodel"]
    provider = multiplexer_provider(logdir)
    assert_logged(provider, "legacy/train", 0, files.weights["legacy"])
    assert_logged(provider, "legacy_savedmodel/train", 0, files.weights["legacy_savedmodel"])


def read_stats(provider, run: str, key: reader.KernelKey) -> reader.KernelStats:
    kernel = reader.list_kernels(provider, CTX, "").kernel(run, key)
    return reader.read_stats(provider, CTX, "", kernel, "weights")


def update_size(values: np.ndarray, previous: np.ndarray) -> float:
    return float(np.linalg.norm(values - previous) / np.linalg.norm(previous))


def test_checkpoint_series_is_one_run_over_steps_with_update_sizes(tmp_path):
    files = model_files()
    logdir = str(tmp_path / "logs")
    given = ["epoch_012", "epoch_003", "epoch_011", "epoch_010", "missing_epoch_020"]
    outcomes = importer.import_series(
        files.path("arch.keras"), [files.path(f"{n}.weights.h5") for n in given], logdir
    )
    assert [(os.path.basename(o.path), o.run, o.step, o.ok) for o in outcomes] == [
        ("arch.keras", "arch", None, True),
        ("epoch_003.weights.h5", "arch", 3, True),
        ("epoch_010.weights.h5", "arch", 10, True),
        ("epoch_011.weights.h5", "arch", 11, False),
        ("epoch_012.weights.h5", "arch", 12, True),
        ("missing_epoch_020.weights.h5", "arch", None, False),
    ]
    assert "cannot load it into the model" in outcomes[3].error.reason
    assert "shape" in outcomes[3].error.reason
    assert outcomes[5].error.reason == "no such file or directory"
    provider = multiplexer_provider(logdir)
    for epoch in (3, 10, 12):
        assert_logged(provider, "arch/train", epoch, files.weights[f"epoch_{epoch:03d}"])
    field = reader_field("update_size")
    for key, gates in expected_gates(files.weights["epoch_012"]).items():
        stats = read_stats(provider, "arch/train", key)
        before = expected_gates(files.weights["epoch_010"])[key]
        first = expected_gates(files.weights["epoch_003"])[key]
        for gate, values in enumerate(gates):
            series = stats.gates[gate]
            assert series.steps.tolist() == [3, 10, 12]
            assert np.isnan(series.values[0, field])
            # Epoch 11 did not fit: epoch 12 is compared with epoch 10, the last one logged.
            np.testing.assert_allclose(
                series.values[1:, field],
                [update_size(before[gate], first[gate]), update_size(values, before[gate])],
                rtol=1e-5,
            )


def reader_field(name: str) -> int:
    from tensorboard_plugin_weightgates.format import metadata

    return metadata.STAT_FIELDS.index(name)


def test_tensorflow_checkpoints_of_tf_keras_and_of_keras_3(tmp_path):
    legacy, files = legacy_files(), model_files()
    logdir = str(tmp_path / "logs")
    # As a shell glob lists them: index and data files, which stand for their prefix.
    checkpoints = sorted(glob.glob(legacy.path("tfck/ckpt-*")))
    legacy_outcomes = importer.import_series(legacy.path("legacy.h5"), checkpoints, logdir)
    assert [(o.step, o.framework, o.ok) for o in legacy_outcomes] == [
        (None, importer.TF_KERAS, True),
        (1000, importer.TF_KERAS, True),
        (2000, importer.TF_KERAS, True),
    ]
    # A directory with a `checkpoint` state file stands for every checkpoint it lists.
    keras_outcomes = importer.import_series(
        files.path("arch.keras"), [files.path("k3ck")], logdir, name="k3"
    )
    assert [(o.step, o.ok) for o in keras_outcomes] == [(None, True), (5, True), (7, True)]
    # A tf-keras checkpoint does not fit a Keras 3 model: its object graph differs.
    mismatch = importer.import_series(
        files.path("arch.keras"), [legacy.path("tfck/ckpt-1000")], logdir, name="mismatch"
    )
    assert not mismatch[1].ok
    assert "do not match the model's" in mismatch[1].error.reason
    assert sorted(os.listdir(logdir)) == ["k3", "legacy"]
    provider = multiplexer_provider(logdir)
    for step in (1000, 2000):
        assert_logged(provider, "legacy/train", step, legacy.weights[f"ckpt-{step}"])
    for step in (5, 7):
        assert_logged(provider, "k3/train", step, files.weights[f"ckpt-{step}"])


def test_tf_keras_weights_file_loads_into_a_keras_3_architecture(tmp_path):
    legacy, files = legacy_files(), model_files()
    logdir = str(tmp_path / "logs")
    outcomes = importer.import_series(
        files.path("arch.keras"), [legacy.path("legacy_weights.h5")], logdir
    )
    assert [(o.step, o.ok) for o in outcomes] == [(None, True), (0, True)]
    assert_logged(multiplexer_provider(logdir), "arch/train", 0, legacy.weights["legacy_weights"])


@pytest.mark.parametrize(
    "names, steps",
    [
        (["epoch_012", "epoch_003", "epoch_010"], [12, 3, 10]),
        (["ckpt-3000", "ckpt-500"], [3000, 500]),
        (["model_v2_epoch_12", "model_v2_epoch_3"], [12, 3]),
        (["weights.03-0.41", "weights.10-0.37"], [3, 10]),
        (["run2_e10", "run2_e7"], [10, 7]),
        (["ckpt-7"], [7]),
        (["final"], [0]),
        (["best", "last"], [0, 1]),
        (["epoch_1", "epoch_01"], [0, 1]),
        (["a1", "b"], [0, 1]),
    ],
)
def test_checkpoint_steps_come_from_file_names_or_order(names, steps):
    paths = [os.path.join("dir7", f"{name}.weights.h5") for name in names]
    assert importer.checkpoint_steps(paths) == steps


def test_checkpoint_files_stand_for_their_prefix_once(tmp_path):
    names = ["ckpt-1.index", "ckpt-1.data-00000-of-00001", "ckpt-2.index", "e.weights.h5"]
    assert importer.checkpoint_files(names) == ["ckpt-1", "ckpt-2", "e.weights.h5"]
    assert importer.checkpoint_files([str(tmp_path)]) == [str(tmp_path)]


def plain_savedmodel(path: str) -> str:
    module = tf.Module()
    module.v = tf.Variable([1.0])
    tf.saved_model.save(module, path)
    return path


@pytest.mark.parametrize(
    "name, reason",
    [
        ("corrupt.h5", "not a Keras model: neither an HDF5 file"),
        ("junk.keras", "not a Keras model"),
        ("missing.keras", "no such file or directory"),
        ("epoch_003.weights.h5", "an HDF5 file of weights holds weights only"),
        ("k3ck/ckpt-5", "a TensorFlow checkpoint holds weights only"),
        ("k3ck", "a directory that is not a SavedModel"),
        ("plain_savedmodel", "this SavedModel has no Keras metadata"),
    ],
)
def test_files_that_are_not_models_fail_with_a_reason(tmp_path, name, reason):
    path = model_files().path(name)
    if name == "plain_savedmodel":
        path = plain_savedmodel(str(tmp_path / name))
    with pytest.raises(importer.ImportFailure) as raised:
        importer.load_model(path)
    assert raised.value.path == path
    assert raised.value.reason.startswith(reason) or reason in raised.value.reason
    assert "\n" not in raised.value.reason


CUSTOM_LAYERS = """
import keras


class Scale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
"""


def test_custom_objects_fail_clearly_and_load_from_their_module(tmp_path):
    source = tmp_path / "custom_layers.py"
    source.write_text(CUSTOM_LAYERS)
    layers = importer.load_custom_objects(str(source))
    assert set(layers) == {"Scale"}
    inputs = keras.Input((4, 3))
    hidden = keras.layers.LSTM(2, name="lstm")(inputs)
    model = keras.Model(inputs, layers["Scale"](name="scale")(hidden))
    # Saved under a module name that the loading process cannot import, as in a new process.
    layers["Scale"].__module__ = "not_importable_custom_layers"
    path = str(tmp_path / "custom.keras")
    model.save(path)
    logdir = str(tmp_path / "logs")
    failed = importer.import_models([path], logdir)
    assert not failed[0].ok and failed[0].error.custom_object
    assert "Scale" in failed[0].error.reason
    assert not os.path.exists(logdir) or os.listdir(logdir) == []
    imported = importer.import_models([path], logdir, custom_objects=layers)
    assert imported[0].ok
    with pytest.raises(ValueError, match="cannot import 'no_such_module_for_weightgates'"):
        importer.load_custom_objects("no_such_module_for_weightgates")


def event_files(logdir: str, run: str) -> list[str]:
    return sorted(os.listdir(os.path.join(logdir, run, importer.RUN_SUBDIRECTORY)))


def test_existing_run_is_refused_unless_overwritten(tmp_path):
    files = model_files()
    logdir = str(tmp_path / "logs")
    assert importer.import_models([files.path("a.keras")], logdir)[0].ok
    before = event_files(logdir, "a")
    again = importer.import_models([files.path("b.keras")], logdir, name="a")
    assert isinstance(again[0].error, importer.RunExistsError)
    assert "run 'a' exists" in again[0].error.reason
    assert event_files(logdir, "a") == before
    replaced = importer.import_models([files.path("b.keras")], logdir, name="a", overwrite=True)
    assert replaced[0].ok
    assert os.listdir(logdir) == ["a"]  # no staging directory left behind
    assert len(event_files(logdir, "a")) == 1 and event_files(logdir, "a") != before
    provider = multiplexer_provider(logdir)
    assert_logged(provider, "a/train", 0, files.weights["b"])
    stats = read_stats(provider, "a/train", ("bi", None, "forward", "kernel"))
    assert stats.gates[0].steps.tolist() == [0]


def test_names_are_checked_before_anything_is_imported(tmp_path):
    files = model_files()
    with pytest.raises(ValueError, match="would both be run 'a'"):
        importer.import_models([files.path("a.keras"), files.path("a.h5")], str(tmp_path))
    with pytest.raises(ValueError, match="one file"):
        importer.import_models([files.path("a.keras"), files.path("b.keras")], str(tmp_path), "x")
    for name in ("", ".hidden", "a/b", ".."):
        with pytest.raises(ValueError, match="run name"):
            importer.check_run_name(name)
    assert os.listdir(tmp_path) == []


def test_files_are_read_by_their_content_not_their_extension(tmp_path):
    """A .keras archive renamed .h5, a tf-keras HDF5 model renamed .keras, and weights files
    under each other's extensions load as what they are."""
    files, legacy = model_files(), legacy_files()
    renamed = {
        "a.h5": files.path("a.keras"),
        "legacy_model.keras": legacy.path("legacy.h5"),
        "epoch_003.h5": files.path("epoch_003.weights.h5"),
        "legacy_weights.weights.h5": legacy.path("legacy_weights.h5"),
    }
    for name, original in renamed.items():
        shutil.copyfile(original, tmp_path / name)
    loaded = importer.load_model(str(tmp_path / "a.h5"))
    assert loaded.framework == importer.KERAS_3
    for actual, expected in zip(loaded.model.get_weights(), files.weights["a"]):
        np.testing.assert_array_equal(actual, expected)
    assert importer.load_model(str(tmp_path / "legacy_model.keras")).framework == importer.TF_KERAS
    importer.load_weights(loaded, str(tmp_path / "epoch_003.h5"))
    for actual, expected in zip(loaded.model.get_weights(), files.weights["epoch_003"]):
        np.testing.assert_array_equal(actual, expected)
    importer.load_weights(loaded, str(tmp_path / "legacy_weights.weights.h5"))
    for actual, expected in zip(loaded.model.get_weights(), legacy.weights["legacy_weights"]):
        np.testing.assert_array_equal(actual, expected)
