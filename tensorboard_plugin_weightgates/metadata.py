"""The on-disk format of weightgates: plugin names, tag scheme, summary content, tensor layouts.

This is the only module that knows how a gate slice is named and laid out in an event file.
Writers (`summary`) and readers (`reader`, the plugin, the command line) both go through it, so
a change of format is a change of `FORMAT_VERSION` here and nowhere else.

Format version 1
----------------
Every record is a tensor summary (`DATA_CLASS_TENSOR`) whose `plugin_data.content` is UTF-8
JSON holding `SliceInfo`'s fields plus `version`, `record`, `kind` and the record's own
parameters. Content is constant per tag: TensorBoard keeps only the first event's metadata.

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

Snapshots live under their own plugin name so that TensorBoard's per-plugin sampling can keep
thousands of small stats records while keeping only a bounded number of large snapshots.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata

PLUGIN_NAME = "weightgates"
SNAPSHOT_PLUGIN_NAME = "weightgates_snapshots"
FORMAT_VERSION = 1

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
dead when every finite value of it has ``|x| <= near_zero``. `update_size` is
``||W_t - W_prev|| / ||W_prev||`` against the previous logged step (NaN at the first logged step
and for gradients)."""

REPORT_COLUMNS = (
    "run",
    "step",
    "layer",
    "cell",
    "direction",
    "kernel",
    "gate",
    "shape",
    "mean",
    "std",
    "l2_norm",
    "near_zero_fraction",
    "units",
    "dead_units",
    "nan_count",
    "inf_count",
    "update_size",
)
"""Columns of `weightgates report` in every format, in order; names as in `STAT_FIELDS`. `shape`
is one gate's shape. Here so that the command line builds its parser without the report's
imports."""

SNAPSHOT_PLANES = ("mean", "max_abs")

DEFAULT_BINS = 30
DEFAULT_SNAPSHOT_MAX_CELLS = 128 * 128

SAMPLES_PER_PLUGIN = {PLUGIN_NAME: 2000, SNAPSHOT_PLUGIN_NAME: 100}
"""What the plugin's loader asks TensorBoard to keep per tag unless the user says otherwise."""


class FormatError(ValueError):
    """Summary content or a tensor that this version of weightgates cannot read."""


@dataclasses.dataclass(frozen=True)
class SliceInfo:
    """Where one gate slice comes from: what a reader needs to place it in the model.

    `order` is the layer's position in the model (depth-first), for listing layers in model
    order. `gates` are all gates of the slice's kernel in storage order and `gate_index` this
    slice's position among them, so a reader can rebuild the whole kernel with its boundaries.
    `shape` is the slice's own shape (one gate).
    """

    layer: str
    layer_type: str
    order: int
    direction: str
    cell: int | None
    kernel: str
    gate: str | None
    gates: tuple[str | None, ...]
    gate_index: int
    shape: tuple[int, ...]

    @property
    def kernel_key(self) -> tuple[str, int | None, str, str]:
        """Identifies the kernel (all its gates) within a run."""
        return (self.layer, self.cell, self.direction, self.kernel)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SliceInfo:
        try:
            return cls(
                layer=str(obj["layer"]),
                layer_type=str(obj["layer_type"]),
                order=int(obj["order"]),
                direction=str(obj["direction"]),
                cell=None if obj["cell"] is None else int(obj["cell"]),
                kernel=str(obj["kernel"]),
                gate=None if obj["gate"] is None else str(obj["gate"]),
                gates=tuple(None if g is None else str(g) for g in obj["gates"]),
                gate_index=int(obj["gate_index"]),
                shape=tuple(int(d) for d in obj["shape"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise FormatError(f"malformed slice description: {error!r}") from error


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
        description=f"{kind} of {info.layer_type} {info.layer}, {info.direction} "
        f"{info.kernel}, gate {info.gate} (written by weightgates)",
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
    if version != FORMAT_VERSION:
        raise FormatError(
            f"format version {version!r} is not supported (this weightgates reads "
            f"version {FORMAT_VERSION}); upgrade tensorboard-plugin-weightgates"
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
            info=SliceInfo.from_json(obj["slice"]),
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
            info=SliceInfo.from_json(obj["slice"]),
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
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (stats_vector_length(bins),):
        raise FormatError(
            f"stats tensor has shape {values.shape}, expected ({stats_vector_length(bins)},)"
        )
    record: dict[str, Any] = {name: float(values[i]) for i, name in enumerate(STAT_FIELDS)}
    record["counts"] = values[len(STAT_FIELDS) :]
    return record


def parse_snapshot_tensor(values: np.ndarray) -> np.ndarray:
    """Checks a snapshot tensor's layout and returns it as float32 ``[2, rows, cols]``."""
    values = np.asarray(values)
    if values.ndim != 3 or values.shape[0] != len(SNAPSHOT_PLANES):
        raise FormatError(f"snapshot tensor has shape {values.shape}, expected [2, rows, cols]")
    return values.astype(np.float32, copy=False)


def histogram_edges(low: float, high: float, bins: int) -> np.ndarray:
    """Bucket edges of a stats record: ``bins + 1`` values from `low` to `high`."""
    return np.linspace(low, high, bins + 1)
