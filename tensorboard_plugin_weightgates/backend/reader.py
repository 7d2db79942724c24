"""Reading weightgates records back through a TensorBoard data provider.

Functions here take a `tensorboard.data.provider.DataProvider`, a request context and an
experiment id, and return plain records: the plugin's routes turn them into HTTP responses and
the command line into reports, so nothing here knows about either. Tags and summary content are
parsed through `metadata`; nothing here imports TensorFlow.

A kernel (one variable of a layer, one direction) is stored as one tag per gate and per record
type (statistics, snapshot) and kind (weights, gradients). `list_kernels` groups the tags back
into kernels; `read_index` adds the logged steps; `read_stats` and `read_snapshot` read one
kernel's values.

Event files are untrusted input. Every content and every value is checked through `metadata`
before it is used; what this version cannot read is skipped and reported (a tag in
`Listing.errors`, a step in `Index.errors` and `KernelStats.errors`), so one bad record, tag or
run never hides the others. A step written twice (a run interrupted and resumed) is read as
TensorBoard's data server reads it: a record at or below an earlier step replaces the records
written before it from that step on, so the last record of a step wins, with either loader.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import logging
import math
import threading
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np
from tensorboard.data import provider as provider_lib

from tensorboard_plugin_weightgates.format import metadata

logger = logging.getLogger(__name__)

READ_ALL = 2**31 - 1
"""Downsampling bound for reads: more points than TensorBoard ever keeps per time series, so a
read returns every kept step (TensorBoard's sampling is set by the loader, not by reads)."""

KernelKey = tuple[str, Union[int, None], str, str]
"""(layer, cell, direction, kernel): identifies a kernel within a run, as
`metadata.KernelInfo.key`."""

Content = Union[metadata.StatsContent, metadata.SnapshotContent]

_KERNEL_ORDER = (
    "kernel",
    "recurrent_kernel",
    "bias",
    "input_bias",
    "recurrent_bias",
    *(f"{part}/{role}" for part in ("query", "key", "value") for role in ("kernel", "bias")),
    "attention_output/kernel",
    "attention_output/bias",
    "embeddings",
    "gamma",
    "beta",
    "moving_mean",
    "moving_variance",
)
"""Keras' storage order of its usual variables, to list the kernels of format version 1 records,
which do not say their position (`metadata.KernelInfo.kernel_order`); others follow by name."""


def _stats_values(content: Content, values: Any) -> np.ndarray:
    return metadata.parse_stats_vector(values, typing.cast(metadata.StatsContent, content).bins)


def _snapshot_values(content: Content, values: Any) -> np.ndarray:
    return metadata.parse_snapshot_tensor(values, typing.cast(metadata.SnapshotContent, content))


_RECORD_TYPES: dict[
    str, tuple[str, Callable[[bytes], Content], Callable[[Content, Any], np.ndarray]]
] = {
    metadata.RECORD_STATS: (metadata.PLUGIN_NAME, metadata.parse_stats_content, _stats_values),
    metadata.RECORD_SNAPSHOT: (
        metadata.SNAPSHOT_PLUGIN_NAME,
        metadata.parse_snapshot_content,
        _snapshot_values,
    ),
}
"""Plugin name, content parser and value parser (a record's tensor, checked against its
content) of each record type."""

_RECORD_NAMES = {metadata.RECORD_STATS: "statistics", metadata.RECORD_SNAPSHOT: "snapshots"}

_MAX_REASONS = 10
"""Most distinct reasons an error text lists; a hostile run can have a reason per tag."""
_DEAD_UNITS = metadata.STAT_FIELDS.index("dead_units")

_READ_BUDGET_BYTES = 64 * 2**20
"""Most bytes of values the index asks for in one read, estimated from the records' layout
and the sampling the loader asks for: TensorBoard's data server answers a read in one gRPC
message of at most 256 MiB, and the multiplexer converts a read's values all at once."""


class NotFoundError(LookupError):
    """The run, kernel, kind, gate or step asked for has no readable data."""


@dataclasses.dataclass(frozen=True)
class Records:
    """The tags of one kind of one record type (statistics or snapshots) of a kernel.

    `tags`, `contents` and `fingerprints` have one entry per gate, in gate order. A fingerprint
    is the series' ``(max_step, max_wall_time)`` as listed: it changes whenever the series does.
    """

    kind: str
    tags: tuple[str, ...]
    contents: tuple[Content, ...]
    fingerprints: tuple[tuple[int, float], ...]


@dataclasses.dataclass(frozen=True)
class Kernel(metadata.KernelInfo):
    """One kernel of one run (its identity, `metadata.KernelInfo`) and the tags that hold its
    records.

    `gate_shapes` are the shapes of the gate slices, which split the kernel's last axis in
    `gates` order. `stats` and `snapshots` map a kind to its records; a kind without records
    of a type is absent.
    """

    run: str
    gate_shapes: tuple[tuple[int, ...], ...]
    stats: Mapping[str, Records]
    snapshots: Mapping[str, Records]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in metadata.KINDS if k in self.stats or k in self.snapshots)

    @property
    def gate_boundaries(self) -> tuple[int, ...]:
        """Offsets of the gates along the kernel's last axis (``len(gates) + 1`` values)."""
        return _offsets(_columns(s) for s in self.gate_shapes)

    @property
    def shape(self) -> tuple[int, ...]:
        """The whole kernel's shape: the gates side by side along the last axis."""
        first = self.gate_shapes[0]
        if not first:
            return first
        return first[:-1] + (self.gate_boundaries[-1],)


@dataclasses.dataclass(frozen=True)
class Listing:
    """The kernels of every run (`kernels[run][key]`) found in tags of the record types
    `records`, and per run what could not be read."""

    kernels: Mapping[str, Mapping[KernelKey, Kernel]]
    errors: Mapping[str, str]
    records: tuple[str, ...]

    def kernel(self, run: str, key: KernelKey) -> Kernel:
        what = _RECORD_NAMES[self.records[0]] if len(self.records) == 1 else "records"
        if run not in self.kernels:
            raise NotFoundError(f"run {run!r} has no weightgates {what}")
        kernel = self.kernels[run].get(key)
        if kernel is None:
            layer, cell, direction, name = key
            cell_text = "" if cell is None else f" cell {cell}"
            raise NotFoundError(
                f"run {run!r} has no {what} of kernel {name!r} in direction {direction!r} of "
                f"layer {layer!r}{cell_text}"
            )
        return kernel


@dataclasses.dataclass(frozen=True)
class KindSteps:
    """Steps of one kind of a kernel: those of its first gate (all gates of a kernel are
    written at the same steps)."""

    stats_steps: tuple[int, ...]
    snapshot_steps: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class IndexedKernel:
    kernel: Kernel
    steps: Mapping[str, KindSteps]


