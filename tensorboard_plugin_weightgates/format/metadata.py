"""The on-disk format of weightgates: plugin names, tag scheme, summary content, tensor layouts.

This is the only module that knows how a gate slice is named and laid out in an event file.
Writers (`keras_writer.summary`) and readers (`backend.reader`, the routes, the command line)
both go through it, so
a change of format is a change of `FORMAT_VERSION` here and nowhere else.

Format version 2
----------------
Every record is a tensor summary (`DATA_CLASS_TENSOR`) whose `plugin_data.content` is UTF-8
JSON holding the slice's identity (`SliceInfo`, as ``slice``) plus `version`, `record`, `kind`
and the record's own parameters. Content is constant per tag: TensorBoard keeps only the first
event's metadata.

* ``stats`` (plugin `PLUGIN_NAME`): a float64 vector of ``len(STAT_FIELDS) + bins`` values:
  the scalars of `STAT_FIELDS` in that order, then ``bins`` bucket counts of the finite values
  over ``bins`` equal-width buckets from ``hist_low`` to ``hist_high``.
* ``snapshot`` (plugin `SNAPSHOT_PLUGIN_NAME`): a float32 array ``[2, rows, cols]``: the slice
  as a 2-D matrix (all axes but the last flattened into rows; a vector is one row), reduced by
  ``block = [block_rows, block_cols]`` to at most ``max_cells`` cells. Plane 0 holds each
  block's mean, plane 1 the block's value of largest magnitude (sign kept). Either plane is NaN
  where its block holds a NaN. With ``block == [1, 1]`` both planes equal the values.
* ``histogram`` (TensorBoard's own ``histograms`` plugin, for its Time Series tab): the same
  buckets as ``stats`` in TensorBoard's ``[bins, 3]`` (left edge, right edge, count) layout.

A slice is the view of the variable its writer logs: its gates are equal contiguous blocks of
the view's last axis, and `shape` is one gate's shape in that view, which can differ from the
variable's own layout (`variable_shape`): an attention output kernel ``[heads, head_dim, d_out]``
is logged transposed, as ``[d_out, head_dim]`` per head. `axes` names each axis of `shape`
(`format.axes`), `kernel_order` is the kernel's position in its layer's weights and
`bidirectional` says whether the layer has directions at all.

Version 2 added `axes`, `variable_shape`, `kernel_order` and `bidirectional` to the slice;
readers still read version 1 (weightgates 0.1), whose slices get `kernel_axes` of their layer
type and kernel name, the kernel's shape (the gates side by side) as variable shape, no kernel
order (None: listed by name) and `bidirectional` True only for a ``backward`` slice (a reader
takes a layer as bidirectional when any of its slices is).

Snapshots live under their own plugin name so that TensorBoard's per-plugin sampling can keep
thousands of small stats records while keeping only a bounded number of large snapshots.

Reading untrusted records
-------------------------
Event files come from anywhere (a colleague's run, another weightgates release, a damaged
copy), so the parse functions check everything a reader relies on before it relies on it:
the content's size, JSON types, ranges (no NaN `near_zero`, no ``bins < 1``, a `block` that
fits the slice, a shape whose size fits int64), and each tensor's dtype and exact shape before
anything is allocated from it. Whatever fails is a `FormatError` naming the field, the value
and what is allowed. New fields go through the same checks (`_field`, `_integer`, `_number`,
`_text`, `_array`, `_shape`, `_real_tensor`).

Activation records (gates, states and gradients through time of recurrent layers on a probe
batch) have a section of their own at the end of this module, with their own plugin names and
version (`ACTIVATIONS_FORMAT_VERSION`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata

from tensorboard_plugin_weightgates.format import axes as axis_names
from tensorboard_plugin_weightgates.format.gate_names import NO_GATES

PLUGIN_NAME = "weightgates"
SNAPSHOT_PLUGIN_NAME = "weightgates_snapshots"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""The format versions this weightgates reads: its own, and 0.1's."""

TAG_PREFIX = "weightgates"
KINDS = ("weights", "gradients")
DIRECTIONS = ("forward", "backward")
RECORD_STATS = "stats"
RECORD_SNAPSHOT = "snapshot"

STAT_FIELDS = (
    "count",
    "mean",
    "std",
    "min",
    "max",
    "l2_norm",
    "mean_abs",
    "near_zero_fraction",
    "units",
    "dead_units",
    "nan_count",
    "inf_count",
    "update_size",
    "hist_low",
    "hist_high",
)
"""Scalars of a stats record. `min`, `max`, `mean`, `std`, norms and the histogram range cover
finite values only; `count` is every value. A unit is one index of the slice's last axis; it is
dead when every finite value of it has ``|x| <= near_zero``; readers take `dead_units` as NaN
(not applicable) where `KernelInfo.counts_dead_units` is False, whatever the record holds.
`update_size` is ``||W_t - W_prev|| / ||W_prev||`` against the previous logged step (NaN at the
first logged step and for gradients)."""

SNAPSHOT_PLANES = ("mean", "max_abs")

SAMPLES_PER_PLUGIN = {PLUGIN_NAME: 2000, SNAPSHOT_PLUGIN_NAME: 100}
"""What the plugin's loader asks TensorBoard to keep per tag unless the user says otherwise (the
activation records' plugin names are added in their section below)."""

MAX_CONTENT_BYTES = 1 << 20
"""Largest summary content read; a writer's is well under a kilobyte, and every request parses
every tag's content."""

MAX_RANK = 254
"""Most axes a slice may have: TensorFlow's own limit."""

MAX_BINS = 2**31 - 1 - len(STAT_FIELDS)
"""Most histogram buckets a stats record may declare: its vector's length fits an int32, as
every count TensorFlow's bincount makes does."""

MAX_SIZE = 2**63 - 1
"""Largest element count, vector length or dimension a record may declare: TensorFlow's int64
sizes."""


