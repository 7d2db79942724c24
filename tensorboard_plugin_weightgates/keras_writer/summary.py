"""Writing per-gate statistics, snapshots and histograms of a Keras model to TensorBoard.

`GateLogger` is the writer behind `WeightGatesCallback`, the custom-loop functions
(`custom_loop`) and `weightgates import`. It splits the model once (`gates.split_model`),
groups the gate slices by kernel, and lays the kernels of each kind and compute dtype end to end
in one flat vector (`Packing`), so that a logged step is one call of one compiled function
whose graph does not grow with the model (`stats.packed_stats`), on the device holding the
weights, and one copy of a small ``[slices, fields + bins]`` array to the host. There the
records are encoded (the tags, metadata and tensors one `tf.summary.write` per slice would
make) and written by one op, as one event per step and kind. Only snapshot steps copy whole
values to the host, where they are block-reduced (`snapshot`), then encoded and written
the same way.

Summary metadata (which TensorBoard reads from a tag's first event only) is attached to the
first write of each tag by this logger, and left off later writes to keep records small.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2, types_pb2

from tensorboard_plugin_weightgates.format import metadata, snapshot
from tensorboard_plugin_weightgates.format.options import LogOptions
from tensorboard_plugin_weightgates.keras_writer import compat, gates, stats


@dataclasses.dataclass(frozen=True)
class KernelGroup:
    """All gate slices of one kernel: the unit that statistics are computed for in one go.

    `select` gives the whole kernel (every gate side by side on its last axis, as
    `gates.GateSlice.kernel_view` lays it out), so per-gate statistics are one vectorised
    computation over the kernel's last axis.
    """

    slices: tuple[gates.GateSlice, ...]

    @property
    def variable(self) -> Any:
        return self.slices[0].variable

    def select(self, whole: Any) -> Any:
        """The kernel (every gate) of `whole`, a value of the whole variable, as
        `gates.GateSlice.select` selects one gate."""
        return self.slices[0].select_kernel(whole)

    @property
    def trainable(self) -> bool:
        return self.slices[0].trainable


def group_kernels(slices: Iterable[gates.GateSlice]) -> list[KernelGroup]:
    """Groups slices by kernel, keeping model order and gate order."""
    grouped: dict[tuple, list[gates.GateSlice]] = {}
    for gate_slice in slices:
        grouped.setdefault(gate_slice.key, []).append(gate_slice)
    groups = []
    for members in grouped.values():
        members.sort(key=lambda s: s.gate_index)
        if len(members) != len(members[0].gates):
            raise ValueError(
                f"kernel {members[0].kernel!r} of layer {members[0].layer!r} has "
                f"{len(members)} slices for gates {members[0].gates}"
            )
        groups.append(KernelGroup(slices=tuple(members)))
    return groups


class Packing:
    """The kernels of one kind and compute dtype, laid end to end in one flat vector.

    Built once per logger: `stats.Segments` says where each gate slice lies, `slices` lists the
    slices in the order of the rows `stats.packed_stats` returns, and the tags of each row are
    made here, once, for the host to encode every logged step.

    Args:
      kind: ``"weights"`` or ``"gradients"``.
      groups: the kernels, in model order, all of compute dtype `dtype`.
      positions: each group's position in the list the values are given in (`flat`).
    """

    def __init__(
        self,
        kind: str,
        dtype: tf.DType,
        groups: Sequence[KernelGroup],
        positions: Sequence[int],
        options: LogOptions,
    ):
        self.kind = kind
        self.dtype = dtype
        self.groups = tuple(groups)
        self.positions = tuple(positions)
        self.slices = tuple(s for g in self.groups for s in g.slices)
        self.segments = stats.Segments.of_kernels(
            [(*_matrix_shape(g), len(g.slices)) for g in self.groups]
        )
        self.stats_tags = tuple(metadata.stats_tag(s, kind) for s in self.slices)
        self.histogram_tags = tuple(metadata.histogram_tag(s, kind) for s in self.slices)
        self._bins = tf.constant(options.histogram_bins, tf.int32)
        self._near_zero = tf.constant(options.threshold(kind), tf.float64)
        with tf.init_scope():
            self._tables = tuple(tf.constant(table) for table in self.segments.tables())

    def flat(self, wholes: Sequence[Any]) -> tf.Tensor:
        """The flat vector of these kernels, from values of the whole variables (`wholes`,
        indexed by `positions`; None for a missing gradient, which reads as zeros)."""
        parts = []
        for k in self.segments.order:
            group, whole = self.groups[k], wholes[self.positions[k]]
            if whole is None:
                parts.append(tf.zeros([int(np.prod(_matrix_shape(group)))], self.dtype))
            else:
                kernel = _kernel(group, tf.convert_to_tensor(whole))
                parts.append(tf.reshape(tf.cast(kernel, self.dtype), [-1]))
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)

    def stats(self, values: tf.Tensor, previous: tf.Tensor, has_previous: Any) -> tf.Tensor:
        """`stats.packed_stats` of the flat vector `values`: ``[slices, fields + bins]``."""
        return stats.compiled_packed_stats(self.dtype)(
            values,
            previous,
            tf.convert_to_tensor(has_previous, tf.bool),
            *self._tables,
            self._bins,
            self._near_zero,
        )

    def kernels(self, flat: np.ndarray) -> list[np.ndarray]:
        """A flat vector of these kernels, copied to the host, cut back into one
        ``[rows, last axis]`` matrix per group, in the order of `groups`."""
        shapes = [_matrix_shape(self.groups[k]) for k in self.segments.order]
        ends = np.cumsum([rows * width for rows, width in shapes])
        kernels: list[np.ndarray] = [np.zeros(0)] * len(self.groups)
        for k, part, shape in zip(self.segments.order, np.split(flat, ends[:-1]), shapes):
            kernels[k] = part.reshape(shape)
        return kernels

    def slice_mask(self, present: Sequence[bool]) -> np.ndarray:
        """Which rows to write, from one flag per position (a gradient present or not)."""
        return np.concatenate(
            [np.full(len(g.slices), bool(present[p])) for g, p in zip(self.groups, self.positions)]
        )


def _kernel(group: KernelGroup, whole: tf.Tensor) -> tf.Tensor:
    """The group's kernel of `whole`, without the no-op slice of a variable that is its own
    kernel (most are: an index of slices that keeps the shape selects everything), a few ops
    fewer per kernel in the logging graph."""
    view = group.slices[0].kernel_view
    shape = tuple(whole.shape)
    if view.permutation is None and view.shape is None and view.shape_of(shape) == shape:
        return whole
    return group.select(whole)


def _matrix_shape(group: KernelGroup) -> tuple[int, int]:
    """(rows, last axis) of the group's kernel seen as a matrix (a scalar is 1 x 1)."""
    info = group.slices[0]
    shape = info.kernel_view.shape_of(tuple(group.variable.shape))
    width = int(shape[-1]) if shape else 1
    size = int(np.prod(shape)) if shape else 1
    return (size // width if width else 0), width


def _packings(kind: str, groups: Sequence[KernelGroup], options: LogOptions) -> list[Packing]:
    """One `Packing` per compute dtype among `groups` (almost always one)."""
    by_dtype: dict[tf.DType, list[int]] = {}
    for i, group in enumerate(groups):
        dtype = stats.compute_dtype(tf.as_dtype(group.variable.dtype))
        by_dtype.setdefault(dtype, []).append(i)
    return [
        Packing(kind, dtype, [groups[i] for i in positions], positions, options)
        for dtype, positions in by_dtype.items()
    ]


class GateLogger:
    """Writes per-gate records of one model to one summary writer.

    Records are queued in the writer, which flushes on its own schedule (`flush_millis`,
    `max_queue`) or on `writer.flush()`: a logged step never waits for the disk.

    Keeps the previous logged weights in variables on their device (one flat vector per
    `Packing`) to compute update sizes, so use one logger per model and writer for the whole
    training. Variables rather than tensors handed back to Python, so that weight statistics can
    be computed from inside a compiled training step (`weight_stats`) and from the host
    (`log_weights`) with one history.
    """

    def __init__(
        self,
        model: Any,
        writer: tf.summary.SummaryWriter,
        layers: Sequence[Any] | None = None,
        options: LogOptions | None = None,
    ):
        self._model = weakref.ref(model)
        self.writer = writer
        self.options = options or LogOptions()
        self.groups = group_kernels(gates.split_model(model, layers=layers))
        self.weight_packings = _packings("weights", self.groups, self.options)
        self.gradient_packings = _packings("gradients", self.trainable_groups, self.options)
        self._prefixes: dict[tuple, bytes] = {}
        with tf.init_scope():
            self._previous = [
                compat.local_variable(tf.zeros([p.segments.size], p.dtype), "weightgates_previous")
                for p in self.weight_packings
            ]
            self._has_previous = compat.local_variable(False, "weightgates_has_previous")
        self._weights_fn = compat.logging_function(self.weight_stats)
        self._gradients_fn = compat.logging_function(
            lambda gradients: self.gradient_stats(self.flat_gradients(gradients))
        )

    @property
    def model(self) -> Any:
        """The logged model; held weakly, so that caching a logger per model (as the
        custom-loop functions do) never keeps a model alive."""
        return self._model()

    @property
    def trainable_groups(self) -> list[KernelGroup]:
        return [g for g in self.groups if g.trainable]

    def log_weights(
        self, step: int, statistics: bool = True, snapshot_values: bool = False
    ) -> None:
        """Writes weight statistics and/or snapshots of every logged kernel."""
        if not self.groups:
            return
        if statistics:
            self.write_stats("weights", step, [a.numpy() for a in self._weights_fn()])
        if snapshot_values:
            wholes = [(g, _to_numpy(g.variable)) for g in self.groups]
            self._write_snapshots(
                "weights", step, [(s, s.select(a)) for g, a in wholes for s in g.slices]
            )

    def log_gradients(
        self,
        gradients: Sequence[Any],
        step: int,
        statistics: bool = True,
        snapshot_values: bool = False,
    ) -> None:
        """Writes gradient statistics; `gradients` is aligned with `trainable_groups`'
        variables (one whole-variable gradient per group, None where there is none)."""
        groups = self.trainable_groups
        if len(gradients) != len(groups):
            raise ValueError(f"expected {len(groups)} gradients, got {len(gradients)}")
        gradients = [None if g is None else tf.convert_to_tensor(g) for g in gradients]
        present = [g is not None for g in gradients]
        if not any(present):
            return
        if statistics:
            arrays = [a.numpy() for a in self._gradients_fn(gradients)]
            self.write_stats("gradients", step, arrays, present)
        if snapshot_values:
            arrays = [(groups[i], np.asarray(g)) for i, g in enumerate(gradients) if g is not None]
            self._write_snapshots(
                "gradients", step, [(s, s.select(a)) for g, a in arrays for s in g.slices]
            )

    def describe_again(self) -> None:
        """Attaches the metadata to each tag's next write again: for a new event file, after
        the one that held the first writes failed (`event_writer`)."""
        self._prefixes.clear()

    def snapshot_gradient_kernels(self, kernels: Sequence[np.ndarray | None], step: int) -> None:
        """Writes gradient snapshots from kernel matrices (aligned with `trainable_groups`,
        None where there is none), as `Packing.kernels` cuts them: a gate is a block of
        columns, as `gates.GateSlice.select_kernel` lays the gates side by side."""
        pairs = []
        for group, kernel in zip(self.trainable_groups, kernels):
            if kernel is None:
                continue
            width = kernel.shape[1] // len(group.slices)
            for g, info in enumerate(group.slices):
                columns = kernel[:, g * width : (g + 1) * width]
                pairs.append((info, columns.reshape(info.shape)))
        self._write_snapshots("gradients", step, pairs)

    def gradient_pairs(self, grads_and_vars: Iterable[tuple[Any, Any]]) -> list[Any]:
        """Aligns (gradient, variable) pairs from any training loop with `trainable_groups`."""
        by_variable = {id(v): g for g, v in grads_and_vars}
        return [by_variable.get(id(g.variable)) for g in self.trainable_groups]

    def weight_stats(self) -> list[tf.Tensor]:
        """The statistics of every logged kernel's current weights, one array per packing of
        `weight_packings`, and keeps the weights for the next update size (NaN at the first
        logged step). Builds ops in the current graph, so it can be called while a training
        step is traced, after the optimizer's update: the reads of the weights then follow the
        update."""
        variables = [g.variable for g in self.groups]
        has_previous = self._has_previous.read_value()
        results = []
        for packing, previous in zip(self.weight_packings, self._previous):
            values = packing.flat(variables)
            results.append(packing.stats(values, previous.read_value(), has_previous))
            previous.assign(values)
        self._has_previous.assign(True)
        return results

    def flat_gradients(self, gradients: Sequence[Any]) -> list[tf.Tensor]:
        """Whole-variable `gradients` (aligned with `trainable_groups`, None where there is
        none: it reads as zeros) as one flat vector per packing of `gradient_packings`."""
        return [packing.flat(gradients) for packing in self.gradient_packings]

    def gradient_stats(self, flats: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """The statistics of gradients given as `flat_gradients` lays them out, one array per
        packing (the rows of absent gradients, statistics of zeros, are for `write_stats` to
        leave out). Builds ops in the current graph."""
        return [p.stats(v, v, False) for p, v in zip(self.gradient_packings, flats)]

    def write_stats(
        self,
        kind: str,
        step: int,
        arrays: Sequence[np.ndarray],
        present: Sequence[bool] | None = None,
    ) -> None:
        """Writes the statistics `weight_stats` or `gradient_stats` computed (as NumPy arrays)
        at `step`: one stats record per slice (and a histogram, with `write_histograms`), all in
        one event. `present` (gradients): one flag per trainable group, whose rows to write."""
        packings = self.weight_packings if kind == "weights" else self.gradient_packings
        records = []
        for packing, array in zip(packings, arrays):
            mask = None if present is None else packing.slice_mask(present)
            for row, info in enumerate(packing.slices):
                if mask is not None and not mask[row]:
                    continue
                records.append(
                    self._record(
                        packing.stats_tags[row],
                        array[row],
                        functools.partial(self._stats_metadata, info, kind),
                    )
                )
                if self.options.write_histograms:
                    records.append(
                        self._record(
                            packing.histogram_tags[row],
                            stats.histogram_tensor(array[row]),
                            functools.partial(metadata.create_histogram_metadata, info, kind),
                        )
                    )
        self._write_records(step, records)

    def _record(
        self, tag: str, values: np.ndarray, describe: Callable[[], summary_pb2.SummaryMetadata]
    ) -> bytes:
        """One record as a serialized `Summary` of one value: `values` (float64 or float32) as
        the tensor a `tf.summary.write` of them would store, with the tag's metadata
        (`describe()`) on its first write.
        Serialized Summaries concatenate into one Summary holding all their values.

        After the first write a tag's record differs from the last one only in its tensor's
        bytes, which protobuf serializes last (fields go in number order: the value's tensor
        after its tag, the tensor's content after its dtype and shape): the bytes before them
        are kept per tag, shape and dtype (which they encode), so that encoding a step is a
        join, not a protobuf message per slice.
        """
        dtype = np.dtype(values.dtype).newbyteorder("<")
        content = np.ascontiguousarray(values, dtype).tobytes()
        key = (tag, values.shape, dtype.char)
        if key in self._prefixes:
            return self._prefixes[key] + content
        summary = summary_pb2.Summary()
        value = summary.value.add(tag=tag)
        tensor = value.tensor
        tensor.dtype = _TENSOR_DTYPES[dtype.char]
        for size in values.shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.tensor_content = bytes(len(content))
        self._prefixes[key] = summary.SerializeToString()[: -len(content) or None]
        tensor.tensor_content = content
        value.metadata.CopyFrom(describe())
        return summary.SerializeToString()

    def _stats_metadata(self, info, kind):
        return metadata.create_stats_metadata(
            info, kind, bins=self.options.histogram_bins, near_zero=self.options.threshold(kind)
        )

    def _write_snapshots(self, kind: str, step: int, pairs) -> None:
        """Writes (slice, its values) pairs, block-reduced, as few events as `_EVENT_BYTES`
        allows (one `tf.summary.write` per slice cost 0.3 ms each: 23 ms of a 110-slice
        model's 43 ms snapshot step)."""
        max_cells = self.options.snapshot_max_cells
        records, size = [], 0
        for info, values in pairs:
            records.append(
                self._record(
                    metadata.snapshot_tag(info, kind),
                    snapshot.reduce_snapshot(values, max_cells),
                    functools.partial(self._snapshot_metadata, info, kind),
                )
            )
            size += len(records[-1])
            if size >= _EVENT_BYTES:
                self._write_records(step, records)
                records, size = [], 0
        self._write_records(step, records)

    def _snapshot_metadata(self, info, kind):
        max_cells = self.options.snapshot_max_cells
        block = snapshot.snapshot_block(info.shape, max_cells)
        return metadata.create_snapshot_metadata(info, kind, max_cells, block)

    def _write_records(self, step: int, records: list[bytes]) -> None:
        """Writes `_record`s as one event at `step`."""
        if not records:
            return
        # record_if(True): a surrounding `keras.callbacks.TensorBoard` sets a record_if of its
        # own for the whole of `fit`, which must not thin ours.
        with self.writer.as_default(), tf.summary.record_if(True):
            tf.summary.experimental.write_raw_pb(b"".join(records), step=step)


_TENSOR_DTYPES = {"d": types_pb2.DT_DOUBLE, "f": types_pb2.DT_FLOAT}
_EVENT_BYTES = 16 * 2**20
"""Snapshot records are joined into events of about this size: one event per step for most
models, while one of many kernels stored whole stays far below protobuf's 2 GiB limit."""


def _to_numpy(variable: Any) -> np.ndarray:
    return np.asarray(variable.numpy())