@dataclasses.dataclass(frozen=True)
class Index:
    """Every run's kernels in model order with their readable steps; a kind without any is
    absent from `IndexedKernel.steps`, a kernel without any kind and a run without any kernel
    are absent too. `errors` says per run what was skipped and why: tags whose content cannot
    be read, and steps of the first gates (the ones the index reads) whose values cannot."""

    runs: Mapping[str, tuple[IndexedKernel, ...]]
    errors: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class GateStats:
    """One gate's statistics over its logged steps.

    `values` is float64 ``[steps, len(metadata.STAT_FIELDS)]``, `counts` float64
    ``[steps, bins]``: bucket counts between the ``hist_low`` and ``hist_high`` values.
    ``dead_units`` is NaN for a kernel without dead units to count (a bias: see
    `metadata.KernelInfo.counts_dead_units`).
    """

    gate: str | None
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray
    counts: np.ndarray


@dataclasses.dataclass(frozen=True)
class KernelStats:
    """Statistics of the gates asked for; `errors` says which steps (or whole gates) were
    skipped because their values cannot be read."""

    kernel: Kernel
    kind: str
    bins: int
    near_zero: float
    gates: tuple[GateStats, ...]
    errors: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class KernelSnapshot:
    """A kernel's snapshot at `step`: all gates side by side.

    `values` is float32 ``[len(metadata.SNAPSHOT_PLANES), rows, cols]``; `block` is the size in
    original rows and columns of the block each cell stands for; `gate_boundaries` are gate
    offsets in stored columns. `steps` are the steps that have a snapshot of every gate.
    """

    kernel: Kernel
    kind: str
    step: int
    steps: tuple[int, ...]
    block: tuple[int, int]
    values: np.ndarray
    gate_boundaries: tuple[int, ...]


SeriesSteps = tuple[tuple[int, ...], Union[str, None]]
"""A series' readable steps, ascending, and why others were skipped (None when none were)."""


