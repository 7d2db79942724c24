"""Splits Keras layers into gate slices: one record per direction, cell, kernel and gate.

Gate order
----------
Keras stores all gates of a recurrent kernel side by side in one variable, concatenated along
the last axis in a fixed order, and computes every gate with one matrix product (or one
convolution) before cutting the result apart. We name the slices in that storage order:

* ``LSTM``, ``LSTMCell``, ``ConvLSTM1D/2D/3D``: ``input, forget, cell, output`` (i, f, c, o).
* ``GRU``, ``GRUCell``: ``update, reset, candidate`` (z, r, h).
* ``SimpleRNN``, ``SimpleRNNCell`` and every other layer: one slice per variable, gate ``None``.

Each gate is an equal-width contiguous range of the last axis: ``kernel[..., k*w:(k+1)*w]`` for
the k-th gate, ``w = shape[-1] // len(gates)``. A ``GRU(reset_after=True)`` bias has shape
``[2, 3*units]``: row 0 is added to the input projection and row 1 to the recurrent projection
(inside the reset gate's product for the candidate), so the rows are separate kernels named
``input_bias`` and ``recurrent_bias``.

Attention heads
---------------
``MultiHeadAttention`` (Keras 3 and tf-keras) and Keras 3's ``GroupQueryAttention`` hold one
block per head in each projection, so each projection is split per head, gates ``head_0``,
``head_1``... (`format.gate_names.head_names`); kernel names stay the variables' names:

* ``query/kernel``, ``key/kernel``, ``value/kernel`` ``[d_model, heads, head_dim]``: head h is
  ``kernel[:, h, :]``, a ``[d_model, head_dim]`` slice (axes ``input, head_dim``); the kernel is
  viewed as ``[d_model, heads * head_dim]``, head-major.
* their biases ``[heads, head_dim]``: head h is ``bias[h]`` (axis ``head_dim``); the kernel is
  viewed as ``[heads * head_dim]``.
* ``attention_output/kernel`` ``[heads, head_dim, d_out]``: head h is ``kernel[h]``
  transposed, ``[d_out, head_dim]`` (axes ``output, head_dim``): a row is an output unit, a
  column a component of the head, as in the other projections. The kernel is viewed as
  ``[d_out, heads * head_dim]``. ``attention_output/bias`` is not split.

In ``GroupQueryAttention`` the query, output (and ``gate``, with ``use_gate``) kernels have one
head per query head, the key and value kernels one per key-value head. Each view keeps the heads
as equal contiguous blocks of its last axis, as the gates of a recurrent kernel, so the
statistics treat a head as they treat a gate: a head's *units* are its ``head_dim`` components.

Views
-----
A `GateSlice` reads its gate from a value of the whole variable with `GateSlice.select`, and
every writer reads the whole kernel with `GateSlice.select_kernel` (each through a `View`: an
index, then an optional transposition and reshape), never by indexing on its own, so that
these layouts are said once, here. `metadata.KernelInfo.axes` names the axes of each gate's view
(`format.axes`), and `variable_shape` keeps the variable's own shape.

Layer kinds are recognised by the class names in the layer's MRO, not with ``isinstance``: the
same code then serves Keras 3 and tf-keras (``TF_USE_LEGACY_KERAS=1``), and this module never
imports either. The gate names themselves are `format.gate_names`, shared with the readers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format import axes, metadata
from tensorboard_plugin_weightgates.format.gate_names import (
    GRU_GATES,
    LSTM_GATES,
    NO_GATES,
    head_names,
)
from tensorboard_plugin_weightgates.keras_writer import compat

_RECURRENT_KERNELS = ("kernel", "recurrent_kernel", "bias")
_GRU_BIAS_ROWS = ("input_bias", "recurrent_bias")
_ATTENTION_TYPES = {"MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention"}
_HEAD_PROJECTIONS = ("query", "key", "value", "gate")
"""Sublayers of an attention layer whose kernel is ``[d_model, heads, head_dim]`` and bias
``[heads, head_dim]`` (``gate``: ``GroupQueryAttention(use_gate=True)``)."""
_OUTPUT_PROJECTION = "attention_output"


@dataclasses.dataclass(frozen=True)
class View:
    """How a slice or a whole kernel is read from a value of its variable: `index` (a
    NumPy-style index of ints, slices and ``Ellipsis``), then the axes reordered by
    `permutation` (None: kept), then reshaped to `shape` (None: kept).

    Reads the same on a NumPy array (with NumPy, on the host) and on a tensor or variable (with
    TensorFlow, also inside ``tf.function``, on the device that holds it).
    """

    index: tuple
    permutation: tuple[int, ...] | None = None
    shape: tuple[int, ...] | None = None

    def __call__(self, whole: Any) -> Any:
        part = whole[self.index]
        host = isinstance(part, np.ndarray)
        if self.permutation is not None:
            part = (
                np.transpose(part, self.permutation)
                if host
                else tf.transpose(part, self.permutation)
            )
        if self.shape is not None:
            part = np.reshape(part, self.shape) if host else tf.reshape(part, self.shape)
        return part

    def shape_of(self, shape: Sequence[int]) -> tuple[int, ...]:
        """The shape of this view of a variable of `shape`, found without reading it."""
        if self.shape is not None:
            return tuple(self.shape)
        indexed = np.broadcast_to(np.empty((), dtype=bool), tuple(shape))[self.index].shape
        if self.permutation is None:
            return tuple(indexed)
        return tuple(indexed[axis] for axis in self.permutation)


@dataclasses.dataclass(frozen=True)
class GateSlice(metadata.SliceInfo):
    """One gate of one kernel of one layer (its identity, `metadata.SliceInfo`), and where its
    values live.

    `view` selects this slice from the whole variable: for a recurrent gate an index alone,
    ``(Ellipsis, slice(16, 32))`` for the second gate of a 16-unit LSTM kernel,
    ``(1, slice(0, 8))`` for the update gate of a GRU's recurrent bias row, ``(Ellipsis,)`` for a
    variable that is not split; for an attention head an index and, for the output kernel, a
    transposition (see the module docstring). `kernel_view` selects the whole kernel, every gate
    side by side on its last axis, so stats code can compute per-gate statistics of
    ``kernel_view(variable)`` or ``kernel_view(gradient)`` without knowing the layer.

    `layer` is the layer's path in the model ("/"-joined names of the nested models below the
    root, then the layer's name, as Keras 3's ``layer.path``); wrappers (``Bidirectional``,
    ``TimeDistributed``) are the logged layer, and `direction` and `cell` say where inside it the
    slice lives. `order` is the layer's depth-first position among the layers that
    `split_model` logged.

    Slices compare and hash by their identity (the views follow from it, and slice objects are
    not hashable before Python 3.12), so they can key dicts.
    """

    trainable: bool
    variable: Any = dataclasses.field(compare=False, repr=False)
    view: View = dataclasses.field(compare=False)
    kernel_view: View = dataclasses.field(compare=False, repr=False)

    @property
    def index(self) -> tuple:
        """The index of the variable's entries that this slice holds (before any
        transposition of `view`)."""
        return self.view.index

    @property
    def values(self) -> np.ndarray:
        """The slice's current value: the variable is read at each access, never cached."""
        return np.array(self.select(np.asarray(self.variable)))

    def select(self, whole: Any) -> Any:
        """This slice of `whole`, a value of the whole variable (the variable itself, its
        gradient, a tensor or an array; also inside ``tf.function``). Writers select through
        here rather than indexing, so that a layout needing more than an index (an attention
        output kernel's heads) is said in one place."""
        return self.view(whole)

    def select_kernel(self, whole: Any) -> Any:
        """The whole kernel this slice belongs to, every gate side by side on the last axis in
        gate order, from a value of the whole variable (`kernel_view`)."""
        return self.kernel_view(whole)


