"""Canaries for every private Keras and TensorFlow access in `keras_writer.compat`.

Each test fails with the name of the private attribute and what weightgates does without it
when a Keras or TensorFlow release moves it, so that such a release breaks our CI, not our
users. They run under Keras 3 and tf-keras (`make test`) and against the oldest and newest
Keras 3 that TensorFlow accepts (`make test-compat`).
"""

from __future__ import annotations

import inspect
import os
import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorboard_plugin_weightgates import WeightGatesCallback  # noqa: E402
from tensorboard_plugin_weightgates.keras_writer import compat  # noqa: E402

pytestmark = pytest.mark.keras
keras = tf.keras
LEGACY = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
VERSION = getattr(keras, "__version__", "?")


def moved(what: str, consequence: str) -> str:
    return (
        f"Keras {VERSION} / TensorFlow {tf.__version__} moved {what}: {consequence}. "
        "Update keras_writer/compat.py, and setup.py's bounds until it is fixed."
    )


def small_model(outputs: int = 1) -> keras.Model:
    inputs = keras.Input((3, 2))
    hidden = keras.layers.LSTM(4)(inputs)
    heads = [keras.layers.Dense(1, name=f"out_{i}")(hidden) for i in range(outputs)]
    model = keras.Model(inputs, heads if outputs > 1 else heads[0])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def test_layers_list_their_direct_sublayers():
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    x = np.zeros((1, 4, 5), np.float32)
    layer(x, x)

    assert callable(getattr(layer, "_flatten_layers", None)), moved(
        "Layer._flatten_layers", "attention sublayers are found by scanning attributes instead"
    )
    names = [sub.name for sub in compat.sublayers(layer)]
    assert {"query", "key", "value", "attention_output"} <= set(names), moved(
        "Layer._flatten_layers(include_self=False, recursive=False)",
        f"it lists {names}, so variables would lose their sublayer prefix (query/kernel)",
    )


def test_sublayers_without_flatten_layers_falls_back_to_attributes(monkeypatch):
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    x = np.zeros((1, 4, 5), np.float32)
    layer(x, x)
    expected = {sub.name for sub in compat.sublayers(layer)}

    monkeypatch.setattr(type(layer), "_flatten_layers", None)

    assert {sub.name for sub in compat.sublayers(layer)} >= expected - {"softmax", "dropout"}


def test_variables_have_a_unique_id_across_wrappers():
    model = small_model()
    variable = model.trainable_variables[0]
    inner = getattr(variable, "value", variable)
    inner = inner if isinstance(inner, tf.Variable) else variable

    assert isinstance(getattr(inner, "_unique_id", None), (int, str)), moved(
        "tf.Variable._unique_id", "training gradients are matched by id() instead"
    )
    assert compat.variable_key(variable) == compat.variable_key(inner)


def test_distributed_variables_share_their_unique_id_with_their_wrapper():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = small_model()
    variable = model.trainable_variables[0]
    inner = getattr(variable, "value", variable)
    inner = inner if isinstance(inner, tf.Variable) else variable

    assert isinstance(inner, tf.distribute.DistributedValues)
    assert isinstance(getattr(inner, "_unique_id", None), (int, str)), moved(
        "DistributedVariable._unique_id",
        'gradients="train" would not match MirroredStrategy gradients to their variables',
    )
    assert compat.variable_key(variable) == compat.variable_key(inner)


def test_optimizers_have_the_update_method_that_training_gradients_wrap():
    optimizers = [keras.optimizers.SGD(0.1), keras.optimizers.Adam()]
    if LEGACY:
        optimizers.append(keras.optimizers.legacy.SGD(0.1))
    for optimizer in optimizers:
        target, method = compat.update_target(optimizer)
        parameters = list(inspect.signature(getattr(type(target), method)).parameters)
        assert parameters[1:3] == ["distribution", "grads_and_vars"], moved(
            f"{type(target).__name__}.{method}",
            f"its parameters are now {parameters}; training gradients cannot be caught",
        )
    compat.check_train_gradients_supported(keras)


def test_loss_scale_optimizer_is_unwrapped_to_its_inner_optimizer():
    inner = keras.optimizers.SGD(0.1)
    target, _ = compat.update_target(keras.mixed_precision.LossScaleOptimizer(inner))

    assert target is inner, moved("LossScaleOptimizer.inner_optimizer", "its update is not found")


def test_missing_update_method_is_refused_at_construction(tmp_path, monkeypatch):
    monkeypatch.setattr(compat, "UPDATE_METHODS", ("_no_such_update_method",))

    with pytest.raises(ValueError, match=r'gradients: gradients="train" is not available.*probe'):
        WeightGatesCallback(log_dir=str(tmp_path), gradients="train")