class StepCache:
    """Remembers the steps of time series until the data provider lists a newer point.

    Reading a series' steps means reading its values too (the data provider has no cheaper
    call); the index needs the steps on every request, so this keeps them, and what was
    skipped, while the series' fingerprint (`Records.fingerprints`) is unchanged. Safe to share
    between request threads.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], tuple[Any, SeriesSteps]] = {}

    def get(self, key: tuple[str, str, str], fingerprint: Any) -> SeriesSteps | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] != fingerprint:
            return None
        return entry[1]

    def put(self, key: tuple[str, str, str], fingerprint: Any, steps: SeriesSteps) -> None:
        with self._lock:
            self._entries[key] = (fingerprint, steps)


def list_kernels(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    run: str | None = None,
    records: Sequence[str] = (metadata.RECORD_STATS, metadata.RECORD_SNAPSHOT),
) -> Listing:
    """Groups the weightgates tags of every run (or of `run` only) into kernels.

    Reads only the tags' metadata, not their values, and only of the record types in
    `records` (`metadata.RECORD_STATS`, `metadata.RECORD_SNAPSHOT`): each type is one call to
    the data provider. A tag whose content this version cannot parse, and a kernel whose
    records miss gates or disagree on its shape, are skipped and described in
    `Listing.errors`.
    """
    run_tag_filter = None if run is None else provider_lib.RunTagFilter(runs=[run])
    builder = _ListingBuilder(tuple(records))
    for record in records:
        plugin_name, parse, _ = _RECORD_TYPES[record]
        listed = data_provider.list_tensors(
            ctx,
            experiment_id=experiment_id,
            plugin_name=plugin_name,
            run_tag_filter=run_tag_filter,
        )
        for run_name, series_by_tag in listed.items():
            for tag, series in series_by_tag.items():
                try:
                    content = _parse_tag(tag, series.plugin_content, parse)
                except metadata.FormatError as error:
                    builder.skip(run_name, str(error), tag)
                    continue
                builder.add(run_name, tag, content, (series.max_step, series.max_wall_time))
    return builder.build()


def read_index(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    cache: StepCache | None = None,
) -> Index:
    """Every run's kernels in model order, with the readable steps logged per kind.

    What cannot be read is left out and described in `Index.errors` (see `Index`).
    """
    listing = list_kernels(data_provider, ctx, experiment_id)
    errors = dict(listing.errors)
    runs = {}
    for run, kernels in listing.kernels.items():
        ordered = sorted(kernels.values(), key=_model_order)
        try:
            steps, problems = _read_run_steps(
                data_provider, ctx, experiment_id, run, ordered, cache
            )
        except Exception as error:  # A run that fails to read must not hide the others.
            logger.warning("weightgates: reading the steps of run %r failed", run, exc_info=True)
            errors[run] = _join(errors.get(run), f"could not read its steps: {error}")
            continue
        if problems:
            errors[run] = _join(errors.get(run), _error_text(problems))
        entries = []
        for kernel, by_kind in zip(ordered, steps):
            readable = {k: s for k, s in by_kind.items() if s.stats_steps or s.snapshot_steps}
            if readable:
                entries.append(IndexedKernel(kernel, readable))
        if entries:
            runs[run] = tuple(entries)
    return Index(runs=runs, errors=errors)


def read_stats(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    kernel: Kernel,
    kind: str,
    gate: str | None = None,
) -> KernelStats:
    """Statistics of every gate of `kernel` (or of `gate` only) for `kind`, at every kept step
    whose values can be read (the last record written of each step).

    A step whose vector does not have the layout its content describes, and a gate that
    TensorBoard cannot read at all, are left out and described in `KernelStats.errors`.

    Raises:
      NotFoundError: `kernel` has no statistics of `kind`, or no gate `gate`.
      metadata.FormatError: the gates' contents disagree on the histogram bins or `near_zero`.
    """
    records = _records(kernel, kernel.stats, kind, _RECORD_NAMES[metadata.RECORD_STATS])
    indices = _gate_indices(kernel, gate)
    contents = [typing.cast(metadata.StatsContent, records.contents[i]) for i in indices]
    bins = _common(kernel, kind, "histogram bins", [c.bins for c in contents])
    near_zero = _common(kernel, kind, "near_zero", [c.near_zero for c in contents])
    tags = [records.tags[i] for i in indices]
    read = _read_tags(data_provider, ctx, experiment_id, metadata.PLUGIN_NAME, kernel.run, tags)
    series = [_series(tag, read[tag], contents[n]) for n, tag in enumerate(tags)]
    gates = tuple(_gate_stats(kernel, i, s, bins) for i, s in zip(indices, series))
    errors = tuple(s.problem for s in series if s.problem)
    return KernelStats(
        kernel=kernel, kind=kind, bins=bins, near_zero=near_zero, gates=gates, errors=errors
    )


def read_snapshot(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    kernel: Kernel,
    kind: str,
    step: int | None = None,
) -> KernelSnapshot:
    """The snapshot of `kernel` for `kind` at `step` (default: the latest step that has a
    readable snapshot of every gate).

    Reads one gate at a time and keeps only the wanted step's values, so a request holds at
    most one gate's series in memory.

    Raises:
      NotFoundError: no snapshots of `kind`, or none of every gate at `step`.
      metadata.FormatError: a gate's snapshot at `step` cannot be read, or TensorBoard cannot
        read a gate's snapshots at all.
    """
    records = _records(kernel, kernel.snapshots, kind, _RECORD_NAMES[metadata.RECORD_SNAPSHOT])
    contents = [typing.cast(metadata.SnapshotContent, c) for c in records.contents]
    block = _common(kernel, kind, "snapshot block", [c.block for c in contents])
    read = functools.partial(_read_gate_snapshots, data_provider, ctx, experiment_id, kernel.run)
    steps, data = read(records, step)
    if not steps:
        raise NotFoundError(
            f"{kind} of kernel {kernel.kernel!r} of layer {kernel.layer!r} have no step with "
            "a readable snapshot of every gate"
        )
    if step is None:
        step = steps[-1]
        if any(datum is None or datum[0] != step for datum in data):
            # The gates' latest steps differ (a step still being written): read the latest
            # step they share.
            _, data = read(records, step)
    elif step not in steps:
        raise NotFoundError(
            f"{kind} of kernel {kernel.kernel!r} of layer {kernel.layer!r} have no snapshot at "
            f"step {step}; they have {len(steps)} snapshot steps from {steps[0]} to {steps[-1]}"
        )
    arrays = [datum[1] for datum in data if datum is not None]
    if len(arrays) < len(data):
        # TensorBoard's sampling replaced the step between two reads (live training).
        raise NotFoundError(
            f"{kind} snapshot of kernel {kernel.kernel!r} at step {step} was just replaced by "
            "newer data; reload"
        )
    return KernelSnapshot(
        kernel=kernel,
        kind=kind,
        step=step,
        steps=steps,
        block=block,
        values=np.concatenate(arrays, axis=2),
        gate_boundaries=_offsets(a.shape[2] for a in arrays),
    )


def _read_gate_snapshots(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    run: str,
    records: Records,
    step: int | None,
) -> tuple[tuple[int, ...], list[tuple[int, np.ndarray] | None]]:
    """Steps at which every gate has a readable snapshot, and per gate its ``(step, values)``
    at `step` (default: its own latest readable step), or None where it has none there.

    Raises:
      metadata.FormatError: a gate's record at `step` cannot be read, or TensorBoard cannot
        read a gate's records at all.
    """
    shared: set[int] | None = None
    data: list[tuple[int, np.ndarray] | None] = []
    plugin_name = metadata.SNAPSHOT_PLUGIN_NAME
    for tag, content in zip(records.tags, records.contents):
        points = _read_tags(data_provider, ctx, experiment_id, plugin_name, run, [tag])[tag]
        series = _series(tag, points, content)
        if series.unreadable or step in series.skipped:
            raise metadata.FormatError(typing.cast(str, series.problem))
        by_step = {point[0]: point[2] for point in series.points}
        shared = set(by_step) if shared is None else shared & set(by_step)
        chosen = step if step is not None else max(by_step, default=None)
        data.append(None if chosen not in by_step else (chosen, by_step[chosen]))
    return tuple(sorted(shared or ())), data


def _read_tags(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    plugin_name: str,
    run: str,
    tags: Sequence[str],
) -> dict[str, list[provider_lib.TensorDatum] | str]:
    """Every kept point of each of `tags`, in the order written, or why TensorBoard could not
    read the tag.

    TensorBoard turns every point of a read into NumPy at once, so one record it cannot convert
    (a dtype without a NumPy type, bytes that do not fill the declared shape, a declared size
    beyond memory) fails the whole read: then the tags are read one at a time, and only those
    that fail are lost.
    """
    try:
        read = data_provider.read_tensors(
            ctx,
            experiment_id=experiment_id,
            plugin_name=plugin_name,
            downsample=READ_ALL,
            run_tag_filter=provider_lib.RunTagFilter(runs=[run], tags=tags),
        ).get(run, {})
    except Exception as error:  # KeyError, ValueError, MemoryError...: as the record goes.
        if len(tags) > 1:
            result: dict[str, list[provider_lib.TensorDatum] | str] = {}
            for tag in tags:
                result.update(
                    _read_tags(data_provider, ctx, experiment_id, plugin_name, run, [tag])
                )
            return result
        logger.warning(
            "weightgates: TensorBoard could not read tag %r of run %r", tags[0], run, exc_info=True
        )
        return {tags[0]: f"TensorBoard could not read its values ({type(error).__name__}: {error})"}
    return {tag: read.get(tag, []) for tag in tags}


@dataclasses.dataclass(frozen=True)
class _Series:
    """One tag's points as the reader serves them: `points` are ``(step, wall_time, values)``,
    one per step in ascending order, each value checked against the tag's content. `skipped`
    maps a step whose values cannot be read to why; `unreadable` says why TensorBoard could not
    read the tag at all (then there are no points)."""

    tag: str
    points: tuple[tuple[int, float, np.ndarray], ...]
    skipped: Mapping[int, str]
    unreadable: str | None = None

    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(point[0] for point in self.points)

    @property
    def problem(self) -> str | None:
        """What was skipped, for an error text; None when nothing was."""
        if self.unreadable:
            return f"skipped tag {self.tag!r}: {self.unreadable}"
        if not self.skipped:
            return None
        first = min(self.skipped)
        if len(self.skipped) == 1:
            return f"skipped step {first} of tag {self.tag!r}: {self.skipped[first]}"
        return (
            f"skipped {len(self.skipped)} steps of tag {self.tag!r} "
            f"({_few(sorted(self.skipped))}); step {first}: {self.skipped[first]}"
        )


def _series(tag: str, points: list[provider_lib.TensorDatum] | str, content: Content) -> _Series:
    """The points of `tag` that `_read_tags` returned, reduced to the last written of each
    step (`_last_written`), each checked against `content`."""
    if isinstance(points, str):
        return _Series(tag, (), {}, unreadable=points)
    _, _, parse = _RECORD_TYPES[_record_of(content)]
    kept = []
    skipped = {}
    for datum in _last_written(points):
        try:
            kept.append((datum.step, datum.wall_time, parse(content, datum.numpy)))
        except metadata.FormatError as error:
            skipped[datum.step] = str(error)
    return _Series(tag, tuple(kept), skipped)


def _read_series(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    plugin_name: str,
    run: str,
    tag: str,
) -> list[provider_lib.TensorDatum]:
    """The points of one tag, one per step (`_last_written`), for readers that parse each
    point themselves.

    Raises:
      metadata.FormatError: TensorBoard cannot read the tag's records.
    """
    points = _read_tags(data_provider, ctx, experiment_id, plugin_name, run, [tag])[tag]
    if isinstance(points, str):
        raise metadata.FormatError(f"tag {tag!r}: {points}")
    return _last_written(points)


def _last_written(points: Iterable[provider_lib.TensorDatum]) -> list[provider_lib.TensorDatum]:
    """`points` (in the order written) with one point per step, ascending: a point whose step
    is at or below an earlier one's replaces the points written before it from that step on,
    as TensorBoard's data server does (a run resumed from an earlier step, or a step written
    again after an interrupt). The multiplexer keeps every point; this makes both agree."""
    kept: list[provider_lib.TensorDatum] = []
    for datum in points:
        while kept and kept[-1].step >= datum.step:
            kept.pop()
        kept.append(datum)
    return kept


def _parse_tag(tag: str, content: bytes, parse: Callable[[bytes], Content]) -> Content:
    parsed = parse(content)
    record_tag = (
        metadata.stats_tag if isinstance(parsed, metadata.StatsContent) else metadata.snapshot_tag
    )
    if tag != record_tag(parsed.info, parsed.kind):
        raise metadata.FormatError("the tag does not match the slice its content describes")
    return parsed


def _record_of(content: Content) -> str:
    if isinstance(content, metadata.StatsContent):
        return metadata.RECORD_STATS
    return metadata.RECORD_SNAPSHOT


class _ListingBuilder:
    """Collects tags per (run, kernel, record type, kind), then checks each group."""

    def __init__(self, records: tuple[str, ...]):
        self._records = records
        self._groups: dict[tuple, dict[int, list[tuple[str, Content, tuple[int, float]]]]] = {}
        self._skipped: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)

    def add(self, run: str, tag: str, content: Content, fingerprint: tuple[int, float]) -> None:
        key = (run, content.info.key, _record_of(content), content.kind)
        group = self._groups.setdefault(key, {})
        group.setdefault(content.info.gate_index, []).append((tag, content, fingerprint))

    def skip(self, run: str, reason: str, tag: str) -> None:
        self._skipped[run].setdefault(reason, []).append(tag)

    def build(self) -> Listing:
        kernels: dict[str, dict[KernelKey, Kernel]] = {}
        for (run, key, record, kind), group in self._groups.items():
            entries = [group[i][0] for i in sorted(group)]
            tags = [tag for tag, _, _ in entries]
            infos = [content.info for _, content, _ in entries]
            problem = _group_problem(infos, group)
            if problem:
                self.skip(run, f"{record} of {kind} of {_describe(infos[0])}: {problem}", tags[0])
                continue
            records = Records(
                kind=kind,
                tags=tuple(tags),
                contents=tuple(content for _, content, _ in entries),
                fingerprints=tuple(fingerprint for _, _, fingerprint in entries),
            )
            kernel = kernels.get(run, {}).get(key) or _new_kernel(run, infos)
            if (kernel.gates, kernel.gate_shapes) != (infos[0].gates, _shapes(infos)):
                self.skip(
                    run,
                    f"{record} of {kind} of {_describe(infos[0])}: gates or shapes differ from "
                    "the kernel's other records",
                    tags[0],
                )
                continue
            if record == metadata.RECORD_STATS:
                kernel = dataclasses.replace(kernel, stats={**kernel.stats, kind: records})
            else:
                kernel = dataclasses.replace(kernel, snapshots={**kernel.snapshots, kind: records})
            kernels.setdefault(run, {})[key] = kernel
        errors = {run: _skipped_text(reasons) for run, reasons in self._skipped.items()}
        for by_key in kernels.values():
            _mark_bidirectional(by_key)
        return Listing(kernels=kernels, errors=errors, records=self._records)


def _mark_bidirectional(kernels: dict[KernelKey, Kernel]) -> None:
    """Makes every kernel of a layer with a backward direction `bidirectional`: records of
    format version 1 do not say so, except by that direction."""
    layers = {k.layer for k in kernels.values() if k.bidirectional or k.direction == "backward"}
    for key, kernel in kernels.items():
        if kernel.layer in layers and not kernel.bidirectional:
            kernels[key] = dataclasses.replace(kernel, bidirectional=True)


def _group_problem(
    infos: Sequence[metadata.SliceInfo], group: Mapping[int, Sequence[tuple]]
) -> str | None:
    """Why the gate slices of one kernel (`infos`, one per gate index of `group`) cannot be
    put back together, or None."""
    first = infos[0]
    claimed = [index for index in sorted(group) if len(group[index]) > 1]
    if claimed:
        tags = [tag for tag, _, _ in group[claimed[0]]]
        return f"tags {_few(tags)} all describe gate {first.gates[claimed[0]]!r}"
    missing = [gate for i, gate in enumerate(first.gates) if i not in group]
    if missing or len(group) != len(first.gates):
        return f"no readable records of gates {_few(missing)}" if missing else "unexpected gates"
    for info in infos:
        if _kernel_identity(info) != _kernel_identity(first) or (
            info.gate != first.gates[info.gate_index]
        ):
            return "its gates describe different layers"
        if info.shape[:-1] != first.shape[:-1] or len(info.shape) != len(first.shape):
            return f"gate shapes {_few([list(i.shape) for i in infos])} do not fit side by side"
    return None


def _kernel_identity(info: metadata.SliceInfo) -> tuple:
    """What every gate of one kernel shares, besides its key."""
    return (
        info.layer_type,
        info.order,
        info.bidirectional,
        info.gates,
        info.kernel_order,
        info.axes,
        info.variable_shape,
    )


def _new_kernel(run: str, infos: Sequence[metadata.SliceInfo]) -> Kernel:
    identity = {f.name: getattr(infos[0], f.name) for f in dataclasses.fields(metadata.KernelInfo)}
    return Kernel(**identity, run=run, gate_shapes=_shapes(infos), stats={}, snapshots={})


def _shapes(infos: Iterable[metadata.SliceInfo]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(info.shape) for info in infos)


def _describe(info: metadata.SliceInfo) -> str:
    cell = "" if info.cell is None else f" cell {info.cell}"
    return f"kernel {info.kernel!r} ({info.direction}) of layer {info.layer!r}{cell}"


def _skipped_text(reasons: Mapping[str, list[str]]) -> str:
    parts = []
    for reason, tags in reasons.items():
        where = f"tag {tags[0]!r}" if len(tags) == 1 else f"{len(tags)} tags, e.g. {tags[0]!r}"
        parts.append(f"skipped {where}: {reason}")
    return _error_text(parts)


def _error_text(parts: Sequence[str]) -> str:
    """`parts` joined, at most `_MAX_REASONS` of them."""
    more = len(parts) - _MAX_REASONS
    return "; ".join([*parts[:_MAX_REASONS], *([f"and {more} more"] if more > 0 else [])])


def _join(*parts: str | None) -> str:
    return "; ".join(part for part in parts if part)


def _few(items: Sequence[Any], limit: int = 8) -> str:
    """`items` as a list, the first `limit` of them: a hostile record can name thousands."""
    if len(items) <= limit:
        return str(list(items))
    return f"{str(list(items[:limit]))[:-1]}, ... ({len(items)} in all)]"


def _columns(shape: tuple[int, ...]) -> int:
    return shape[-1] if shape else 1


def _offsets(sizes: Iterable[int]) -> tuple[int, ...]:
    """0, then the running sums of `sizes` (Python integers: declared sizes can pass int64)."""
    return tuple(itertools.accumulate(sizes, initial=0))


def _model_order(kernel: Kernel) -> tuple:
    """Layers in model order, then cells and directions, then kernels in the order the layer
    holds them (for format version 1, which does not record it, `_KERNEL_ORDER`)."""
    direction = metadata.DIRECTIONS.index(kernel.direction)
    if kernel.kernel_order is not None:
        position: tuple = (0, kernel.kernel_order)
    elif kernel.kernel in _KERNEL_ORDER:
        position = (1, _KERNEL_ORDER.index(kernel.kernel))
    else:
        position = (1, len(_KERNEL_ORDER))
    cell = -1 if kernel.cell is None else kernel.cell
    return (kernel.order, kernel.layer, cell, direction, position, kernel.kernel)


def _read_run_steps(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    run: str,
    kernels: Sequence[Kernel],
    cache: StepCache | None,
) -> tuple[list[dict[str, KindSteps]], list[str]]:
    """Per kernel, per kind, the readable steps of the first gate's statistics and snapshots;
    and what was skipped."""
    steps: dict[str, dict[str, SeriesSteps]] = {}
    for record, plugin_name in (
        ("stats", metadata.PLUGIN_NAME),
        ("snapshots", metadata.SNAPSHOT_PLUGIN_NAME),
    ):
        first_gates = [r for k in kernels for r in getattr(k, record).values()]
        steps[record] = _steps_of(
            data_provider, ctx, experiment_id, plugin_name, run, first_gates, cache
        )
    problems = [problem for by_tag in steps.values() for _, problem in by_tag.values() if problem]
    per_kernel = [
        {
            kind: KindSteps(
                stats_steps=_first_gate_steps(steps["stats"], kernel.stats, kind),
                snapshot_steps=_first_gate_steps(steps["snapshots"], kernel.snapshots, kind),
            )
            for kind in kernel.kinds
        }
        for kernel in kernels
    ]
    return per_kernel, problems


def _first_gate_steps(
    steps: Mapping[str, SeriesSteps], records: Mapping[str, Records], kind: str
) -> tuple[int, ...]:
    return steps[records[kind].tags[0]][0] if kind in records else ()


def _steps_of(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    plugin_name: str,
    run: str,
    records: Sequence[Records],
    cache: StepCache | None,
) -> dict[str, SeriesSteps]:
    """Readable steps of the first gate's tag of each of `records` and what was skipped, from
    `cache` where the fingerprint is unchanged, else read in as few calls as keep each under
    `_READ_BUDGET_BYTES`."""
    steps: dict[str, SeriesSteps] = {}
    first = {r.tags[0]: (r.fingerprints[0], r.contents[0]) for r in records}
    to_read = []
    for tag, (fingerprint, content) in first.items():
        cached = cache.get((experiment_id, run, tag), fingerprint) if cache else None
        if cached is None:
            kept = metadata.SAMPLES_PER_PLUGIN[plugin_name]
            to_read.append((tag, kept * _point_bytes(content)))
        else:
            steps[tag] = cached
    for batch in _batches(to_read, _READ_BUDGET_BYTES):
        read = _read_tags(data_provider, ctx, experiment_id, plugin_name, run, batch)
        for tag in batch:
            fingerprint, content = first[tag]
            series = _series(tag, read[tag], content)
            steps[tag] = (series.steps, series.problem)
            if cache is not None:
                cache.put((experiment_id, run, tag), fingerprint, steps[tag])
    return steps


def _point_bytes(content: Content) -> int:
    """Bytes of one stored value of a record: its stats vector, or its snapshot planes."""
    if isinstance(content, metadata.StatsContent):
        return 8 * metadata.stats_vector_length(content.bins)
    rows, cols = metadata.snapshot_grid(content)
    return 4 * len(metadata.SNAPSHOT_PLANES) * rows * cols


def _batches(sized: Sequence[tuple[str, int]], budget: int) -> list[list[str]]:
    """Consecutive groups of tags whose estimated sizes add up to at most `budget` (a tag
    larger than that is a group of its own)."""
    batches: list[list[str]] = []
    total = 0
    for tag, size in sized:
        if not batches or total + size > budget:
            batches.append([])
            total = 0
        batches[-1].append(tag)
        total += size
    return batches


def _records(kernel: Kernel, by_kind: Mapping[str, Records], kind: str, what: str) -> Records:
    if kind not in metadata.KINDS:
        raise NotFoundError(f"unknown kind {kind!r}; expected one of {list(metadata.KINDS)}")
    if kind not in by_kind:
        raise NotFoundError(
            f"kernel {kernel.kernel!r} of layer {kernel.layer!r} in run {kernel.run!r} has no "
            f"{what} of {kind}"
        )
    return by_kind[kind]


def _gate_indices(kernel: Kernel, gate: str | None) -> list[int]:
    if gate is None:
        return list(range(len(kernel.gates)))
    if gate not in kernel.gates:
        gates = list(kernel.gates) if kernel.gated else "none (not a gated kernel)"
        raise NotFoundError(
            f"kernel {kernel.kernel!r} of layer {kernel.layer!r} has no gate {gate!r}; "
            f"its gates: {_few(gates) if kernel.gated else gates}"
        )
    return [kernel.gates.index(gate)]


def _common(kernel: Kernel, kind: str, what: str, values: Sequence[Any]) -> Any:
    """The value all gates of a kernel share (NaN equals NaN here, so that the message is
    about values that differ)."""
    if any(not _same(v, values[0]) for v in values):
        raise metadata.FormatError(
            f"the gates of kernel {kernel.kernel!r} of layer {kernel.layer!r} ({kind}) were "
            f"written with different {what}: {_few(values)}"
        )
    return values[0]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _gate_stats(kernel: Kernel, gate_index: int, series: _Series, bins: int) -> GateStats:
    """One gate's statistics; `dead_units` NaN where the kernel has no dead units to count
    (`metadata.KernelInfo.counts_dead_units`: biases), whatever the record holds."""
    if series.points:
        vectors = np.stack([values for _, _, values in series.points])
    else:
        vectors = np.empty((0, metadata.stats_vector_length(bins)), dtype=np.float64)
    if not kernel.counts_dead_units:
        vectors[:, _DEAD_UNITS] = np.nan
    fields = len(metadata.STAT_FIELDS)
    return GateStats(
        gate=kernel.gates[gate_index],
        steps=np.array(series.steps, dtype=np.int64),
        wall_times=np.array([wall_time for _, wall_time, _ in series.points], dtype=np.float64),
        values=vectors[:, :fields],
        counts=vectors[:, fields:],
    )


# -----------------------------------------------------------------------------------------------
# Activations: gates, states and gradients through time of recurrent layers on a probe batch
# -----------------------------------------------------------------------------------------------
#
# One direction and cell of a recurrent layer (a *group*, `ActivationGroup`) is stored as one
# statistics tag and one map tag per name, a gradient-norms tag and a mask tag (see the
# activations section of `metadata`). `list_activations` regroups the tags; `read_activation_index`
# adds the steps; `read_activation_stats`, `read_gradient_norms` and `read_activation_maps` read
# one group's values.

ActivationKey = tuple[str, Union[int, None], str]
"""(layer, cell, direction): identifies a group within a run, as `metadata.ActivationInfo.key`."""


@dataclasses.dataclass(frozen=True)
class ActivationTag:
    """One tag of a group: its content and its fingerprint (as `Records.fingerprints`)."""

    tag: str
    content: metadata.ActivationContent
    fingerprint: tuple[int, float]


@dataclasses.dataclass(frozen=True)
class ActivationGroup:
    """The activation records of one direction and cell of one run's layer.

    `stats` and `maps` map a name to its tag (`maps` may also hold
    `metadata.HIDDEN_STATE_GRADIENT`); `gradient_norms` and `mask` are None when not written.
    """

    run: str
    info: metadata.ActivationInfo
    stats: Mapping[str, ActivationTag]
    maps: Mapping[str, ActivationTag]
    gradient_norms: ActivationTag | None
    mask: ActivationTag | None

    @property
    def map_names(self) -> tuple[str, ...]:
        """Names with maps, in `info.names` order, then dL/dh_t."""
        order = (*self.info.names, metadata.HIDDEN_STATE_GRADIENT)
        return tuple(name for name in order if name in self.maps)


@dataclasses.dataclass(frozen=True)
class ActivationListing:
    """Every run's groups (`groups[run][key]`) and per run what could not be read."""

    groups: Mapping[str, Mapping[ActivationKey, ActivationGroup]]
    errors: Mapping[str, str]

    def group(self, run: str, key: ActivationKey) -> ActivationGroup:
        if run not in self.groups:
            raise NotFoundError(f"run {run!r} has no weightgates activations")
        group = self.groups[run].get(key)
        if group is None:
            layer, cell, direction = key
            cell_text = "" if cell is None else f" cell {cell}"
            raise NotFoundError(
                f"run {run!r} has no activations of direction {direction!r} of layer "
                f"{layer!r}{cell_text}"
            )
        return group