@dataclasses.dataclass(frozen=True)
class _Unit:
    """A layer or cell whose own variables are named relative to it (after unwrapping)."""

    obj: Any
    layer_type: str
    direction: str
    cell: int | None


def _class_names(obj: Any) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def _is_container(layer: Any) -> bool:
    """Models (Functional, Sequential, subclassed) hold layers; they are walked, not logged."""
    return "Model" in _class_names(layer)


def _cell_gates(cell: Any) -> tuple[str | None, ...] | None:
    """Gate names of a recurrent cell in storage order, or None for a non-recurrent object."""
    names = _class_names(cell)
    if names & {"LSTMCell", "ConvLSTMCell"}:
        return LSTM_GATES
    if "GRUCell" in names:
        return GRU_GATES
    if "SimpleRNNCell" in names:
        return NO_GATES
    return None


def _units(layer: Any, direction: str = "forward") -> Iterator[_Unit]:
    """Unwraps `layer` down to the layers and cells that own its variables.

    ``Bidirectional`` gives its forward and backward layers (the copies it runs, not the layer
    it was built from), other wrappers their inner layer, ``RNN`` layers their cell or, for
    ``StackedRNNCells``, each cell with its index. A generic ``RNN(cell)`` takes the cell's
    class name as layer type; named recurrent layers (``LSTM``, ``ConvLSTM2D``) keep their own.
    """
    names = _class_names(layer)
    if "Bidirectional" in names:
        yield from _units(layer.forward_layer, "forward")
        yield from _units(layer.backward_layer, "backward")
    elif "Wrapper" in names:
        yield from _units(layer.layer, direction)
    elif "RNN" in names:
        cell = layer.cell
        if "StackedRNNCells" in _class_names(cell):
            for i, inner in enumerate(cell.cells):
                yield _Unit(inner, type(inner).__name__, direction, i)
        else:
            own_type = type(cell if type(layer).__name__ == "RNN" else layer).__name__
            yield _Unit(cell, own_type, direction, None)
    else:
        yield _Unit(layer, type(layer).__name__, direction, None)


