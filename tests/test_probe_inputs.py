"""Probe batches that do not fit the model fail before training, naming the argument.

Without the check, ``gradients=(x[:4, :2], y[:4])`` passed the constructor and `fit` died at its
first logged step with Keras' input-shape error, which does not mention ``gradients=``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from test_callback import data, small_model

from tensorboard_plugin_weightgates import WeightGatesCallback

pytestmark = pytest.mark.keras
keras = tf.keras


def sequential_model():
    model = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.GRU(3, name="gru"), keras.layers.Dense(2, name="head")]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def two_input_model():
    sequence = keras.Input((None, 3), name="sequence")
    extra = keras.Input((4,), name="extra")
    hidden = keras.layers.LSTM(3, name="lstm")(sequence)
    outputs = keras.layers.Dense(2, name="head")(keras.layers.Concatenate()([hidden, extra]))
    model = keras.Model({"sequence": sequence, "extra": extra}, outputs)
    model.compile(optimizer="sgd", loss="mse")
    return model


MODELS = {"functional": small_model, "sequential": sequential_model}


def fit(model, callback, x, y):
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])


@pytest.mark.parametrize("make_model", list(MODELS))
@pytest.mark.parametrize("argument", ["gradients", "activations"])
def test_probe_that_does_not_fit_fails_before_training(tmp_path, make_model, argument):
    model = MODELS[make_model]()
    x, y = data(16)
    probe = (x[:4, :, :2], y[:4])
    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, **{argument: probe})
    message = (
        rf"{argument}: the probe batch does not fit the model's inputs: expected shape "
        r"\(None, 5, 3\) \(None: any size\), got shape \(4, 5, 2\)"
    )
    with pytest.raises(ValueError, match=message):
        fit(model, callback, x, y)
    assert int(model.optimizer.iterations.numpy()) == 0


@pytest.mark.parametrize("make_model", list(MODELS))
def test_probe_of_another_rank_fails(tmp_path, make_model):
    x, y = data(16)
    callback = WeightGatesCallback(log_dir=str(tmp_path), gradients=(x[:4, :2, 0], y[:4]))
    with pytest.raises(ValueError, match=r"gradients: .*got shape \(4, 2\)"):
        fit(MODELS[make_model](), callback, x, y)


def test_multi_input_probe_is_checked_by_input_name(tmp_path):
    rng = np.random.default_rng(0)
    x = {
        "sequence": rng.normal(size=(16, 6, 3)).astype("float32"),
        "extra": rng.normal(size=(16, 4)).astype("float32"),
    }
    y = rng.normal(size=(16, 2)).astype("float32")
    short = {"sequence": x["sequence"][:4, :2], "extra": x["extra"][:4]}  # any length fits
    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, gradients=(short, y[:4]))
    fit(two_input_model(), callback, x, y)

    wrong = {"sequence": x["sequence"][:4], "extra": x["extra"][:4, :3]}
    callback = WeightGatesCallback(log_dir=str(tmp_path / "b"), gradients=(wrong, y[:4]))
    with pytest.raises(ValueError, match=r"gradients: .*2 inputs of shapes"):
        fit(two_input_model(), callback, x, y)


def test_model_built_by_its_first_batch_checks_the_last_axis(tmp_path):
    """A Sequential without an Input is built by its first batch: the probe's sequence length
    may differ from that batch's, its feature count may not."""
    x, y = data(16)

    def lazy_model():
        model = keras.Sequential([keras.layers.LSTM(3), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    longer = np.concatenate([x[:4], x[:4]], axis=1)
    fit(lazy_model(), WeightGatesCallback(str(tmp_path), gradients=(longer, y[:4])), x, y)
    callback = WeightGatesCallback(str(tmp_path / "b"), gradients=(x[:4, :, :2], y[:4]))
    with pytest.raises(ValueError, match=r"gradients: .*got shape \(4, 5, 2\)"):
        fit(lazy_model(), callback, x, y)