@dataclasses.dataclass(frozen=True)
class IndexedActivations:
    """A group with the steps of its first name's statistics, its gradient norms and its first
    map (every record of a group is written at the same steps)."""

    group: ActivationGroup
    stats_steps: tuple[int, ...]
    gradient_steps: tuple[int, ...]
    map_steps: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ActivationIndex:
    runs: Mapping[str, tuple[IndexedActivations, ...]]
    errors: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class NameStats:
    """One name's statistics over its kept steps.

    `scalars` is float64 ``[steps, len(metadata.ACTIVATION_STAT_FIELDS)]`` and `counts`
    ``[steps, bins]``. `units` is float64 ``[len(unit_steps), len(ACTIVATION_UNIT_FIELDS),
    units]``: the per-unit values at `unit_steps` (one step, or every step).
    """

    name: str
    saturation: str | None
    thresholds: tuple[float, float] | None
    steps: np.ndarray
    wall_times: np.ndarray
    scalars: np.ndarray
    counts: np.ndarray
    unit_steps: np.ndarray
    units: np.ndarray
    units_saturated: np.ndarray
    """float64 ``[steps, 2]``: the `SATURATED_UNIT_FIELDS` at every step (NaN for a name
    without saturation)."""


@dataclasses.dataclass(frozen=True)
class ActivationStats:
    group: ActivationGroup
    bins: int
    names: tuple[NameStats, ...]