def _wrapped(layer: Any) -> Iterator[Any]:
    """The layer and everything it wraps (inner layers, cells), for class filters."""
    yield layer
    names = _class_names(layer)
    if "Bidirectional" in names:
        yield from _wrapped(layer.forward_layer)
        yield from _wrapped(layer.backward_layer)
    elif "Wrapper" in names:
        yield from _wrapped(layer.layer)
    elif "RNN" in names:
        yield from _wrapped(layer.cell)
    elif "StackedRNNCells" in names:
        for cell in layer.cells:
            yield from _wrapped(cell)


def _short_name(variable: Any) -> str:
    """The variable's own name: Keras 3 gives ``kernel``, tf-keras ``scope/kernel:0``."""
    return re.sub(r":\d+$", "", variable.name).rsplit("/", 1)[-1]


def _relative_names(obj: Any) -> dict[int, str]:
    """Names of `obj`'s variables relative to it, by ``id`` of the variable.

    A variable of a sublayer is prefixed with the sublayer's name (``query/kernel`` in
    ``MultiHeadAttention``). Repeated names get ``_1``, ``_2``... in weight order, because a
    kernel name must be unique within its layer to become a tag.
    """
    named: dict[int, str] = {}
    for sub in compat.sublayers(obj):
        for key, name in _relative_names(sub).items():
            named.setdefault(key, f"{sub.name}/{name}")
    for variable in obj.weights:
        named.setdefault(id(variable), _short_name(variable))
    used: set[str] = set()
    unique: dict[int, str] = {}
    for variable in obj.weights:
        base = name = named[id(variable)]
        suffix = 0
        while name in used:
            suffix += 1
            name = f"{base}_{suffix}"
        used.add(name)
        unique[id(variable)] = name
    return unique


def _gate_slices(
    kernel: str,
    variable: Any,
    gates: tuple[str | None, ...],
    row: int | None,
    layer_types: set[str],
    **common: Any,
) -> list[GateSlice]:
    """Cuts `variable` (or one `row` of it) into `gates` equal ranges of its last axis."""
    if gates == NO_GATES:
        whole = View((Ellipsis,))
        return _slices(kernel, variable, gates, [whole], whole, layer_types, None, **common)
    size = _shape(variable)[-1]
    if size % len(gates):
        raise ValueError(
            f"{common['layer']}: {kernel} has {size} columns, which do not split into "
            f"{len(gates)} equal gates {gates}; this layer's layout is not supported"
        )
    width = size // len(gates)
    lead = Ellipsis if row is None else row
    views = [View((lead, slice(k * width, (k + 1) * width))) for k in range(len(gates))]
    kernel_view = View((lead, slice(0, size)))
    return _slices(kernel, variable, gates, views, kernel_view, layer_types, None, **common)


def _slices(
    kernel: str,
    variable: Any,
    gates: tuple[str | None, ...],
    views: Sequence[View],
    kernel_view: View,
    layer_types: set[str],
    names: tuple[str, ...] | None,
    **common: Any,
) -> list[GateSlice]:
    """One slice per gate and view; axes `names`, or (None) those `axes.kernel_axes` gives.
    `kernel_order` is set by `_split`, which sees the whole layer."""
    variable_shape = _shape(variable)
    pieces = []
    for k, view in enumerate(views):
        shape = view.shape_of(variable_shape)
        pieces.append(
            GateSlice(
                kernel=kernel,
                gates=gates,
                kernel_order=0,
                axes=axes.kernel_axes(kernel, len(shape), layer_types) if names is None else names,
                variable_shape=variable_shape,
                gate_index=k,
                shape=shape,
                trainable=bool(variable.trainable),
                variable=variable,
                view=view,
                kernel_view=kernel_view,
                **common,
            )
        )
    return pieces


