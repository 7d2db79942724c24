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
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

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
"""What the plugin's loader asks TensorBoard to keep per tag unless the user says otherwise."""


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
    def from_json(cls, obj: dict[str, Any], version: int = FORMAT_VERSION) -> SliceInfo:
        """Parses a content's ``slice`` object of format `version` (`READABLE_VERSIONS`);
        fields that version 1 lacks get the defaults of the module docstring."""
        try:
            common: dict[str, Any] = dict(
                layer=str(obj["layer"]),
                layer_type=str(obj["layer_type"]),
                order=int(obj["order"]),
                direction=str(obj["direction"]),
                cell=None if obj["cell"] is None else int(obj["cell"]),
                kernel=str(obj["kernel"]),
                gates=tuple(None if g is None else str(g) for g in obj["gates"]),
                gate_index=int(obj["gate_index"]),
                shape=tuple(int(d) for d in obj["shape"]),
            )
            gate = obj["gate"]
            added = _version_1_defaults(common) if version == 1 else _added_in_version_2(obj)
        except (KeyError, TypeError, ValueError) as error:
            raise FormatError(f"malformed slice description: {error!r}") from error
        info = cls(**common, **added)
        if not 0 <= info.gate_index < len(info.gates) or gate != info.gate:
            raise FormatError(
                f"malformed slice description: gate {gate!r} is not entry {info.gate_index} "
                f"of gates {list(info.gates)}"
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


def _added_in_version_2(obj: dict[str, Any]) -> dict[str, Any]:
    """The slice fields of format version 2 that version 1 lacks, parsed from `obj`."""
    order = obj["kernel_order"]
    bidirectional = obj["bidirectional"]
    if not isinstance(bidirectional, bool):
        raise ValueError(f"bidirectional must be true or false, got {bidirectional!r}")
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(f"kernel_order must be an integer >= 0, got {order!r}")
    axes = obj["axes"]
    if not isinstance(axes, list) or not all(isinstance(a, str) and a for a in axes):
        raise ValueError(f"axes must be a list of names, got {axes!r}")
    variable_shape = obj["variable_shape"]
    if not isinstance(variable_shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in variable_shape
    ):
        raise ValueError(f"variable_shape must be a list of sizes, got {variable_shape!r}")
    return dict(
        bidirectional=bidirectional,
        kernel_order=order,
        axes=tuple(axes),
        variable_shape=tuple(variable_shape),
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
    try:
        obj = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"summary content is not weightgates JSON: {error}") from error
    if not isinstance(obj, dict):
        raise FormatError("summary content is not a JSON object")
    version = obj.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise FormatError(
            f"format version {version!r} is not supported (this weightgates reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}); upgrade "
            "tensorboard-plugin-weightgates"
        )
    if obj.get("record") != record:
        raise FormatError(f"expected a {record} record, got {obj.get('record')!r}")
    if obj.get("kind") not in KINDS:
        raise FormatError(f"unknown kind {obj.get('kind')!r}")
    return obj


def parse_stats_content(content: bytes) -> StatsContent:
    obj = _load_content(content, RECORD_STATS)
    try:
        return StatsContent(
            info=SliceInfo.from_json(obj["slice"], obj["version"]),
            kind=obj["kind"],
            bins=int(obj["bins"]),
            near_zero=float(obj["near_zero"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise FormatError(f"malformed stats content: {error!r}") from error


def parse_snapshot_content(content: bytes) -> SnapshotContent:
    obj = _load_content(content, RECORD_SNAPSHOT)
    try:
        return SnapshotContent(
            info=SliceInfo.from_json(obj["slice"], obj["version"]),
            kind=obj["kind"],
            max_cells=int(obj["max_cells"]),
            block=(int(obj["block"][0]), int(obj["block"][1])),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise FormatError(f"malformed snapshot content: {error!r}") from error


def stats_vector_length(bins: int) -> int:
    return len(STAT_FIELDS) + bins


def parse_stats_tensor(values: np.ndarray, bins: int) -> dict[str, Any]:
    """Splits one stats vector into ``{field: float, ..., "counts": ndarray[bins]}``."""
    vector = _stats_vector(values, stats_vector_length(bins))
    record: dict[str, Any] = {name: float(vector[i]) for i, name in enumerate(STAT_FIELDS)}
    record["counts"] = vector[len(STAT_FIELDS) :]
    return record


def parse_stats_series(series: Sequence[tuple[int, np.ndarray]], bins: int) -> np.ndarray:
    """The stats vectors of one tag's ``(step, values)`` points as float64 ``[points,
    stats_vector_length(bins)]``: the scalars of `STAT_FIELDS`, then the bucket counts.

    Raises:
      FormatError: naming the first step whose vector does not have this layout.
    """
    length = stats_vector_length(bins)
    vectors = np.empty((len(series), length), dtype=np.float64)
    for row, (step, values) in enumerate(series):
        try:
            vectors[row] = _stats_vector(values, length)
        except FormatError as error:
            raise FormatError(f"step {step}: {error}") from None
    return vectors


def _stats_vector(values: Any, length: int) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        raise FormatError(f"stats tensor has dtype {values.dtype}, expected a real number type")
    if values.shape != (length,):
        raise FormatError(f"stats tensor has shape {values.shape}, expected ({length},)")
    return values.astype(np.float64, copy=False)


def parse_snapshot_tensor(values: np.ndarray) -> np.ndarray:
    """Checks a snapshot tensor's layout and returns it as float32 ``[2, rows, cols]``."""
    values = np.asarray(values)
    if values.ndim != 3 or values.shape[0] != len(SNAPSHOT_PLANES):
        raise FormatError(f"snapshot tensor has shape {values.shape}, expected [2, rows, cols]")
    return values.astype(np.float32, copy=False)


def histogram_edges(low: float, high: float, bins: int) -> np.ndarray:
    """Bucket edges of a stats record: ``bins + 1`` values from `low` to `high`."""
    return np.linspace(low, high, bins + 1)