@dataclasses.dataclass(frozen=True)
class GradientNorms:
    """``||dL/dh_t||`` per logged step: `norms` float64 ``[steps, timesteps]``."""

    group: ActivationGroup
    steps: np.ndarray
    wall_times: np.ndarray
    norms: np.ndarray


@dataclasses.dataclass(frozen=True)
class ActivationMaps:
    """A group's maps at `step`: `values` float32 ``[len(names), len(SNAPSHOT_PLANES), rows,
    cols]``; `valid` float32 ``[cols]``, the fraction of each column's timesteps the mask keeps
    (None if no mask was written). `steps` are the steps that have every map."""

    group: ActivationGroup
    step: int
    steps: tuple[int, ...]
    names: tuple[str, ...]
    sample: int
    block: tuple[int, int]
    values: np.ndarray
    valid: np.ndarray | None


ALL_STEPS = "all"
"""`read_activation_stats`' ``unit_step`` for the per-unit values of every kept step."""

SATURATED_UNIT_FIELDS = ("left_saturated_units", "right_saturated_units")
"""Per step, the units left- (right-) saturated at more than
`metadata.SATURATED_UNIT_FRACTION` of their positions (`NameStats.units_saturated`)."""


def list_activations(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    run: str | None = None,
) -> ActivationListing:
    """Groups the activation tags of every run (or of `run` only) by direction and cell.

    Reads only the tags' metadata. A tag whose content this version cannot parse, whose name
    does not match its content, or whose content describes the layer differently from the
    group's other tags is skipped and described in `ActivationListing.errors`.
    """
    run_tag_filter = None if run is None else provider_lib.RunTagFilter(runs=[run])
    tags: dict[tuple[str, ActivationKey], list[ActivationTag]] = {}
    skipped: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)
    for plugin_name in (metadata.ACTIVATIONS_PLUGIN_NAME, metadata.ACTIVATION_MAPS_PLUGIN_NAME):
        listed = data_provider.list_tensors(
            ctx, experiment_id=experiment_id, plugin_name=plugin_name, run_tag_filter=run_tag_filter
        )
        for run_name, series_by_tag in listed.items():
            for tag, series in series_by_tag.items():
                try:
                    content = metadata.parse_activation_content(series.plugin_content)
                    if metadata.activation_tag(content) != tag:
                        raise metadata.FormatError(
                            "the tag does not match the layer its content describes"
                        )
                except metadata.FormatError as error:
                    skipped[run_name].setdefault(str(error), []).append(tag)
                    continue
                entry = ActivationTag(tag, content, (series.max_step, series.max_wall_time))
                tags.setdefault((run_name, content.info.key), []).append(entry)
    groups: dict[str, dict[ActivationKey, ActivationGroup]] = {}
    for (run_name, key), entries in tags.items():
        entries.sort(key=lambda e: e.tag)
        info = next(
            (
                e.content.info
                for e in entries
                if isinstance(e.content, metadata.ActivationStatsContent)
            ),
            entries[0].content.info,
        )
        kept = []
        for entry in entries:
            if entry.content.info != info:
                reason = f"activations of {_describe_group(info)} describe the layer differently"
                skipped[run_name].setdefault(reason, []).append(entry.tag)
            else:
                kept.append(entry)
        groups.setdefault(run_name, {})[key] = _activation_group(run_name, info, kept)
    errors = {run_name: _skipped_text(reasons) for run_name, reasons in skipped.items()}
    return ActivationListing(groups=groups, errors=errors)


