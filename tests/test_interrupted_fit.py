"""One record per step after an interrupted `fit`.

A Ctrl+C most often lands in the slowest part of a logged step, the first probe pass (it is
traced then), after the step's weights are written: the next `fit` must not write that step
again. Here the interrupt is raised by the model itself, from a layer traced in inference mode
(the probe pass), and, for the other modes, by a later callback right after a log. Records are
counted in the event files themselves, where a step written twice shows as two records.
"""

from __future__ import annotations

import collections
import glob
import os

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_file_loader
from test_callback import data

from tensorboard_plugin_weightgates import WeightGatesCallback
from tensorboard_plugin_weightgates.format import metadata

pytestmark = pytest.mark.keras
keras = tf.keras


class InterruptOnProbe(keras.layers.Layer):
    """The identity; raises `KeyboardInterrupt` when called in inference mode while `armed`:
    in a training step it never does, in the callback's probe pass it does."""

    armed = False

    def call(self, inputs, training=None):
        if InterruptOnProbe.armed and not training:
            raise KeyboardInterrupt
        return inputs


def interruptible_model():
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            InterruptOnProbe(),
            keras.layers.LSTM(4, name="lstm"),
            keras.layers.Dense(2, name="head"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


class InterruptAt(keras.callbacks.Callback):
    """At the end of batch `batch`: `raise_now` raises there (after the callbacks before it
    have logged), otherwise arms `InterruptOnProbe` for the callbacks after it."""

    def __init__(self, batch: int, raise_now: bool):
        super().__init__()
        self.batch, self.raise_now = batch, raise_now

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch:
            if self.raise_now:
                raise KeyboardInterrupt
            InterruptOnProbe.armed = True


def records_per_step(logdir: str) -> dict[str, collections.Counter]:
    """{record kind (stats or snapshot of weights or gradients): Counter of (tag, step)}."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    kinds: dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(logdir, "train", "*tfevents*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                plugin = value.metadata.plugin_data
                if plugin.plugin_name == metadata.PLUGIN_NAME:
                    kinds[value.tag] = "stats " + metadata.parse_stats_content(plugin.content).kind
                elif plugin.plugin_name == metadata.SNAPSHOT_PLUGIN_NAME:
                    content = metadata.parse_snapshot_content(plugin.content)
                    kinds[value.tag] = "snapshot " + content.kind
                if value.tag in kinds:
                    counts[kinds[value.tag]][(value.tag, event.step)] += 1
    return counts


@pytest.mark.parametrize(
    "mode, during_log",
    [("weights", False), ("probe", False), ("probe", True), ("train", False)],
)
def test_interrupted_fit_never_writes_a_step_twice(tmp_path, mode, during_log):
    x, y = data(64)
    model = interruptible_model()
    gradients = {"weights": None, "probe": (x[:8], y[:8]), "train": "train"}[mode]
    callback = WeightGatesCallback(
        log_dir=str(tmp_path), update_freq=2, snapshot_freq=4, gradients=gradients
    )
    interrupt = InterruptAt(batch=1, raise_now=not during_log)
    callbacks = [interrupt, callback] if during_log else [callback, interrupt]
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=callbacks)
    finally:
        InterruptOnProbe.armed = False
    assert int(model.optimizer.iterations.numpy()) == 2
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])

    counts = records_per_step(str(tmp_path))
    assert {"stats weights", "snapshot weights"} <= set(counts)
    for kind, per_tag_step in counts.items():
        twice = sorted({step for (_, step), n in per_tag_step.items() if n > 1})
        assert not twice, f"{kind} written twice at steps {twice}"
    weight_steps = {step for _, step in counts["stats weights"]}
    assert weight_steps == {0, 2, 4, 6, 8, 10}
