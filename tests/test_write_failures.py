"""Logging never stops training: a real full file system, a directory made read-only.

The log directory is a small tmpfs (mounting needs root; without it these tests skip and say
so) that the run fills: `fit` goes on with one warning naming the directory, what was written
before stays readable through the plugin's reader and TensorBoard's own data provider, and once
there is room again (the tmpfs remounted larger) logging resumes in a new event file. With
``on_error="raise"`` the error stops `fit` instead. A log directory deleted while training (no
root needed) is the same: one warning, then logging resumes in a new directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import pytest
import tensorflow as tf
from tensorboard.context import RequestContext
from test_callback import data, small_model
from test_reader import multiplexer_provider

from tensorboard_plugin_weightgates import WeightGatesCallback
from tensorboard_plugin_weightgates.backend import reader
from tensorboard_plugin_weightgates.keras_writer import event_writer

pytestmark = pytest.mark.keras
keras = tf.keras

SMALL = "300k"
"""A disk that a few dozen logged steps of `small_model` fill."""


class Disk:
    """A tmpfs mounted at `path`, resized in place (remount) to free or take space."""

    def __init__(self, path: str):
        self.path = path

    def resize(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", self.path], check=True)


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as a full disk needs root")
    path = tmp_path / "disk"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield Disk(str(path))
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def quick_retry(monkeypatch):
    """Retries at the next batch after a failure, so a test need not wait 5 s per retry."""
    monkeypatch.setattr(event_writer, "RETRY_SECONDS", 0.0)


def gradients_argument(mode, x, y):
    return {"weights": None, "probe": (x[:8], y[:8]), "train": "train"}[mode]


def readable_steps(logdir: str) -> dict[str, set[int]]:
    """{kind: steps} the plugin's reader serves, over all kernels of the run."""
    index = reader.read_index(multiplexer_provider(logdir), RequestContext(), "")
    steps: dict[str, set[int]] = {}
    for entry in index.runs.get("train", ()):
        for kind, kind_steps in entry.steps.items():
            steps.setdefault(kind, set()).update(kind_steps.stats_steps)
    return steps


def our_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "WeightGatesCallback: writing to" in str(w.message)]


def fit(model, callback, epochs, x, y):
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[callback])


@pytest.mark.parametrize("mode", ["weights", "probe", "train"])
def test_full_disk_never_stops_training_and_logging_resumes(small_disk, quick_retry, mode):
    x, y = data(64)
    model = small_model()
    callback = WeightGatesCallback(
        log_dir=small_disk.path,
        update_freq=1,
        snapshot_freq=4,
        gradients=gradients_argument(mode, x, y),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, callback, 12, x, y)
    messages = our_warnings(caught)
    assert len(messages) == 1, messages
    assert small_disk.path in messages[0] and "No space left on device" in messages[0]
    assert int(model.optimizer.iterations.numpy()) == 96  # every batch trained

    before = readable_steps(small_disk.path)
    assert 0 in before["weights"] and len(before["weights"]) >= 3
    if mode != "weights":
        assert before["gradients"]
    files_before = set(os.listdir(os.path.join(small_disk.path, "train")))

    small_disk.resize("20m")
    fit(model, callback, 1, x, y)
    after = readable_steps(small_disk.path)
    assert before["weights"] <= after["weights"]
    assert {97, 104} <= after["weights"]  # the resumed fit: steps 97 to 104
    if mode != "weights":
        assert 104 in after["gradients"]
    assert len(set(os.listdir(os.path.join(small_disk.path, "train"))) - files_before) == 1


def test_on_error_raise_stops_training(small_disk):
    x, y = data(64)
    callback = WeightGatesCallback(log_dir=small_disk.path, update_freq=1, on_error="raise")
    with pytest.raises(tf.errors.ResourceExhaustedError, match="No space left on device"):
        fit(small_model(), callback, 12, x, y)


def test_deleted_log_directory_never_stops_training(tmp_path, quick_retry):
    """The run's directory removed while training (a cleanup script, a network file system
    remounted): one warning, and the next logs go to a new directory there."""
    x, y = data(16)
    model = small_model()
    callback = WeightGatesCallback(log_dir=str(tmp_path / "run"), update_freq=1)
    fit(model, callback, 1, x, y)
    shutil.rmtree(tmp_path / "run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, callback, 1, x, y)
    messages = our_warnings(caught)
    assert len(messages) == 1 and str(tmp_path / "run") in messages[0]
    fit(model, callback, 1, x, y)
    assert {5, 6} <= readable_steps(str(tmp_path / "run"))["weights"]


def test_a_writer_collected_while_a_graph_is_built_is_deleted_outside_it(tmp_path):
    """A garbage collection can drop the last writer in the middle of a trace (Keras tracing
    its training step): its resource is deleted eagerly, never by an op of that graph, which
    would destroy the resource when the graph runs (and could wait forever on the graph's
    lock)."""
    holder = [event_writer.EventWriter(str(tmp_path / "run"))]

    @tf.function
    def traced(x):
        holder.clear()
        return x + 1.0

    graph = traced.get_concrete_function(tf.TensorSpec([], tf.float32)).graph
    assert not holder
    assert "DestroyResourceOp" not in {op.type for op in graph.get_operations()}
    assert traced(tf.constant(1.0)).numpy() == 2.0