def _activation_group(
    run: str, info: metadata.ActivationInfo, entries: Sequence[ActivationTag]
) -> ActivationGroup:
    stats: dict[str, ActivationTag] = {}
    maps: dict[str, ActivationTag] = {}
    gradient_norms = mask = None
    for entry in entries:
        content = entry.content
        if isinstance(content, metadata.ActivationStatsContent):
            stats[content.name] = entry
        elif isinstance(content, metadata.GradientNormsContent):
            gradient_norms = entry
        elif content.name is None:
            mask = entry
        else:
            maps[content.name] = entry
    return ActivationGroup(run, info, stats, maps, gradient_norms, mask)


def _describe_group(info: metadata.ActivationInfo) -> str:
    cell = "" if info.cell is None else f" cell {info.cell}"
    return f"direction {info.direction!r} of layer {info.layer!r}{cell}"


def read_activation_index(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    cache: StepCache | None = None,
) -> ActivationIndex:
    """Every run's groups in model order, with their logged steps. A run whose steps cannot be
    read is left out and described in `ActivationIndex.errors`."""
    listing = list_activations(data_provider, ctx, experiment_id)
    errors = dict(listing.errors)
    runs = {}
    for run, groups in listing.groups.items():
        ordered = sorted(groups.values(), key=_group_order)
        try:
            runs[run] = tuple(
                _indexed(data_provider, ctx, experiment_id, group, cache) for group in ordered
            )
        except Exception as error:  # A run that fails to read must not hide the others.
            logger.warning("weightgates: reading activation steps of %r failed", run, exc_info=True)
            errors[run] = "; ".join(
                filter(None, [errors.get(run), f"could not read its activation steps: {error}"])
            )
    return ActivationIndex(runs=runs, errors=errors)


