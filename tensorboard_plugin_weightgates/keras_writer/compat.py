"""Every private Keras and TensorFlow API weightgates uses, and nothing else.

Keras has no public hook for the gradients of its training step, for naming a layer's variables
relative to it, or for keeping a probe's loss out of the loss metrics; these functions reach
for the private attributes that do it, in Keras 3 (TensorFlow backend) and tf-keras. Each access
has a canary in ``tests/test_compat.py``, which fails with the attribute's name when a Keras
release moves it, and each has a way out for users when it is gone: a fallback that logs the
same data a slower or plainer way, or `TrainGradientsUnavailable`, which tells them to pass a
probe batch instead of ``gradients="train"``.

Nothing outside this module touches an attribute of a Keras or TensorFlow object whose name
starts with an underscore.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import tensorflow as tf
from tensorflow.core.protobuf import config_pb2 as _config_pb2
from tensorflow.python.eager import context as _eager_context
from tensorflow.python.ops.resource_variable_ops import ResourceVariable as _ResourceVariable

UPDATE_METHODS = (
    "_distributed_tf_update_step",
    "_distributed_apply_gradients_fn",
    "_distributed_apply",
)
"""Optimizer methods called as ``method(distribution, grads_and_vars, ...)`` with the final
gradients, in the cross-replica context, in the order they are looked for: Keras 3
(``keras/src/backend/tensorflow/optimizer.py``), tf-keras optimizers, tf-keras legacy
optimizers (``tf.keras.optimizers.legacy``)."""

NOINLINE_ATTRIBUTE = "_noinline"
"""A `tf.function` attribute that keeps the function one call op in the graphs that call it."""


class TrainGradientsUnavailable(TypeError):
    """``gradients="train"`` cannot work with this optimizer or this Keras release."""


def sublayers(obj: Any) -> list[Any]:
    """The layers `obj` holds directly (``query`` and ``key`` in ``MultiHeadAttention``), in
    the order Keras tracks them.

    Uses ``Layer._flatten_layers``; without it, falls back to the layers among `obj`'s
    attributes, which finds the same ones for every built-in layer, in attribute order.
    """
    flatten = getattr(obj, "_flatten_layers", None)
    if callable(flatten):
        return list(flatten(include_self=False, recursive=False))
    found: list[Any] = []
    for value in vars(obj).values():
        if value is not obj and hasattr(value, "weights") and hasattr(value, "built"):
            if all(value is not seen for seen in found):
                found.append(value)
    return found


def variable_key(variable: Any) -> int:
    """Identifies a variable across its wrappers: a Keras 3 variable and the `tf.Variable` it
    holds (``.value``), by TensorFlow's ``_unique_id``, which a distributed variable shares
    with its primary component; falls back to the unwrapped object's ``id``."""
    inner = getattr(variable, "value", None)
    if isinstance(inner, tf.Variable):
        variable = inner
    return getattr(variable, "_unique_id", id(variable))


def update_target(optimizer: Any) -> tuple[Any, str]:
    """The optimizer that applies the gradients (inside loss-scale wrappers) and the name of its
    method that receives the final ones (one of `UPDATE_METHODS`).

    Raises:
      TrainGradientsUnavailable: for an optimizer with none of those methods, naming it and the
        alternative.
    """
    target = optimizer
    while getattr(target, "inner_optimizer", None) is not None:
        target = target.inner_optimizer
    name = _update_method(type(target))
    if name is None:
        raise TrainGradientsUnavailable(
            'gradients="train" needs a Keras 3 (TensorFlow backend) or tf-keras optimizer; '
            f"{type(target).__module__}.{type(target).__name__} has none of the methods "
            f"{UPDATE_METHODS} (a Keras release may have renamed them). Pass a probe batch, "
            "gradients=(x, y), instead"
        )
    return target, name


def check_train_gradients_supported(keras: Any) -> None:
    """Raises `TrainGradientsUnavailable` if the base optimizer of the `keras` module that
    `fit` will use (``tf.keras``) has none of `UPDATE_METHODS`, so that the callback refuses
    ``gradients="train"`` at construction rather than at the first `fit`."""
    base = getattr(getattr(keras, "optimizers", None), "Optimizer", None)
    if base is not None and _update_method(base) is None:
        version = getattr(keras, "__version__", "this version")
        raise TrainGradientsUnavailable(
            f'gradients="train" is not available with Keras {version}: its optimizers have '
            f"none of the methods {UPDATE_METHODS} that weightgates wraps. Pass a probe "
            "batch, gradients=(x, y), instead, or use a Keras release this weightgates "
            "supports (see its setup.py)"
        )


def _update_method(optimizer_class: type) -> str | None:
    for name in UPDATE_METHODS:
        if callable(getattr(optimizer_class, name, None)):
            return name
    return None