def _shape(variable: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in variable.shape)


def _attention_slices(
    name: str, variable: Any, layer_types: set[str], **common: Any
) -> list[GateSlice]:
    """The slices of one variable of an attention layer: per head for the query, key, value
    (and gate) projections and the output kernel, whole otherwise (see the module docstring).
    A variable of another shape than Keras gives these (a subclass's own) is one slice."""
    projection, _, role = name.rpartition("/")
    shape = _shape(variable)
    if projection in _HEAD_PROJECTIONS and role == "kernel" and len(shape) == 3:
        d_model, heads, head_dim = shape
        views = [View((slice(None), h)) for h in range(heads)]
        kernel_view = View((Ellipsis,), shape=(d_model, heads * head_dim))
        names: tuple[str, ...] = (axes.INPUT, axes.HEAD_DIM)
    elif projection in _HEAD_PROJECTIONS and role == "bias" and len(shape) == 2:
        heads, head_dim = shape
        views = [View((h,)) for h in range(heads)]
        kernel_view = View((Ellipsis,), shape=(heads * head_dim,))
        names = (axes.HEAD_DIM,)
    elif projection == _OUTPUT_PROJECTION and role == "kernel" and len(shape) >= 3:
        heads, head_dim, *out = shape
        views = [View((h,), permutation=(*range(1, len(out) + 1), 0)) for h in range(heads)]
        kernel_view = View(
            (Ellipsis,),
            permutation=(*range(2, len(out) + 2), 0, 1),
            shape=(*out, heads * head_dim),
        )
        names = (*axes.outputs(len(out)), axes.HEAD_DIM)
    else:
        whole = View((Ellipsis,))
        output_bias = projection == _OUTPUT_PROJECTION and role == "bias" and len(shape) > 0
        names_of_whole = axes.outputs(len(shape)) if output_bias else None
        return _slices(
            name, variable, NO_GATES, [whole], whole, layer_types, names_of_whole, **common
        )
    return _slices(
        name, variable, head_names(heads), views, kernel_view, layer_types, names, **common
    )


def _slices_by_variable(
    obj: Any, gates: tuple[str | None, ...] | None, **common: Any
) -> dict[int, list[GateSlice]]:
    """Slices of each of `obj`'s variables, keyed by the variable's ``id``.

    With `gates` (a recurrent cell), its ``kernel``, ``recurrent_kernel`` and ``bias`` are split
    per gate; an attention layer's projections are split per head; any other variable (a
    peephole, a wrapper's own weight) is one slice.
    """
    roles = {}
    if gates is not None:
        for attr in _RECURRENT_KERNELS:
            variable = getattr(obj, attr, None)
            if variable is not None:
                roles[id(variable)] = attr
    names = _relative_names(obj)
    layer_types = _class_names(obj)
    attention = bool(layer_types & _ATTENTION_TYPES)
    slices = {}
    for variable in obj.weights:
        role = roles.get(id(variable))
        name = names[id(variable)]
        if attention:
            pieces = _attention_slices(name, variable, layer_types, **common)
        elif role is None or gates is None:
            pieces = _gate_slices(name, variable, NO_GATES, None, layer_types, **common)
        elif role == "bias" and len(variable.shape) == 2:
            pieces = [
                piece
                for row, kernel in enumerate(_GRU_BIAS_ROWS)
                for piece in _gate_slices(kernel, variable, gates, row, layer_types, **common)
            ]
        else:
            pieces = _gate_slices(role, variable, gates, None, layer_types, **common)
        slices[id(variable)] = pieces
    return slices


def _split(layer: Any, path: str, order: int) -> list[GateSlice]:
    """All slices of one logged layer, in the order of ``layer.weights``, each kernel numbered
    in that order (`metadata.KernelInfo.kernel_order`).

    Variables that the unwrapped units do not own (a wrapper's own weights, if any) are still
    logged, named relative to the layer, so every weight of the layer appears exactly once.
    """
    common = dict(layer=path, order=order, bidirectional="Bidirectional" in _class_names(layer))
    by_variable = _slices_by_variable(
        layer, None, layer_type=type(layer).__name__, direction="forward", cell=None, **common
    )
    for unit in _units(layer):
        by_variable.update(
            _slices_by_variable(
                unit.obj,
                _cell_gates(unit.obj),
                layer_type=unit.layer_type,
                direction=unit.direction,
                cell=unit.cell,
                **common,
            )
        )
    pieces = [piece for variable in layer.weights for piece in by_variable[id(variable)]]
    positions: dict[tuple, int] = {}
    for piece in pieces:
        positions.setdefault(piece.key, len(positions))
    return [dataclasses.replace(piece, kernel_order=positions[piece.key]) for piece in pieces]