class FormatError(ValueError):
    """Summary content or a tensor that this version of weightgates cannot read."""


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """Where in a model a record comes from: a layer, and a direction and cell inside it.

    `layer` is the layer's path in the model ("/"-joined names below the root model),
    `layer_type` its class (a generic ``RNN``'s cell class), `order` its depth-first position
    among the logged layers, for listing layers in model order. `direction` is ``forward`` or
    ``backward`` (`DIRECTIONS`; ``forward`` for layers without directions) and `cell` the index
    in ``StackedRNNCells`` (None elsewhere). `bidirectional` is True for a layer with two
    directions (``Bidirectional``), so that readers label directions only there.
    """

    layer: str
    layer_type: str
    order: int
    direction: str
    cell: int | None
    bidirectional: bool


@dataclasses.dataclass(frozen=True)
class KernelInfo(LayerInfo):
    """Which kernel of a layer a record belongs to: the identity writers and readers share.

    A kernel is one variable of the layer (or one row of it, for a ``GRU(reset_after=True)``
    bias), split along its last axis into `gates` in storage order (``(None,)`` for a variable
    without gates; ``head_0``, ``head_1``... for attention heads). `kernel_order` is its
    position among its layer's kernels in the order the layer holds its weights (None in
    records of format version 1). `axes` names the axes of each gate's shape (`format.axes`);
    `variable_shape` is the shape of the variable it comes from, as the framework stores it.
    """

    kernel: str
    gates: tuple[str | None, ...]
    kernel_order: int | None
    axes: tuple[str, ...]
    variable_shape: tuple[int, ...]

    @property
    def key(self) -> tuple[str, int | None, str, str]:
        """Identifies the kernel within a run: (layer, cell, direction, kernel)."""
        return (self.layer, self.cell, self.direction, self.kernel)

    @property
    def gated(self) -> bool:
        return self.gates != NO_GATES

    @property
    def counts_dead_units(self) -> bool:
        """Whether "dead units" means something here: a unit is dead when all its incoming
        weights are near zero, so it needs a row axis of inputs. A bias (named ``bias``,
        ``*_bias`` or ``*/bias``) and any slice with one value per unit (fewer than two axes:
        scales, offsets, moving statistics) have none: a zero bias is normal."""
        name = self.kernel.rsplit("/", 1)[-1]
        return len(self.axes) >= 2 and not (name == "bias" or name.endswith("_bias"))


@dataclasses.dataclass(frozen=True)
class SliceInfo(KernelInfo):
    """One gate slice of a kernel: `gate_index` is its position in `gates`, `shape` its own
    shape (one gate's). Stored in every record's content, so a reader can rebuild the whole
    kernel and its gate boundaries from the slices."""

    gate_index: int
    shape: tuple[int, ...]

    @property
    def gate(self) -> str | None:
        return self.gates[self.gate_index]

    def to_json(self) -> dict[str, Any]:
        """The content's ``slice`` object; `gate` is written too, for readers of the raw
        content (a reader checks it against `gates`)."""
        obj = {field.name: getattr(self, field.name) for field in dataclasses.fields(SliceInfo)}
        for name in ("gates", "shape", "axes", "variable_shape"):
            obj[name] = list(obj[name])
        obj["gate"] = self.gate
        return obj

    @classmethod
    def from_json(cls, obj: Any, version: int = FORMAT_VERSION) -> SliceInfo:
        """Parses and checks a content's ``slice`` object of format `version`
        (`READABLE_VERSIONS`, see `to_json`); fields that version 1 lacks get the defaults of
        the module docstring.

        Raises:
          FormatError: a field is missing, of the wrong JSON type or out of range, or `gate`
            is not ``gates[gate_index]``.
        """
        what = "malformed slice description"
        if not isinstance(obj, dict):
            raise FormatError(f"{what}: not a JSON object but {_show(obj)}")
        gates = _gates(_field(obj, "gates", what), what)
        shape = _shape(_field(obj, "shape", what), "shape", what)
        if gates != NO_GATES and not shape:
            raise FormatError(f"{what}: a slice of gates {list(gates)} needs an axis to split")
        cell = _field(obj, "cell", what)
        common: dict[str, Any] = dict(
            layer=_text(_field(obj, "layer", what), "layer", what),
            layer_type=_text(_field(obj, "layer_type", what), "layer_type", what),
            order=_integer(_field(obj, "order", what), "order", what),
            direction=_choice(_field(obj, "direction", what), "direction", what, DIRECTIONS),
            cell=None if cell is None else _integer(cell, "cell", what),
            kernel=_text(_field(obj, "kernel", what), "kernel", what),
            gates=gates,
            gate_index=_integer(
                _field(obj, "gate_index", what), "gate_index", what, maximum=len(gates) - 1
            ),
            shape=shape,
        )
        added = _version_1_defaults(common) if version == 1 else _added_in_version_2(obj, what)
        info = cls(**common, **added)
        gate = _field(obj, "gate", what)
        if gate != info.gate:
            raise FormatError(
                f"{what}: gate {_show(gate)} is not entry {info.gate_index} of gates "
                f"{_show(list(info.gates))}"
            )
        if len(info.axes) != len(info.shape):
            raise FormatError(
                f"malformed slice description: axes {list(info.axes)} do not name the "
                f"{len(info.shape)} axes of shape {list(info.shape)}"
            )
        return info

    def as_slice_info(self) -> SliceInfo:
        """This slice's identity alone, without what a subclass adds (a writer's variable)."""
        return SliceInfo(
            **{field.name: getattr(self, field.name) for field in dataclasses.fields(SliceInfo)}
        )


def _added_in_version_2(obj: dict[str, Any], what: str) -> dict[str, Any]:
    """The slice fields of format version 2 that version 1 lacks, parsed from `obj`."""
    bidirectional = _field(obj, "bidirectional", what)
    if not isinstance(bidirectional, bool):
        raise FormatError(
            f"{what}: bidirectional must be true or false, got {_show(bidirectional)}"
        )
    axes = _array(_field(obj, "axes", what), "axes", what)
    return dict(
        bidirectional=bidirectional,
        kernel_order=_integer(_field(obj, "kernel_order", what), "kernel_order", what),
        axes=tuple(_text(axis, "axes", what) for axis in axes),
        variable_shape=_shape(_field(obj, "variable_shape", what), "variable_shape", what),
    )