def test_missing_update_method_at_fit_warns_and_logs_weights_only(tmp_path, monkeypatch):
    model = small_model()
    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, gradients="train")
    monkeypatch.setattr(compat, "UPDATE_METHODS", ("_no_such_update_method",))
    x, y = np.zeros((4, 3, 2), np.float32), np.zeros((4, 1), np.float32)

    with pytest.warns(UserWarning, match="logs weights only"):
        model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[callback])

    assert os.listdir(tmp_path / "train")


def test_models_rebuild_their_train_function_on_request():
    model = small_model()
    model.make_train_function()
    before, before_tf = compat.train_functions(model)

    assert "force" in inspect.signature(type(model).make_train_function).parameters, moved(
        "Model.make_train_function(force=...)", 'gradients="train" cannot retrace the step'
    )
    compat.rebuild_train_function(model)
    after, after_tf = compat.train_functions(model)
    assert callable(after) and after is not before, moved(
        "Model.train_function", "the traced step with logging is not installed"
    )
    if LEGACY:
        assert after_tf is not None and after_tf is not before_tf, moved(
            "tf-keras Model.train_tf_function", "the traced step is not restored after fit"
        )
    compat.set_train_functions(model, before, before_tf)
    assert compat.train_functions(model) == (before, before_tf)


@pytest.mark.parametrize("outputs", [1, 2])
def test_loss_metrics_paused_keeps_a_loss_out_of_the_metrics(outputs):
    model = small_model(outputs)
    x = tf.ones((4, 3, 2))
    y = [tf.ones((4, 1))] * outputs if outputs > 1 else tf.ones((4, 1))
    model.fit(x, y, epochs=1, verbose=0)
    before = [np.asarray(v) for m in model.metrics for v in m.variables]

    with compat.loss_metrics_paused(model):
        loss = model.compute_loss(x=x, y=y, y_pred=model(x))

    after = [np.asarray(v) for m in model.metrics for v in m.variables]
    assert float(loss) > 0
    for old, new in zip(before, after):
        np.testing.assert_array_equal(
            old,
            new,
            err_msg=moved(
                "the compiled loss's metrics (_compile_loss._metrics, compiled_loss."
                "_total_loss_mean, _per_output_metrics)",
                "a probe batch's loss would be added to the training loss users see",
            ),
        )


@pytest.mark.skipif(not LEGACY, reason="only tf-keras converts batch logs for callbacks")
def test_callback_lists_read_the_tensor_logs_flag():
    source = inspect.getsource(type(keras.callbacks.CallbackList([])))

    assert "_supports_tf_logs" in source, moved(
        "CallbackList's _supports_tf_logs",
        "batch logs may be copied to NumPy at every batch (a device sync)",
    )


def test_logging_functions_stay_one_call_op_that_grappler_skips():
    function = compat.logging_function(lambda x: x * 2.0)
    concrete = function.get_concrete_function(tf.TensorSpec([], tf.float32))
    assert concrete.function_def.attr[compat.NOINLINE_ATTRIBUTE].b, moved(
        f"tf.function(experimental_attributes={{{compat.NOINLINE_ATTRIBUTE!r}: True}})",
        'steps that log nothing pay for every op of the logging branch (gradients="train")',
    )

    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    before = context.context().function_call_options
    caller = tf.function(lambda x: function(x) + 1.0).get_concrete_function(
        tf.TensorSpec([], tf.float32)
    )
    calls = [op for op in caller.graph.get_operations() if "PartitionedCall" in op.type]
    assert len(calls) == 1
    config = config_pb2.ConfigProto.FromString(calls[0].get_attr("config_proto"))
    assert config.graph_options.rewrite_options.disable_meta_optimizer, moved(
        "the eager context's function_call_options (config_proto of call ops)",
        "Grappler optimizes the logging graphs again (a second more on the first fit)",
    )
    assert context.context().function_call_options is before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(function(tf.constant(2.0))) == 4.0
        assert float(caller(tf.constant(2.0))) == 5.0
    assert context.context().function_call_options is before


def test_keras_3_models_run_without_grappler_and_tf_keras_models_with_it():
    """The probe and the activation pass skip Grappler for Keras 3 models only: tf-keras' LSTM
    and GRU rely on Grappler's implementation selector for cuDNN on GPUs."""
    from tensorflow.core.protobuf import config_pb2

    model = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2)])
    function = compat.model_function(tf.function(lambda x: model(x, training=False)), model)
    x = tf.ones([1, 3, 2])
    caller = tf.function(lambda x: function(x) + 1.0).get_concrete_function(x)
    calls = [op for op in caller.graph.get_operations() if "PartitionedCall" in op.type]
    config = config_pb2.ConfigProto.FromString(calls[0].get_attr("config_proto"))
    keras_3 = not LEGACY
    assert config.graph_options.rewrite_options.disable_meta_optimizer == keras_3, moved(
        "the module of a Keras 3 model's classes (keras.src...)",
        "the probe's first call optimizes the model's graph for nothing (about a second)"
        if keras_3
        else "tf-keras' recurrent layers lose cuDNN on GPUs",
    )
    np.testing.assert_allclose(function(x), model(x), rtol=1e-6)