def _group_order(group: ActivationGroup) -> tuple:
    info = group.info
    cell = -1 if info.cell is None else info.cell
    return (info.order, info.layer, cell, metadata.DIRECTIONS.index(info.direction))


def _indexed(data_provider, ctx, experiment_id, group, cache) -> IndexedActivations:
    first_stats = next((group.stats[n] for n in group.info.names if n in group.stats), None)
    first_map = group.maps[group.map_names[0]] if group.maps else None
    wanted = [
        (metadata.ACTIVATIONS_PLUGIN_NAME, first_stats),
        (metadata.ACTIVATIONS_PLUGIN_NAME, group.gradient_norms),
        (metadata.ACTIVATION_MAPS_PLUGIN_NAME, first_map),
    ]
    steps = [
        ()
        if entry is None
        else _activation_steps(data_provider, ctx, experiment_id, plugin, group.run, entry, cache)
        for plugin, entry in wanted
    ]
    return IndexedActivations(group, *steps)


def _activation_steps(
    data_provider, ctx, experiment_id, plugin_name, run, entry: ActivationTag, cache
) -> tuple[int, ...]:
    key = (experiment_id, run, entry.tag)
    cached = cache.get(key, entry.fingerprint) if cache else None
    if cached is not None:
        return cached
    series = _read_series(data_provider, ctx, experiment_id, plugin_name, run, entry.tag)
    steps = tuple(sorted(datum.step for datum in series))
    if cache is not None:
        cache.put(key, entry.fingerprint, steps)
    return steps


def read_activation_stats(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    group: ActivationGroup,
    name: str | None = None,
    unit_step: int | str | None = None,
) -> ActivationStats:
    """Statistics of every name of `group` (or of `name` only), at every kept step, with the
    per-unit values at `unit_step`: a step, `ALL_STEPS`, or None for each name's latest.

    Raises:
      NotFoundError: no statistics of `name`, or none at `unit_step`.
      metadata.FormatError: a stored vector does not have the layout its content describes.
    """
    names = [n for n in group.info.names if n in group.stats]
    if name is not None:
        if name not in group.stats:
            raise NotFoundError(
                f"{_describe_group(group.info)} in run {group.run!r} has no statistics of "
                f"{name!r}; it has {names}"
            )
        names = [name]
    if not names:
        raise NotFoundError(f"{_describe_group(group.info)} has no activation statistics")
    contents = [typing.cast(metadata.ActivationStatsContent, group.stats[n].content) for n in names]
    bins = contents[0].bins
    if any(c.bins != bins for c in contents):
        raise metadata.FormatError(
            f"the names of {_describe_group(group.info)} were written with different bins"
        )
    read = data_provider.read_tensors(
        ctx,
        experiment_id=experiment_id,
        plugin_name=metadata.ACTIVATIONS_PLUGIN_NAME,
        downsample=READ_ALL,
        run_tag_filter=provider_lib.RunTagFilter(
            runs=[group.run], tags=[group.stats[n].tag for n in names]
        ),
    ).get(group.run, {})
    result = tuple(
        _name_stats(content, read.get(group.stats[n].tag, []), unit_step)
        for n, content in zip(names, contents)
    )
    return ActivationStats(group=group, bins=bins, names=result)