def train_functions(model: Any) -> tuple[Any, Any]:
    """The model's compiled training function and, in tf-keras, the `tf.function` inside it
    (``train_tf_function``; None in Keras 3)."""
    return model.train_function, getattr(model, "train_tf_function", None)


def set_train_functions(model: Any, train_function: Any, train_tf_function: Any) -> None:
    """Puts back training functions taken by `train_functions`."""
    model.train_function = train_function
    if train_tf_function is not None:
        model.train_tf_function = train_tf_function


def rebuild_train_function(model: Any) -> None:
    """Has Keras trace a new training function, with the class's own ``make_train_function``
    (an instance may hold a replacement, see `train_gradients`)."""
    type(model).make_train_function(model, force=True)


class _NoMetric:
    def update_state(self, *args, **kwargs):
        return None


@contextlib.contextmanager
def loss_metrics_paused(model: Any) -> Iterator[None]:
    """Keeps a loss computed while this is active out of the model's loss metrics.

    `compute_loss` also feeds the loss to the loss-tracking metrics (tf-keras always, Keras 3
    for multi-output models): a probe would shift the training loss users see, and such
    updates are refused in the cross-replica context of a `tf.distribute` strategy. Keras 3
    keeps those metrics in ``model._compile_loss._metrics``, tf-keras in
    ``model.compiled_loss._total_loss_mean`` and ``._per_output_metrics``; they are swapped
    here for the duration (the graph traced meanwhile never references them). Where a Keras
    release has none of them, nothing is swapped.
    """
    saved = []
    compile_loss = getattr(model, "_compile_loss", None)
    if compile_loss is not None and getattr(compile_loss, "_metrics", None):
        saved.append((compile_loss, "_metrics", compile_loss._metrics))
        compile_loss._metrics = [None] * len(compile_loss._metrics)
    container = getattr(model, "compiled_loss", None)
    if container is not None and hasattr(container, "_total_loss_mean"):
        saved.append((container, "_total_loss_mean", container._total_loss_mean))
        container._total_loss_mean = _NoMetric()
        per_output = getattr(container, "_per_output_metrics", None)
        if per_output:
            saved.append((container, "_per_output_metrics", per_output))
            container._per_output_metrics = [None] * len(per_output)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def accept_tensor_logs(callback: Any) -> None:
    """Tells tf-keras' callback list that `callback` takes the batch logs as tensors
    (``_supports_tf_logs``), so that it does not copy them to NumPy, which would wait for the
    device at every batch. Keras 3 never converts them; there this changes nothing."""
    callback._supports_tf_logs = True


def local_variable(initial_value: Any, name: str) -> tf.Variable:
    """A non-trainable variable of this process only, even inside a distribution strategy's
    scope (see `local_variables`); a mirrored one would also be copied to every replica for
    nothing."""
    with local_variables():
        return tf.Variable(initial_value, trainable=False, name=name)


def logging_function(body: Callable, input_signature: Any = None) -> Any:
    """`body` as a `tf.function` (of `input_signature`, if given) for weightgates' own graphs
    (statistics, the training step's logging branch): it stays one call op in the graphs that
    call it (`NOINLINE_ATTRIBUTE`, an attribute `tf.function` passes to the function
    definition), so that it is built once, not again inside every graph that calls it; and it
    is never rewritten by Grappler, TensorFlow's graph optimizer, which spent 0.3 s on the first
    weight log and 0.6 s on the training step's first logged step of a 3-layer model, for
    graphs that run no faster for it (measured on CPU: the same per-log times).

    Grappler is configured per call site (``FunctionCallOptions.config_proto``, a private
    attribute of TensorFlow's eager context, read when a call op is made or an eager call is
    run): every call of the returned function, eager or traced, runs in `_without_grappler`,
    so its call ops carry a configuration with the meta optimizer off, and its eager calls
    share one instantiation. Other functions are untouched.
    """
    return _WithoutGrappler(
        tf.function(
            body,
            input_signature=input_signature,
            autograph=False,
            experimental_attributes={NOINLINE_ATTRIBUTE: True},
        )
    )


def model_function(function: Any, model: Any) -> Any:
    """`function`, a `tf.function` that runs `model`'s layers (the probe, the activation pass),
    called without Grappler when `model` is a Keras 3 model: Keras 3 picks its layers' kernels
    itself (it calls cuDNN's RNN op directly), and skipping Grappler took 0.2 s (3 layers) to
    1.1 s (7 layers) off the probe's first call, for the same time per call on CPU. tf-keras
    models keep Grappler, whose implementation selector swaps their LSTM and GRU for cuDNN's on
    GPUs."""
    return _WithoutGrappler(function) if _is_keras_3(model) else function