def test_a_layers_call_can_be_intercepted_from_any_model():
    lstm = keras.layers.LSTM(2, return_sequences=True)
    bidirectional = keras.layers.Bidirectional(keras.layers.GRU(2))
    inner = keras.Sequential([keras.Input((3, 2)), lstm], name="inner")
    inputs = keras.Input((3, 2))
    model = keras.Model(inputs, bidirectional(inner(inputs)))
    x = np.ones((1, 3, 2), np.float32)
    seen = []

    def handler(layer, call, args, kwargs):
        seen.append((layer.name, "mask" in kwargs or len(args) > 1))
        return call(*args, **kwargs)

    with compat.calls_intercepted([lstm, bidirectional], handler):
        traced = tf.function(lambda x: model(x, training=False))(x)

    assert [name for name, _ in seen] == [lstm.name, bidirectional.name], moved(
        "the lookup of Layer.call on the instance at each call",
        "recurrent layers' inputs are not captured, so no activations are logged",
    )
    assert "call" not in vars(lstm) and "call" not in vars(bidirectional)
    np.testing.assert_allclose(traced, model(x), rtol=1e-6)


def test_summary_writes_go_through_an_unflushed_writer(tmp_path):
    """`tf.summary.write` takes the default writer's ``_resource`` (and ``_mesh``), and
    ``as_default()`` flushes the writer on exit by calling its ``flush``: a compiled function
    that writes through `compat.UnflushedWriter` has no flush op, and its records reach the file
    when the owner flushes the resource."""
    with tf.device("cpu:0"):
        resource = tf.raw_ops.SummaryWriter(shared_name="weightgates_canary", container="")
        tf.raw_ops.CreateSummaryFileWriter(
            writer=resource,
            logdir=str(tmp_path),
            max_queue=2**31 - 1,
            flush_millis=2**31 - 1,
            filename_suffix=".v2",
        )
    writer = compat.UnflushedWriter(resource)

    @tf.function
    def write(step):
        with writer.as_default(), tf.summary.record_if(True):
            tf.summary.write("canary", tf.constant([1.0, 2.0]), step=step)

    graph = write.get_concrete_function(tf.TensorSpec([], tf.int64)).graph
    op_types = {op.type for op in graph.get_operations()}
    assert "WriteSummary" in op_types, moved(
        "tf.summary.write's use of the default writer's _resource",
        "records would not be written through event_writer.EventWriter",
    )
    assert "FlushSummaryWriter" not in op_types, moved(
        "as_default()'s flush on exit (SummaryWriter.flush)",
        "a full disk would raise inside Keras' training step again",
    )
    write(tf.constant(3, tf.int64))
    with tf.device("cpu:0"):
        tf.raw_ops.FlushSummaryWriter(writer=resource)
        steps = [
            tf.compat.v1.Event.FromString(r.numpy()).step
            for path in tf.io.gfile.glob(str(tmp_path / "*tfevents*"))
            for r in tf.data.TFRecordDataset(path)
        ]
        tf.raw_ops.DestroyResourceOp(resource=resource)
    assert 3 in steps


def test_local_variables_escape_a_strategy_scope():
    """Logger variables made inside a strategy's scope (tf-keras runs callbacks there) are plain
    variables, not the strategy's, through TensorFlow's ``ResourceVariable``."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        with compat.local_variables():
            local = tf.Variable(tf.zeros([2]), trainable=False, name="weightgates_canary")
        mirrored = tf.Variable(tf.zeros([2]))
    assert type(local).__name__ == "ResourceVariable", moved(
        "tensorflow.python.ops.resource_variable_ops.ResourceVariable",
        "the loggers' variables would be the strategy's, which hangs MultiWorkerMirroredStrategy",
    )
    assert not isinstance(local, tf.distribute.DistributedValues)
    assert isinstance(mirrored, tf.distribute.DistributedValues)
    local.assign([1.0, 2.0])
    np.testing.assert_array_equal(local.numpy(), [1.0, 2.0])
    with strategy.scope():
        single = compat.local_variable(np.zeros(3, np.float32), "weightgates_canary")
    assert not isinstance(single, tf.distribute.DistributedValues) and not single.trainable