def split_layer(layer: Any) -> list[GateSlice]:
    """Splits one layer (not a model) into gate slices; `layer` is its name, `order` is 0.

    Returns an empty list for a layer without weights (including one not built yet).
    """
    if _is_container(layer):
        raise TypeError(
            f"split_layer() takes a single layer, got the model {layer.name!r}; "
            "use split_model() to split every layer of a model"
        )
    return _split(layer, layer.name, 0)


def _walk(container: Any, prefix: str, ancestors: tuple) -> Iterator[tuple[str, Any, tuple]]:
    """Depth-first (path, layer, enclosing nested models) of the layers below `container`."""
    for layer in container.layers:
        path = f"{prefix}{layer.name}"
        if _is_container(layer):
            yield from _walk(layer, f"{path}/", (*ancestors, (path, layer)))
        else:
            yield path, layer, ancestors


def _matches(entry: str | type, path: str, layer: Any, ancestors: tuple) -> bool:
    """Whether a `layers=` entry selects this layer, directly or through a nested model."""
    if isinstance(entry, str):
        candidates = [(path, layer), *ancestors]
        return any(entry in (name, obj.name) for name, obj in candidates)
    objects = [*_wrapped(layer), *(obj for _, obj in ancestors)]
    return any(isinstance(obj, entry) for obj in objects)


def check_layers(layers: Any) -> list[str | type]:
    """Validates a `layers=` selection (see `split_model`) and returns it as a list; a single
    name or class is taken as a list of one.

    Raises:
      ValueError: naming the bad value and what is allowed.
    """
    if isinstance(layers, (str, type)):
        layers = [layers]
    if not isinstance(layers, Iterable) or isinstance(layers, (bytes, dict)):
        raise ValueError(
            f"layers must be None or a list of layer names and/or layer classes, got {layers!r}"
        )
    entries = list(layers)
    if not entries:
        raise ValueError("layers must be None (every layer) or a non-empty list, got []")
    for entry in entries:
        if not isinstance(entry, (str, type)) or entry == "":
            raise ValueError(
                f"layers entries must be layer names (str) or layer classes, got {entry!r}"
            )
    return entries


def split_model(model: Any, layers: Sequence[str | type] | None = None) -> list[GateSlice]:
    """Splits the layers of `model` into gate slices, walking nested models depth-first.

    Args:
      model: a Keras model (Functional, Sequential or subclassed). Nested models are walked,
        not logged; a layer reached twice (shared) is logged once, under its first path.
      layers: None to log every layer with weights, or a list of entries each selecting layers
        by name (a layer's path such as ``"encoder/lstm"``, or its bare name ``"lstm"``; naming
        a nested model selects all layers in it) or by class (``isinstance`` against the
        layer, the layers and cells it wraps, or a nested model around it, so
        ``keras.layers.LSTM`` selects ``Bidirectional(LSTM(...))``).

    Returns:
      The slices of the selected layers with weights, in depth-first layer order; `order`
      numbers those layers from 0.

    Raises:
      TypeError: `model` is a single layer (use `split_layer`).
      ValueError: `layers` is malformed, or one of its names selects no layer (a typo); a
        class that selects nothing is not an error, so one `layers=` setting fits many models.
    """
    if not _is_container(model):
        raise TypeError(
            f"split_model() takes a Keras model, got {type(model).__name__} "
            f"{getattr(model, 'name', '')!r}; use split_layer() for a single layer"
        )
    entries = None if layers is None else check_layers(layers)
    seen: set[int] = set()
    used: set[int] = set()
    chosen = []
    walked = []
    for path, layer, ancestors in _walk(model, "", ()):
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        walked.append(path)
        if entries is not None:
            hits = {i for i, entry in enumerate(entries) if _matches(entry, path, layer, ancestors)}
            used |= hits
            if not hits:
                continue
        chosen.append((path, layer))
    unmatched = []
    if entries is not None and len(used) < len(entries):
        unmatched = [e for i, e in enumerate(entries) if i not in used and isinstance(e, str)]
    if unmatched:
        raise ValueError(
            f"layers entries {unmatched!r} select no layer of model {model.name!r}; "
            f"its layers are {walked!r}"
        )
    slices: list[GateSlice] = []
    order = 0
    for path, layer in chosen:
        layer_slices = _split(layer, path, order)
        order += bool(layer_slices)
        slices.extend(layer_slices)
    return slices