def _is_keras_3(model: Any) -> bool:
    return any(c.__module__.split(".")[0] == "keras" for c in type(model).__mro__)


class _WithoutGrappler:
    """A `tf.function` whose calls run in `_without_grappler`; everything else is the
    function's own (``get_concrete_function``, ``experimental_get_tracing_count``...)."""

    def __init__(self, function: Any):
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _without_grappler():
            return self._function(*args, **kwargs)

    def get_concrete_function(self, *args: Any, **kwargs: Any) -> Any:
        with _without_grappler():
            return self._function.get_concrete_function(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._function, name)


@contextlib.contextmanager
def _without_grappler() -> Iterator[None]:
    """Function calls made or run meanwhile, in this thread, skip Grappler's meta optimizer;
    the thread's options are restored, the same object, on exit."""
    context = _eager_context.context()
    saved = context.function_call_options
    context.function_call_options = _unoptimized(saved.executor_type, saved.config_proto_serialized)
    try:
        yield
    finally:
        context.function_call_options = saved


@functools.lru_cache(maxsize=8)
def _unoptimized(executor_type: str, serialized: bytes) -> Any:
    """The call options of `executor_type` and this serialized configuration with the meta
    optimizer off, built once per configuration (a thread's options rarely change; this runs
    at every logged step)."""
    config = _config_pb2.ConfigProto.FromString(serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    return _eager_context.FunctionCallOptions(executor_type=executor_type, config_proto=config)


@contextlib.contextmanager
def calls_intercepted(layers: Iterable[Any], handler: Callable[..., Any]) -> Iterator[None]:
    """While active, calling one of `layers` (``layer(x, ...)``, from whatever model holds it)
    runs ``handler(layer, call, args, kwargs)`` in place of ``layer.call(*args, **kwargs)``;
    `call` is the layer's own ``call``, which the handler may run.

    Keras (3 and tf-keras) runs a layer's ``__call__`` (casting, masks, the training flag) and
    then looks up ``self.call`` on the instance at each call, so an instance attribute shadows
    the class's method for every model type (Sequential, functional, subclassed, nested, inside
    ``Bidirectional``). It is set with ``object.__setattr__``, past Keras' attribute tracking,
    and removed on exit. Meant for tracing: a graph traced meanwhile keeps what the handler did.
    """
    layers = list(layers)
    saved = []
    for layer in layers:
        own = layer.call
        shadowed = "call" in vars(layer)

        def call(*args: Any, _layer: Any = layer, _own: Any = own, **kwargs: Any) -> Any:
            return handler(_layer, _own, args, kwargs)

        object.__setattr__(layer, "call", call)
        saved.append((layer, own, shadowed))
    try:
        yield
    finally:
        for layer, own, shadowed in saved:
            if shadowed:
                object.__setattr__(layer, "call", own)
            else:
                object.__delattr__(layer, "call")


class UnflushedWriter(tf.summary.SummaryWriter):
    """A `tf.summary` writer over `resource` whose `flush` does nothing.

    ``with writer.as_default():`` flushes the writer when the block exits, also inside a
    `tf.function` (TensorFlow's ``_SummaryContextManager.__exit__``), so every compiled
    function that writes would touch the disk and could fail there, such as Keras' training
    step. Behind this writer those flushes are no-ops; its owner flushes the resource itself
    (`event_writer.EventWriter.flush`). `tf.summary.write` reads the default writer's
    ``_resource``, which is set here, and ``_mesh`` (None: no DTensor mesh).
    """

    def __init__(self, resource: Any):
        self._resource = resource
        self._mesh = None

    def init(self) -> None:
        """Nothing to do: the owner creates the resource."""

    def flush(self) -> None:
        """Nothing, by design: see the class docstring."""

    def close(self) -> None:
        """Nothing: the owner closes the resource."""


@contextlib.contextmanager
def local_variables() -> Iterator[None]:
    """Variables created while this is active are plain variables of this process, also inside
    a `tf.distribute` strategy's scope (where tf-keras runs every callback).

    Under `MultiWorkerMirroredStrategy` a variable made in the strategy's scope is initialised
    by a collective broadcast that every worker must join; the loggers exist on the chief only,
    so its broadcasts would pair with the other workers' training collectives and fail or hang
    training. A variable creator entered last runs first: this one makes a TensorFlow
    ``ResourceVariable`` directly (its class is not public), without the strategy's creator.
    """
    accepted = set(inspect.signature(_ResourceVariable.__init__).parameters) - {"self"}

    def creator(next_creator: Callable[..., Any], **kwargs: Any) -> Any:
        return _ResourceVariable(**{k: v for k, v in kwargs.items() if k in accepted})

    with tf.variable_creator_scope(creator):
        yield
