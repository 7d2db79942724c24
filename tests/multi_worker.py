"""One worker of `test_multi_worker.py`: trains `model()` under MultiWorkerMirroredStrategy with
WeightGatesCallback, for each gradients mode, each into its own log directory.

Run as ``python multi_worker.py OUT MODE...`` with ``TF_CONFIG`` naming this worker; the chief
also saves, per mode, the weights at each step (``weights_MODE.npz``), for the test's own tape.
Keras 3 or tf-keras, as ``TF_USE_LEGACY_KERAS`` says. Each worker trains on its own half of
`data()` (`worker_data`) and shards nothing (`AutoShardPolicy.OFF`): at each step it takes its
half's next `PER_WORKER` samples, so the global batch of a step is both halves' (`global_batch`).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

WORKERS = 2
PER_WORKER = 4
STEPS = 2
MODES = ("weights", "probe", "train")


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(WORKERS * PER_WORKER * STEPS, 4, 3)).astype("float32")
    y = rng.normal(size=(len(x), 2)).astype("float32")
    return x, y


def worker_data(index: int) -> tuple[np.ndarray, np.ndarray]:
    """The samples worker `index` trains on, in order: its contiguous half of `data()`."""
    x, y = data()
    half = len(x) // WORKERS
    return x[index * half : (index + 1) * half], y[index * half : (index + 1) * half]


def global_batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    """The samples of global step `step` (from 1): each worker's next `PER_WORKER`."""
    parts = [worker_data(i) for i in range(WORKERS)]
    window = slice((step - 1) * PER_WORKER, step * PER_WORKER)
    return (
        np.concatenate([x[window] for x, _ in parts]),
        np.concatenate([y[window] for _, y in parts]),
    )


def model(keras):
    inputs = keras.Input((4, 3))
    hidden = keras.layers.LSTM(2, name="lstm")(inputs)
    outputs = keras.layers.Dense(2, name="head")(hidden)
    built = keras.Model(inputs, outputs)
    built.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return built


def main(out: str, modes: list[str]) -> None:
    import tensorflow as tf

    from tensorboard_plugin_weightgates import WeightGatesCallback

    keras = tf.keras
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    x, y = worker_data(index)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y)).batch(PER_WORKER * WORKERS).with_options(options)
    )
    probe = global_batch(1)
    for mode in modes:
        with strategy.scope():
            trained = model(keras)
        gradients = {"weights": None, "probe": probe, "train": "train"}[mode]
        callback = WeightGatesCallback(
            log_dir=os.path.join(out, f"worker{index}", mode),
            update_freq=1,
            snapshot_freq=1,
            gradients=gradients,
            snapshot_max_cells=10**6,
        )
        recorder = recorder_class(keras)()
        trained.fit(
            dataset, epochs=1, steps_per_epoch=STEPS, verbose=0, callbacks=[recorder, callback]
        )
        if index == 0:
            np.savez(os.path.join(out, f"weights_{mode}.npz"), **recorder.weights)
        print(f"worker {index}: {mode} done", flush=True)


def recorder_class(keras):
    """A callback of this Keras keeping the weights at each step count, as arrays named
    ``s{step}_{index}`` (step 0: before training)."""

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights: dict[str, np.ndarray] = {}

        def on_train_begin(self, logs=None):
            self._record()

        def on_train_batch_end(self, batch, logs=None):
            self._record()

        def _record(self):
            step = int(self.model.optimizer.iterations.numpy())
            for i, value in enumerate(self.model.get_weights()):
                self.weights[f"s{step}_{i}"] = value

    return Recorder


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