def _version_1_defaults(common: dict[str, Any]) -> dict[str, Any]:
    """What a slice of format version 1 is taken to have instead of the fields of version 2."""
    shape, gates, kernel = common["shape"], common["gates"], common["kernel"]
    variable_shape = shape[:-1] + (shape[-1] * len(gates),) if shape else ()
    if kernel in ("input_bias", "recurrent_bias") and len(shape) == 1:
        variable_shape = (2, *variable_shape)  # a row of a GRU(reset_after=True) bias
    return dict(
        bidirectional=common["direction"] == "backward",
        kernel_order=None,
        axes=axis_names.kernel_axes(kernel, len(shape), {common["layer_type"]}),
        variable_shape=variable_shape,
    )


@dataclasses.dataclass(frozen=True)
class StatsContent:
    info: SliceInfo
    kind: str
    bins: int
    near_zero: float


@dataclasses.dataclass(frozen=True)
class SnapshotContent:
    info: SliceInfo
    kind: str
    max_cells: int
    block: tuple[int, int]


def _path(info: SliceInfo) -> str:
    cell = [] if info.cell is None else [f"cell_{info.cell}"]
    gate = [] if info.gate is None else [info.gate]
    return "/".join([info.layer, info.direction, *cell, info.kernel, *gate])


def stats_tag(info: SliceInfo, kind: str) -> str:
    return f"{TAG_PREFIX}/{RECORD_STATS}/{_check_kind(kind)}/{_path(info)}"


def snapshot_tag(info: SliceInfo, kind: str) -> str:
    return f"{TAG_PREFIX}/{RECORD_SNAPSHOT}/{_check_kind(kind)}/{_path(info)}"