def _name_stats(
    content: metadata.ActivationStatsContent,
    series: Sequence[provider_lib.TensorDatum],
    unit_step: int | str | None,
) -> NameStats:
    series = sorted(series, key=lambda d: d.step)
    tag = metadata.activation_stats_tag(content.info, content.name)
    try:
        vectors = metadata.parse_activation_stats_series(
            [(d.step, d.numpy) for d in series], content
        )
    except metadata.FormatError as error:
        raise metadata.FormatError(f"tag {tag!r} at {error}") from None
    parts = metadata.split_activation_stats(vectors, content)
    steps = np.array([d.step for d in series], dtype=np.int64)
    if unit_step == ALL_STEPS:
        chosen = np.arange(len(steps))
    elif unit_step is None:
        chosen = np.arange(len(steps))[-1:]
    else:
        chosen = np.flatnonzero(steps == unit_step)[-1:]
        if not len(chosen):
            raise NotFoundError(
                f"{content.name!r} of {_describe_group(content.info)} has no statistics at step "
                f"{unit_step}"
            )
    saturation = content.info.saturation(content.name)
    fraction = metadata.SATURATED_UNIT_FRACTION
    sides = [
        metadata.ACTIVATION_UNIT_FIELDS.index(f) for f in ("left_saturated", "right_saturated")
    ]
    per_unit = parts["units"][:, sides]
    saturated = (per_unit > fraction).sum(axis=2).astype(np.float64)
    if saturation is None:
        saturated[:] = np.nan
    return NameStats(
        name=content.name,
        saturation=saturation,
        thresholds=content.thresholds,
        steps=steps,
        wall_times=np.array([d.wall_time for d in series], dtype=np.float64),
        scalars=parts["scalars"],
        counts=parts["counts"],
        unit_steps=steps[chosen],
        units=parts["units"][chosen],
        units_saturated=saturated,
    )


def read_gradient_norms(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    group: ActivationGroup,
) -> GradientNorms:
    """``||dL/dh_t||`` per timestep at every kept step of `group`.

    Raises:
      NotFoundError: the group has no gradient norms (logged without a target).
      metadata.FormatError: a stored vector is not ``[timesteps]``.
    """
    if group.gradient_norms is None:
        raise NotFoundError(
            f"{_describe_group(group.info)} in run {group.run!r} has no gradients through time "
            "(its probe had no target y)"
        )
    entry = group.gradient_norms
    series = sorted(
        _read_series(
            data_provider,
            ctx,
            experiment_id,
            metadata.ACTIVATIONS_PLUGIN_NAME,
            group.run,
            entry.tag,
        ),
        key=lambda d: d.step,
    )
    content = typing.cast(metadata.GradientNormsContent, entry.content)
    try:
        norms = metadata.parse_gradient_norms_series([(d.step, d.numpy) for d in series], content)
    except metadata.FormatError as error:
        raise metadata.FormatError(f"tag {entry.tag!r} at {error}") from None
    return GradientNorms(
        group=group,
        steps=np.array([d.step for d in series], dtype=np.int64),
        wall_times=np.array([d.wall_time for d in series], dtype=np.float64),
        norms=norms,
    )


def read_activation_maps(
    data_provider: provider_lib.DataProvider,
    ctx: Any,
    experiment_id: str,
    group: ActivationGroup,
    step: int | None = None,
    name: str | None = None,
) -> ActivationMaps:
    """The maps of every name of `group` (or of `name` only) at `step` (default: the latest
    step that every one of them has), read one tag at a time. dL/dh_t
    (`metadata.HIDDEN_STATE_GRADIENT`) is included at the steps that have it.

    Raises:
      NotFoundError: no maps (of `name`), or none of every name at `step`.
      metadata.FormatError: a map's tensor does not have the layout its content describes.
    """
    names = list(group.map_names)
    if name is not None:
        if name not in group.maps:
            raise NotFoundError(
                f"{_describe_group(group.info)} in run {group.run!r} has no maps of {name!r}; "
                f"it has {names}"
            )
        names = [name]
    if not names:
        raise NotFoundError(f"{_describe_group(group.info)} in run {group.run!r} has no maps")
    # dL/dh_t has maps only at the steps that had gradients (none before the first training
    # step): the steps are those of the other maps, and it is included where it is there.
    required = [n for n in names if n != metadata.HIDDEN_STATE_GRADIENT] or names
    optional = [n for n in names if n not in required]
    entries = [group.maps[n] for n in required + optional]
    entries += [group.mask] if group.mask else []
    contents = [typing.cast(metadata.ActivationMapContent, e.content) for e in entries]
    block, sample = contents[0].block, contents[0].sample
    if any((c.block, c.sample) != (block, sample) for c in contents):
        raise metadata.FormatError(
            f"the maps of {_describe_group(group.info)} differ in block or sample"
        )
    series = {
        e.tag: _read_series(
            data_provider,
            ctx,
            experiment_id,
            metadata.ACTIVATION_MAPS_PLUGIN_NAME,
            group.run,
            e.tag,
        )
        for e in entries
    }
    needed = [e for e, c in zip(entries, contents) if c.name is None or c.name not in optional]
    shared = set.intersection(*({d.step for d in series[e.tag]} for e in needed))
    steps = tuple(sorted(shared))
    if not steps:
        raise NotFoundError(f"the maps of {_describe_group(group.info)} share no step")
    if step is None:
        step = steps[-1]
    elif step not in shared:
        raise NotFoundError(
            f"the maps of {_describe_group(group.info)} have no step {step}; they have "
            f"{len(steps)} steps from {steps[0]} to {steps[-1]}"
        )
    arrays = []
    present = []
    for entry in entries:
        data = [d for d in series[entry.tag] if d.step == step]
        if not data:  # an optional map without this step
            continue
        datum = max(data, key=lambda d: d.wall_time)
        content = typing.cast(metadata.ActivationMapContent, entry.content)
        try:
            arrays.append(metadata.parse_activation_map_tensor(datum.numpy, content))
        except metadata.FormatError as error:
            raise metadata.FormatError(f"tag {entry.tag!r} at step {step}: {error}") from None
        if content.name is not None:
            present.append(content.name)
    names = present
    valid = arrays.pop() if group.mask else None
    return ActivationMaps(
        group=group,
        step=step,
        steps=steps,
        names=tuple(names),
        sample=sample,
        block=block,
        values=np.stack(arrays),
        valid=valid,
    )