def histogram_tag(info: SliceInfo, kind: str) -> str:
    """Tag of the standard TensorBoard histogram; the kind as second component keeps it apart
    from the stats and snapshot tags, so no tag has two plugins."""
    return f"{TAG_PREFIX}/{_check_kind(kind)}/{_path(info)}"


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def _metadata(plugin_name: str, content: dict[str, Any], description: str):
    return summary_pb2.SummaryMetadata(
        summary_description=description,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=plugin_name,
            content=json.dumps(content, sort_keys=True).encode("utf-8"),
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def create_stats_metadata(
    info: SliceInfo, kind: str, bins: int, near_zero: float
) -> summary_pb2.SummaryMetadata:
    content = {
        "version": FORMAT_VERSION,
        "record": RECORD_STATS,
        "kind": _check_kind(kind),
        "bins": int(bins),
        "near_zero": float(near_zero),
        "slice": info.to_json(),
    }
    return _metadata(PLUGIN_NAME, content, f"weightgates {kind} statistics")


def create_snapshot_metadata(
    info: SliceInfo, kind: str, max_cells: int, block: tuple[int, int]
) -> summary_pb2.SummaryMetadata:
    content = {
        "version": FORMAT_VERSION,
        "record": RECORD_SNAPSHOT,
        "kind": _check_kind(kind),
        "max_cells": int(max_cells),
        "block": [int(block[0]), int(block[1])],
        "slice": info.to_json(),
    }
    return _metadata(SNAPSHOT_PLUGIN_NAME, content, f"weightgates {kind} snapshot")


def create_histogram_metadata(info: SliceInfo, kind: str) -> summary_pb2.SummaryMetadata:
    metadata = histogram_metadata.create_summary_metadata(
        display_name=histogram_tag(info, kind),
        description=f"{kind} of {info.layer_type} {info.layer}, "
        f"{f'{info.direction} ' if info.bidirectional else ''}{info.kernel}, gate {info.gate} "
        "(written by weightgates)",
    )
    metadata.data_class = summary_pb2.DATA_CLASS_TENSOR
    return metadata


def _load_content(content: bytes, record: str) -> dict[str, Any]:
    if len(content) > MAX_CONTENT_BYTES:
        raise FormatError(
            f"summary content of {len(content)} bytes is larger than the {MAX_CONTENT_BYTES} "
            "a weightgates record can have"
        )
    try:
        obj = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        # ValueError: bad JSON, or an integer of more digits than Python converts.
        raise FormatError(f"summary content is not weightgates JSON: {error}") from error
    if not isinstance(obj, dict):
        raise FormatError("summary content is not a JSON object")
    version = obj.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        newer = type(version) is int and version > FORMAT_VERSION
        raise FormatError(
            f"format version {_show(version)} is not supported (this weightgates reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))})"
            + ("; upgrade tensorboard-plugin-weightgates" * newer)
        )
    if obj.get("record") != record:
        raise FormatError(f"expected a {record} record, got {_show(obj.get('record'))}")
    if obj.get("kind") not in KINDS:
        raise FormatError(f"unknown kind {_show(obj.get('kind'))}")
    return obj


def parse_stats_content(content: bytes) -> StatsContent:
    """The content of a stats record.

    Raises:
      FormatError: anything a version-1 writer would not have written (see the module
        docstring): `bins` must be an integer from 1 to `MAX_BINS`, `near_zero` a finite
        number >= 0.
    """
    obj = _load_content(content, RECORD_STATS)
    what = "malformed stats content"
    return StatsContent(
        info=SliceInfo.from_json(_field(obj, "slice", what), obj["version"]),
        kind=obj["kind"],
        bins=_integer(_field(obj, "bins", what), "bins", what, minimum=1, maximum=MAX_BINS),
        near_zero=_number(_field(obj, "near_zero", what), "near_zero", what),
    )


def parse_snapshot_content(content: bytes) -> SnapshotContent:
    """The content of a snapshot record.

    Raises:
      FormatError: anything a version-1 writer would not have written: `max_cells` must be an
        integer >= 1, `block` two integers >= 1 no larger than the slice's matrix
        (`matrix_shape`) that leave at most `max_cells` cells.
    """
    obj = _load_content(content, RECORD_SNAPSHOT)
    what = "malformed snapshot content"
    info = SliceInfo.from_json(_field(obj, "slice", what), obj["version"])
    max_cells = _integer(_field(obj, "max_cells", what), "max_cells", what, minimum=1)
    sides = _array(_field(obj, "block", what), "block", what)
    if len(sides) != 2:
        raise FormatError(f"{what}: block must be [block_rows, block_cols], got {_show(sides)}")
    block = (
        _integer(sides[0], "block", what, minimum=1),
        _integer(sides[1], "block", what, minimum=1),
    )
    parsed = SnapshotContent(info=info, kind=obj["kind"], max_cells=max_cells, block=block)
    rows, cols = matrix_shape(info.shape)
    if block[0] > max(rows, 1) or block[1] > max(cols, 1):
        raise FormatError(
            f"{what}: block {list(block)} is larger than the slice's {rows} x {cols} matrix"
        )
    grid_rows, grid_cols = snapshot_grid(parsed)
    if grid_rows * grid_cols > max_cells:
        raise FormatError(
            f"{what}: block {list(block)} leaves {grid_rows} x {grid_cols} cells, more than "
            f"max_cells {max_cells}"
        )
    return parsed


def stats_vector_length(bins: int) -> int:
    return len(STAT_FIELDS) + bins


def parse_stats_vector(values: Any, bins: int) -> np.ndarray:
    """One stats record's tensor as float64 ``[stats_vector_length(bins)]``: the scalars of
    `STAT_FIELDS`, then the bucket counts.

    Raises:
      FormatError: the tensor is not a vector of real numbers of that length.
    """
    vector = _real_tensor(values, (stats_vector_length(bins),), "stats tensor")
    return vector.astype(np.float64, copy=False)


def parse_stats_tensor(values: Any, bins: int) -> dict[str, Any]:
    """Splits one stats vector into ``{field: float, ..., "counts": ndarray[bins]}``."""
    vector = parse_stats_vector(values, bins)
    record: dict[str, Any] = {name: float(vector[i]) for i, name in enumerate(STAT_FIELDS)}
    record["counts"] = vector[len(STAT_FIELDS) :]
    return record


def matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(rows, cols)`` of a slice read as a matrix: all axes but the last flattened into
    rows; a vector is one row, a scalar 1 x 1."""
    if len(shape) == 0:
        return 1, 1
    return math.prod(shape[:-1]), shape[-1]


def snapshot_grid(content: SnapshotContent) -> tuple[int, int]:
    """``(rows, cols)`` of a snapshot's planes: the slice's matrix in blocks of
    ``content.block`` (the last row and column of blocks may be partial)."""
    rows, cols = matrix_shape(content.info.shape)
    block_rows, block_cols = content.block
    return -(-rows // block_rows), -(-cols // block_cols)


def parse_snapshot_tensor(values: Any, content: SnapshotContent | None = None) -> np.ndarray:
    """Checks a snapshot tensor's layout and returns it as float32 ``[2, rows, cols]``; with
    the record's `content`, ``rows x cols`` must be its `snapshot_grid`.

    Raises:
      FormatError: the tensor is not real numbers of that layout.
    """
    values = np.asarray(values)
    if content is not None:
        expected = (len(SNAPSHOT_PLANES), *snapshot_grid(content))
    elif values.ndim != 3 or values.shape[0] != len(SNAPSHOT_PLANES):
        raise FormatError(f"snapshot tensor has shape {values.shape}, expected [2, rows, cols]")
    else:
        expected = values.shape
    return _real_tensor(values, expected, "snapshot tensor").astype(np.float32, copy=False)


def histogram_edges(low: float, high: float, bins: int) -> np.ndarray:
    """Bucket edges of a stats record: ``bins + 1`` values from `low` to `high`."""
    return np.linspace(low, high, bins + 1)


# Checks of untrusted content. Each raises a FormatError that starts with `what` (the record
# or object being read) and names the field, the value received and what is allowed.


def _field(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj:
        raise FormatError(f"{what}: no {key!r}")
    return obj[key]


def _integer(value: Any, name: str, what: str, minimum: int = 0, maximum: int = MAX_SIZE) -> int:
    """A JSON integer (not a bool or a float) from `minimum` to `maximum`."""
    if type(value) is not int or not minimum <= value <= maximum:
        allowed = f">= {minimum}" if maximum == MAX_SIZE else f"from {minimum} to {maximum}"
        raise FormatError(f"{what}: {name} must be an integer {allowed}, got {_show(value)}")
    return value


def _number(value: Any, name: str, what: str, minimum: float = 0.0) -> float:
    """A finite JSON number (not a bool) >= `minimum`."""
    if type(value) not in (int, float) or not math.isfinite(value) or value < minimum:
        raise FormatError(
            f"{what}: {name} must be a finite number >= {minimum}, got {_show(value)}"
        )
    return float(value)


def _text(value: Any, name: str, what: str) -> str:
    """A non-empty JSON string that is valid Unicode (JSON escapes can encode lone
    surrogates, which no URL or UTF-8 response can carry back)."""
    if not isinstance(value, str) or not value:
        raise FormatError(f"{what}: {name} must be a non-empty string, got {_show(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError(f"{what}: {name} is not valid Unicode: {_show(value)}") from None
    return value


def _choice(value: Any, name: str, what: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise FormatError(f"{what}: {name} must be one of {list(allowed)}, got {_show(value)}")
    return value


def _array(value: Any, name: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise FormatError(f"{what}: {name} must be a JSON array, got {_show(value)}")
    return value


def _shape(value: Any, name: str, what: str) -> tuple[int, ...]:
    """A tensor shape: at most `MAX_RANK` sizes >= 0 whose product fits `MAX_SIZE`."""
    dims = _array(value, name, what)
    if len(dims) > MAX_RANK:
        raise FormatError(f"{what}: {name} has {len(dims)} axes, more than {MAX_RANK}")
    shape = tuple(_integer(d, name, what) for d in dims)
    if math.prod(shape) > MAX_SIZE:
        raise FormatError(f"{what}: {name} {_show(list(shape))} has more than {MAX_SIZE} values")
    return shape


def _gates(value: Any, what: str) -> tuple[str | None, ...]:
    """`NO_GATES`, or distinct gate names."""
    names = _array(value, "gates", what)
    if names == list(NO_GATES):
        return NO_GATES
    if not names:
        raise FormatError(f"{what}: gates must not be empty")
    gates = tuple(_text(name, "gates", what) for name in names)
    if len(set(gates)) != len(gates):
        raise FormatError(f"{what}: gates {_show(list(gates))} name a gate twice")
    return gates


def _real_tensor(values: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """`values` as an array, if it holds real numbers (integers or floats) of `shape`."""
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        raise FormatError(f"{what} has dtype {values.dtype}, expected a real number type")
    if values.shape != shape:
        raise FormatError(f"{what} has shape {values.shape}, expected {shape}")
    return values


def _show(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters: a field of a hostile record can be huge."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -----------------------------------------------------------------------------------------------
# Activations: what recurrent layers compute on a probe batch (format of `keras_writer.activations`)
# -----------------------------------------------------------------------------------------------
#
# Gate activations, cell and hidden states and gradients through time are records of their own,
# under plugin names of their own, so that readers that predate them skip them, and versioned
# apart from the slice records above (`ACTIVATIONS_FORMAT_VERSION`): they describe a direction and
# cell of a layer (`ActivationInfo`, a `LayerInfo`), not a kernel.
#
# Activations format version 1
# ----------------------------
# Every record is a tensor summary whose content is UTF-8 JSON holding ``version``
# (`ACTIVATIONS_FORMAT_VERSION`), ``record`` and ``layer`` (`ActivationInfo.to_json`), plus the
# record's own parameters. A *name* is one of the values a cell computes per timestep, in
# `ActivationInfo.names` order: its gates after their nonlinearity (`gate_names`), then
# ``cell_state`` (LSTM, ConvLSTM) and ``hidden_state``. A *position* is one (sample, timestep)
# of the probe batch (and, for ConvLSTM, one spatial position of the state) that the layer's
# mask does not leave out.
#
# * ``activation_stats`` (plugin `ACTIVATIONS_PLUGIN_NAME`), one tag per name: a float64 vector
#   of ``len(ACTIVATION_STAT_FIELDS) + 3 * units + bins`` values: the scalars of
#   `ACTIVATION_STAT_FIELDS`, then for each field of `ACTIVATION_UNIT_FIELDS` one value per unit,
#   then ``bins`` bucket counts of the finite values from ``hist_low`` to ``hist_high``. Content:
#   ``name``, ``bins`` and ``saturation`` (``{"type": ..., "low": ..., "high": ...}`` or null).
# * ``gradient_norms`` (plugin `ACTIVATIONS_PLUGIN_NAME`), one tag per direction and cell: a
#   float64 vector ``[timesteps]``, at input timestep t the mean over the probe samples not masked
#   at t of ``||dL/dh_t||`` (L2 over units and spatial positions), NaN where every sample is
#   masked. ``dL/dh_t`` is the total derivative of the loss with respect to the hidden state at t:
#   through the layer's output at t and through every later step of the recurrence.
# * ``activation_map`` (plugin `ACTIVATION_MAPS_PLUGIN_NAME`), one tag per name and for
#   ``hidden_state_gradient`` (dL/dh_t): the values of probe sample ``sample`` as a matrix of
#   ``units`` rows (ConvLSTM: ``prod(spatial) * units`` rows, the unit varying fastest) by
#   ``timesteps`` columns, reduced like a weight snapshot (`snapshot`) to float32
#   ``[2, rows, cols]``: block means, then block entries of largest magnitude; masked timesteps
#   are NaN. Content: ``name``, ``sample``, ``max_cells``, ``block``.
# * ``activation_mask`` (plugin `ACTIVATION_MAPS_PLUGIN_NAME`), one tag per direction and cell,
#   written with the maps: float32 ``[cols]``, per stored column of the maps, the fraction of its
#   timesteps that the mask keeps for that sample (all 1 without a mask). Content as the maps'
#   without ``name``.
# * ``histogram`` (TensorBoard's ``histograms`` plugin): the buckets of ``activation_stats``.
#
# Timesteps are input timesteps in every direction: a backward direction's value at t is the one
# it computed when it read input t.

ACTIVATIONS_PLUGIN_NAME = "weightgates_activations"
ACTIVATION_MAPS_PLUGIN_NAME = "weightgates_activation_maps"
ACTIVATIONS_FORMAT_VERSION = 1

SAMPLES_PER_PLUGIN.update({ACTIVATIONS_PLUGIN_NAME: 2000, ACTIVATION_MAPS_PLUGIN_NAME: 100})

ACTIVATIONS = "activations"
"""The kind of the activation records, beside `KINDS` (weights, gradients) of the slices."""

RECORD_ACTIVATION_STATS = "activation_stats"
RECORD_GRADIENT_NORMS = "gradient_norms"
RECORD_ACTIVATION_MAP = "activation_map"
RECORD_ACTIVATION_MASK = "activation_mask"

HIDDEN_STATE = "hidden_state"
CELL_STATE = "cell_state"
HIDDEN_STATE_GRADIENT = "hidden_state_gradient"
"""The map name of dL/dh_t, the gradient of the loss with respect to the hidden state."""

SIGMOID = "sigmoid"
TANH = "tanh"
SATURATION_THRESHOLDS = {SIGMOID: (0.1, 0.9), TANH: (-0.9, 0.9)}
"""Per saturation type, the values below which a value is left-saturated and above which it is
right-saturated (Karpathy, Johnson and Fei-Fei 2015, section 4.2): a sigmoid-type value lies in
(0, 1), a tanh-type value in (-1, 1). Values of other ranges (a cell state) have no saturation."""

SATURATED_UNIT_FRACTION = 0.9
"""A unit counts as left- (right-) saturated when it is so at more than this fraction of its
positions: a unit that practically never switches. Readers' definition, not stored."""

ACTIVATION_STAT_FIELDS = (
    "count",
    "nan_count",
    "inf_count",
    "mean",
    "std",
    "min",
    "max",
    "left_saturated",
    "right_saturated",
    "hist_low",
    "hist_high",
)
"""Scalars of an ``activation_stats`` record, over the name's values at every position: `count`
is their number (positions times units), NaN and Inf included; the others cover the finite
values only. `left_saturated` and `right_saturated` are the fractions below the low and above
the high threshold (NaN for a name without saturation); `std` is the population standard
deviation; `hist_low`/`hist_high` the bucket range (the finite range, widened by 0.5 on each
side when it is a single value; 0 and 0 without finite values)."""

ACTIVATION_UNIT_FIELDS = ("left_saturated", "right_saturated", "mean")
"""Per-unit values of an ``activation_stats`` record: each unit's fraction of left- and
right-saturated values and its mean, over its finite values (NaN for a unit without any, and
the fractions NaN for a name without saturation)."""

_MAX_UNITS = 2**24
MAX_ACTIVATION_BINS = 2**16
"""Most histogram buckets an activation record may declare."""
_MAX_TIMESTEPS = 2**24
_ACTIVATION_TAG_RECORDS = {
    RECORD_ACTIVATION_STATS: "activation_stats",
    RECORD_GRADIENT_NORMS: "activation_gradients",
    RECORD_ACTIVATION_MAP: "activation_maps",
    RECORD_ACTIVATION_MASK: "activation_masks",
}
"""Second tag component per record type; TensorBoard histograms of activations take
``activations``. None of them is a slice record's (`RECORD_STATS`, `RECORD_SNAPSHOT`) or a kind,
so no tag is written by two record types."""


@dataclasses.dataclass(frozen=True)
class ActivationInfo(LayerInfo):
    """One direction and cell of a recurrent layer whose activations are logged: the identity
    every activation record of it carries.

    `names` are the values the cell computes per timestep (gates in storage order, then
    ``cell_state`` where there is one, then ``hidden_state``), `saturations` the saturation type
    of each (`SIGMOID`, `TANH` or None). `units` is the size of the state's last axis, `spatial`
    the state's other axes for ConvLSTM (``()`` otherwise), `timesteps` the probe's length.
    """

    names: tuple[str, ...]
    saturations: tuple[str | None, ...]
    units: int
    spatial: tuple[int, ...]
    timesteps: int

    @property
    def key(self) -> tuple[str, int | None, str]:
        """Identifies the direction and cell within a run: (layer, cell, direction)."""
        return (self.layer, self.cell, self.direction)

    def saturation(self, name: str) -> str | None:
        return self.saturations[self.names.index(name)]

    @property
    def map_shape(self) -> tuple[int, int]:
        """Rows and columns of a map before reduction: units (times spatial positions) by
        timesteps."""
        rows = self.units
        for size in self.spatial:
            rows *= size
        return rows, self.timesteps

    def to_json(self) -> dict[str, Any]:
        obj = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        obj.update(
            names=list(self.names),
            saturations=list(self.saturations),
            spatial=list(self.spatial),
        )
        return obj

    @classmethod
    def from_json(cls, obj: Any) -> ActivationInfo:
        """Raises FormatError for anything but the object `to_json` writes."""
        try:
            if not isinstance(obj, dict):
                raise TypeError("not a JSON object")
            info = cls(
                layer=_checked_field(obj, "layer", _text_field),
                layer_type=_checked_field(obj, "layer_type", _text_field),
                order=_checked_field(obj, "order", _int_field, 0, 2**31),
                direction=_checked_field(obj, "direction", _text_field),
                cell=_checked_field(obj, "cell", _optional_int_field, 0, 2**31),
                bidirectional=_checked_field(obj, "bidirectional", _bool_field),
                names=tuple(_checked_field(obj, "names", _list_of, _text_field)),
                saturations=tuple(
                    _checked_field(obj, "saturations", _list_of, _optional_text_field)
                ),
                units=_checked_field(obj, "units", _int_field, 1, _MAX_UNITS),
                spatial=tuple(_checked_field(obj, "spatial", _list_of, _int_field, 1, _MAX_UNITS)),
                timesteps=_checked_field(obj, "timesteps", _int_field, 1, _MAX_TIMESTEPS),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise FormatError(f"malformed activation layer description: {error!r}") from error
        problem = _activation_info_problem(info)
        if problem:
            raise FormatError(f"malformed activation layer description: {problem}")
        return info


def _activation_info_problem(info: ActivationInfo) -> str | None:
    if info.direction not in DIRECTIONS:
        return f"direction {info.direction!r} is not one of {DIRECTIONS}"
    if not info.names or len(set(info.names)) != len(info.names):
        return f"names {list(info.names)} are empty or repeated"
    if HIDDEN_STATE not in info.names or HIDDEN_STATE_GRADIENT in info.names:
        return f"names {list(info.names)} must hold {HIDDEN_STATE!r}"
    if len(info.saturations) != len(info.names):
        return f"{len(info.saturations)} saturation types for {len(info.names)} names"
    unknown = [s for s in info.saturations if s is not None and s not in SATURATION_THRESHOLDS]
    if unknown:
        return f"unknown saturation types {unknown}"
    rows, cols = info.map_shape
    if rows * cols > 2**40:
        return f"a map of {rows} x {cols} values"
    return None


def _checked_field(obj: dict[str, Any], name: str, check: Callable[..., Any], *args: Any) -> Any:
    """``check(obj[name], *args)``, its errors naming the field."""
    if name not in obj:
        raise KeyError(f"no field {name!r}")
    try:
        return check(obj[name], *args)
    except (TypeError, ValueError) as error:
        raise ValueError(f"field {name!r}: {error}") from None


def _list_of(value: Any, check: Callable[..., Any], *args: Any) -> list:
    return [check(item, *args) for item in _list_field(value)]


def _optional_text_field(value: Any) -> str | None:
    return None if value is None else _text_field(value)


def _optional_int_field(value: Any, low: int, high: int) -> int | None:
    return None if value is None else _int_field(value, low, high)


def _bool_field(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _text_field(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected a non-empty string, got {value!r}")
    return value


def _int_field(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"expected an integer from {low} to {high}, got {value!r}")
    return value


def _number_field(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _list_field(value: Any) -> list:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class ActivationStatsContent:
    info: ActivationInfo
    name: str
    bins: int
    thresholds: tuple[float, float] | None
    """(low, high) saturation thresholds of `name`, or None for a value without saturation."""

    @property
    def vector_length(self) -> int:
        return (
            len(ACTIVATION_STAT_FIELDS) + len(ACTIVATION_UNIT_FIELDS) * self.info.units + self.bins
        )


@dataclasses.dataclass(frozen=True)
class GradientNormsContent:
    info: ActivationInfo


@dataclasses.dataclass(frozen=True)
class ActivationMapContent:
    """A map record's parameters; `name` is None for the mask (``activation_mask``)."""

    info: ActivationInfo
    name: str | None
    sample: int
    max_cells: int
    block: tuple[int, int]

    @property
    def grid(self) -> tuple[int, int]:
        """Rows and columns of the stored (block-reduced) map."""
        rows, cols = self.info.map_shape
        return -(-rows // self.block[0]), -(-cols // self.block[1])


ActivationContent = Union[ActivationStatsContent, GradientNormsContent, ActivationMapContent]


def _activation_tag(record: str, info: ActivationInfo, name: str | None = None) -> str:
    cell = [] if info.cell is None else [f"cell_{info.cell}"]
    tail = [] if name is None else [name]
    parts = [TAG_PREFIX, _ACTIVATION_TAG_RECORDS[record], info.layer, info.direction, *cell]
    return "/".join([*parts, *tail])


def activation_stats_tag(info: ActivationInfo, name: str) -> str:
    return _activation_tag(RECORD_ACTIVATION_STATS, info, name)


def gradient_norms_tag(info: ActivationInfo) -> str:
    return _activation_tag(RECORD_GRADIENT_NORMS, info)


def activation_map_tag(info: ActivationInfo, name: str) -> str:
    return _activation_tag(RECORD_ACTIVATION_MAP, info, name)


def activation_mask_tag(info: ActivationInfo) -> str:
    return _activation_tag(RECORD_ACTIVATION_MASK, info)


def activation_histogram_tag(info: ActivationInfo, name: str) -> str:
    cell = [] if info.cell is None else [f"cell_{info.cell}"]
    return "/".join([TAG_PREFIX, ACTIVATIONS, info.layer, info.direction, *cell, name])


def activation_tag(content: ActivationContent) -> str:
    """The tag a record with this content is written under."""
    if isinstance(content, ActivationStatsContent):
        return activation_stats_tag(content.info, content.name)
    if isinstance(content, GradientNormsContent):
        return gradient_norms_tag(content.info)
    if content.name is None:
        return activation_mask_tag(content.info)
    return activation_map_tag(content.info, content.name)


def _activation_content(record: str, info: ActivationInfo, **params: Any) -> dict[str, Any]:
    return {
        "version": ACTIVATIONS_FORMAT_VERSION,
        "record": record,
        "layer": info.to_json(),
        **params,
    }


def create_activation_stats_metadata(
    info: ActivationInfo, name: str, bins: int
) -> summary_pb2.SummaryMetadata:
    saturation = info.saturation(name)
    thresholds = None
    if saturation is not None:
        low, high = SATURATION_THRESHOLDS[saturation]
        thresholds = {"type": saturation, "low": low, "high": high}
    content = _activation_content(
        RECORD_ACTIVATION_STATS, info, name=name, bins=int(bins), saturation=thresholds
    )
    return _metadata(ACTIVATIONS_PLUGIN_NAME, content, f"weightgates activations of {name}")


def create_gradient_norms_metadata(info: ActivationInfo) -> summary_pb2.SummaryMetadata:
    content = _activation_content(RECORD_GRADIENT_NORMS, info)
    return _metadata(ACTIVATIONS_PLUGIN_NAME, content, "weightgates ||dL/dh_t|| per timestep")


def create_activation_map_metadata(
    info: ActivationInfo, name: str | None, sample: int, max_cells: int, block: tuple[int, int]
) -> summary_pb2.SummaryMetadata:
    """Metadata of a map of `name`, or of the mask (`name` None)."""
    params: dict[str, Any] = {
        "sample": int(sample),
        "max_cells": int(max_cells),
        "block": [int(block[0]), int(block[1])],
    }
    record = RECORD_ACTIVATION_MASK if name is None else RECORD_ACTIVATION_MAP
    if name is not None:
        params["name"] = name
    description = "weightgates probe mask" if name is None else f"weightgates map of {name}"
    return _metadata(
        ACTIVATION_MAPS_PLUGIN_NAME, _activation_content(record, info, **params), description
    )


def create_activation_histogram_metadata(
    info: ActivationInfo, name: str
) -> summary_pb2.SummaryMetadata:
    metadata = histogram_metadata.create_summary_metadata(
        display_name=activation_histogram_tag(info, name),
        description=f"{name} of {info.layer_type} {info.layer}, {info.direction} on the probe "
        "batch (written by weightgates)",
    )
    metadata.data_class = summary_pb2.DATA_CLASS_TENSOR
    return metadata


def parse_activation_content(content: bytes) -> ActivationContent:
    """The content of any activation record (see the format above).

    Raises:
      FormatError: not JSON, another version or record type, or a field that is missing, of the
        wrong type or out of range.
    """
    try:
        obj = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"summary content is not weightgates JSON: {error}") from error
    if not isinstance(obj, dict):
        raise FormatError("summary content is not a JSON object")
    version = obj.get("version")
    if version != ACTIVATIONS_FORMAT_VERSION:
        raise FormatError(
            f"activations format version {version!r} is not supported (this weightgates reads "
            f"version {ACTIVATIONS_FORMAT_VERSION}); upgrade tensorboard-plugin-weightgates"
        )
    record = obj.get("record")
    if record not in _ACTIVATION_TAG_RECORDS:
        raise FormatError(f"unknown activation record {record!r}")
    info = ActivationInfo.from_json(obj.get("layer"))
    try:
        if record == RECORD_ACTIVATION_STATS:
            return _stats_content(obj, info)
        if record == RECORD_GRADIENT_NORMS:
            return GradientNormsContent(info)
        return _map_content(obj, info, record)
    except (KeyError, TypeError, ValueError) as error:
        raise FormatError(f"malformed {record} content: {error!r}") from error


def _stats_content(obj: dict[str, Any], info: ActivationInfo) -> ActivationStatsContent:
    name = _checked_field(obj, "name", _text_field)
    if name not in info.names:
        raise ValueError(f"name {name!r} is not one of {list(info.names)}")
    saturation = obj["saturation"]
    thresholds = None
    if saturation is not None:
        kind = saturation["type"]
        if kind != info.saturation(name):
            raise ValueError(
                f"saturation {kind!r} differs from the layer's {info.saturation(name)!r}"
            )
        thresholds = (_number_field(saturation["low"]), _number_field(saturation["high"]))
    elif info.saturation(name) is not None:
        raise ValueError(f"no saturation for {name!r}, whose type is {info.saturation(name)!r}")
    return ActivationStatsContent(
        info=info,
        name=name,
        bins=_checked_field(obj, "bins", _int_field, 1, MAX_ACTIVATION_BINS),
        thresholds=thresholds,
    )


def _map_content(obj: dict[str, Any], info: ActivationInfo, record: str) -> ActivationMapContent:
    name = None
    if record == RECORD_ACTIVATION_MAP:
        name = _checked_field(obj, "name", _text_field)
        if name not in (*info.names, HIDDEN_STATE_GRADIENT):
            raise ValueError(f"name {name!r} is not one of {[*info.names, HIDDEN_STATE_GRADIENT]}")
    return ActivationMapContent(
        info=info,
        name=name,
        sample=_checked_field(obj, "sample", _int_field, 0, 2**31),
        max_cells=_checked_field(obj, "max_cells", _int_field, 1, 2**40),
        block=_checked_field(obj, "block", _block_field, *info.map_shape),
    )


def _block_field(value: Any, rows: int, cols: int) -> tuple[int, int]:
    items = _list_field(value)
    if len(items) != 2:
        raise ValueError(f"{items!r} is not [rows, cols]")
    return _int_field(items[0], 1, rows), _int_field(items[1], 1, cols)


def parse_activation_stats_series(
    series: Sequence[tuple[int, Any]], content: ActivationStatsContent
) -> np.ndarray:
    """The vectors of one ``activation_stats`` tag's ``(step, values)`` points as float64
    ``[points, content.vector_length]``; every point's layout is checked before the result is
    allocated.

    Raises:
      FormatError: naming the first step whose vector does not have this layout.
    """
    length = content.vector_length
    for step, values in series:
        try:
            _checked_tensor(values, (length,), "activation stats")
        except FormatError as error:
            raise FormatError(f"step {step}: {error}") from None
    vectors = np.empty((len(series), length), dtype=np.float64)
    for row, (_, values) in enumerate(series):
        vectors[row] = np.asarray(values)
    return vectors


def split_activation_stats(
    vectors: np.ndarray, content: ActivationStatsContent
) -> dict[str, np.ndarray]:
    """Views of ``[points, vector_length]`` vectors: ``scalars`` ``[points,
    len(ACTIVATION_STAT_FIELDS)]``, ``units`` ``[points, len(ACTIVATION_UNIT_FIELDS), units]``
    and ``counts`` ``[points, bins]``."""
    scalars = len(ACTIVATION_STAT_FIELDS)
    per_unit = len(ACTIVATION_UNIT_FIELDS) * content.info.units
    return {
        "scalars": vectors[:, :scalars],
        "units": vectors[:, scalars : scalars + per_unit].reshape(
            len(vectors), len(ACTIVATION_UNIT_FIELDS), content.info.units
        ),
        "counts": vectors[:, scalars + per_unit :],
    }


def parse_gradient_norms_series(
    series: Sequence[tuple[int, Any]], content: GradientNormsContent
) -> np.ndarray:
    """The norms of one ``gradient_norms`` tag's points as float64 ``[points, timesteps]``."""
    shape = (content.info.timesteps,)
    for step, values in series:
        try:
            _checked_tensor(values, shape, "gradient norms")
        except FormatError as error:
            raise FormatError(f"step {step}: {error}") from None
    return np.array([np.asarray(values, dtype=np.float64) for _, values in series]).reshape(
        len(series), *shape
    )


def parse_activation_map_tensor(values: Any, content: ActivationMapContent) -> np.ndarray:
    """A map as float32 ``[2, rows, cols]`` (``[cols]`` for a mask), its layout checked against
    `content`."""
    rows, cols = content.grid
    if content.name is None:
        return _checked_tensor(values, (cols,), "activation mask").astype(np.float32, copy=False)
    shape = (len(SNAPSHOT_PLANES), rows, cols)
    return _checked_tensor(values, shape, "activation map").astype(np.float32, copy=False)


def _checked_tensor(values: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        raise FormatError(f"{what} tensor has dtype {values.dtype}, expected a real number type")
    if values.shape != shape:
        raise FormatError(f"{what} tensor has shape {values.shape}, expected {shape}")
    return values
