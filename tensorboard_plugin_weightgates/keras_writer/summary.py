"""Writing per-gate statistics, snapshots and histograms of a Keras model to TensorBoard.

`GateLogger` is the writer behind `WeightGatesCallback`, the custom-loop functions
(`custom_loop`) and `weightgates import`. It splits the model once (`gates.split_model`),
groups the gate slices by kernel, and compiles one `tf.function` per kind that computes every
kernel's per-gate statistics on the device holding the weights and writes them, so that a logged
step costs one graph call and never copies whole tensors to the host. Only snapshot steps copy
values to the host, where they are block-reduced (`snapshot`) before writing.

Summary metadata (which TensorBoard reads from a tag's first event only) is attached to the
first write of each tag by this logger, and left off later writes to keep records small.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format import metadata, snapshot
from tensorboard_plugin_weightgates.format.options import LogOptions
from tensorboard_plugin_weightgates.keras_writer import gates, stats


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


class GateLogger:
    """Writes per-gate records of one model to one summary writer.

    Records are queued in the writer, which flushes on its own schedule (`flush_millis`,
    `max_queue`) or on `writer.flush()`: a logged step never waits for the disk.

    Keeps the previous logged weights in variables on their device to compute update sizes,
    so use one logger per model and writer for the whole training. Variables rather than
    tensors handed back to Python, so that weights can be logged from inside a compiled
    training step (`write_weight_stats`) and from the host (`log_weights`) with one history.
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
        self._described: set = set()
        self._update_column = np.array(
            [name == "update_size" for name in metadata.STAT_FIELDS]
            + [False] * self.options.histogram_bins
        )
        with tf.init_scope():
            self._previous = [
                tf.Variable(kernel, trainable=False, name="weightgates_previous")
                for kernel in self._read_kernels()
            ]
            self._has_previous = tf.Variable(
                False, trainable=False, name="weightgates_has_previous"
            )
            self._weights_described = tf.Variable(
                tf.zeros([len(self.groups)], tf.bool), trainable=False, name="weightgates_described"
            )
        self._kernel_writers: dict = {}
        self._weights_fn = tf.function(self.write_weight_stats, autograph=False)
        self._gradients_fn = tf.function(self.write_gradient_stats, autograph=False)

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
            self._weights_fn(tf.constant(step, dtype=tf.int64))
        if snapshot_values:
            self._write_snapshots(
                "weights", step, [(g, _to_numpy(g.variable)) for g in self.groups]
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
        present = [i for i, g in enumerate(gradients) if g is not None]
        if not present:
            return
        if statistics:
            describe = self._take_undescribed("gradients", present)
            self._gradients_fn(tf.constant(step, dtype=tf.int64), gradients, describe)
        if snapshot_values:
            self._write_snapshots(
                "gradients", step, [(groups[i], np.asarray(gradients[i])) for i in present]
            )

    def describe_again(self) -> None:
        """Attaches the metadata to each tag's next write again: for a new event file, after
        the one that held the first writes failed (`event_writer`)."""
        self._described.clear()
        self._weights_described.assign(tf.zeros_like(self._weights_described))

    def gradient_pairs(self, grads_and_vars: Iterable[tuple[Any, Any]]) -> list[Any]:
        """Aligns (gradient, variable) pairs from any training loop with `trainable_groups`."""
        by_variable = {id(v): g for g, v in grads_and_vars}
        return [by_variable.get(id(g.variable)) for g in self.trainable_groups]

    def _take_undescribed(self, kind: str, indices: Iterable[int]) -> tf.Tensor:
        """Which of these groups' tags still need their metadata (their first write). A tensor,
        not a Python value, so that the compiled functions are traced only once."""
        flags = []
        for i in indices:
            flags.append((kind, i) not in self._described)
            self._described.add((kind, i))
        return tf.constant(flags, dtype=tf.bool)

    def _read_kernels(self) -> list[tf.Tensor]:
        return [g.select(tf.convert_to_tensor(g.variable)) for g in self.groups]

    def write_weight_stats(self, step: tf.Tensor) -> None:
        """Writes the statistics of every logged kernel's current weights at `step` (int64) and
        keeps them for the next update size (NaN at the first logged step). Builds ops in the
        current graph, so it can be called while a training step is traced, after the
        optimizer's update: the reads of the weights then follow the update."""
        if not self.groups:
            return
        kernels = self._read_kernels()
        previous = [v.read_value() for v in self._previous]
        has_previous = self._has_previous.read_value()
        describe = tf.logical_not(self._weights_described.read_value())
        for i, (group, kernel) in enumerate(zip(self.groups, kernels)):
            self._write_kernel(
                group, "weights", kernel, previous[i], has_previous, describe[i], step
            )
        for variable, kernel in zip(self._previous, kernels):
            variable.assign(kernel)
        self._has_previous.assign(True)
        self._weights_described.assign(tf.ones_like(self._weights_described))

    def write_gradient_stats(
        self, step: tf.Tensor, gradients: Sequence[Any], describe: tf.Tensor
    ) -> None:
        """Writes the statistics of whole-variable `gradients` (aligned with `trainable_groups`,
        None where there is none) at `step` (int64). Builds ops in the current graph, so it can
        be called while another `tf.function` is traced, such as a training step.

        `describe` is a bool tensor with one flag per present gradient: whether its tags still
        need their metadata (their first write). Callers that decide that in the graph keep the
        flags themselves; `log_gradients` keeps them in this logger.
        """
        present = [
            (g, grad) for g, grad in zip(self.trainable_groups, gradients) if grad is not None
        ]
        for j, (group, gradient) in enumerate(present):
            kernel = group.select(gradient)
            self._write_kernel(group, "gradients", kernel, kernel, False, describe[j], step)

    def _write_kernel(self, group, kind, kernel, previous, has_previous, describe, step):
        """Calls the kernel writer for this group's gate count and dtype on the kernel seen as
        a matrix (rows x gates*units), with the group's tags and metadata as string tensors."""
        dtype = stats.compute_dtype(kernel.dtype)
        texts = self._texts(group, kind)
        self._kernel_writer(len(group.slices), kind, dtype)(
            _as_matrix(kernel, dtype),
            _as_matrix(previous, dtype),
            tf.convert_to_tensor(has_previous),
            describe,
            *texts,
            step,
        )

    def _texts(self, group: KernelGroup, kind: str) -> tuple[np.ndarray, ...]:
        """Tags and serialized metadata of the group's stats and histogram records, per gate."""
        return (
            np.array([metadata.stats_tag(info, kind) for info in group.slices], dtype=object),
            np.array(
                [self._stats_metadata(info, kind).SerializeToString() for info in group.slices],
                dtype=object,
            ),
            np.array([metadata.histogram_tag(info, kind) for info in group.slices], dtype=object),
            np.array(
                [
                    metadata.create_histogram_metadata(info, kind).SerializeToString()
                    for info in group.slices
                ],
                dtype=object,
            ),
        )

    def _kernel_writer(self, gates: int, kind: str, dtype: tf.DType):
        """One compiled function per (gate count, kind, dtype), whatever the kernel's shape:
        tracing is paid a few times per model instead of once per kernel, which kept large
        models waiting for seconds at their first logged step."""
        key = (gates, kind, dtype)
        if key not in self._kernel_writers:
            matrix = tf.TensorSpec([None, None], dtype)
            flag = tf.TensorSpec([], tf.bool)
            text = tf.TensorSpec([gates], tf.string)
            signature = [
                matrix,
                matrix,
                flag,
                flag,
                text,
                text,
                text,
                text,
                tf.TensorSpec([], tf.int64),
            ]

            def write(
                kernel, previous, has_previous, describe, tags, metas, hist_tags, hist_metas, step
            ):
                per_gate = stats.gate_stats(
                    kernel,
                    gates=gates,
                    bins=self.options.histogram_bins,
                    near_zero=self.options.threshold(kind),
                    previous=previous,
                )
                per_gate = tf.where(
                    tf.logical_or(has_previous, ~self._update_column),
                    per_gate,
                    tf.constant(float("nan"), tf.float64),
                )
                metas = tf.where(describe, metas, "")
                hist_metas = tf.where(describe, hist_metas, "")
                # record_if(True): a surrounding `keras.callbacks.TensorBoard` sets a
                # record_if of its own for the whole of `fit`, which must not thin ours.
                with self.writer.as_default(), tf.summary.record_if(True):
                    for gate in range(gates):
                        tf.summary.write(
                            tags[gate], per_gate[gate], step=step, metadata=metas[gate]
                        )
                        if self.options.write_histograms:
                            tf.summary.write(
                                hist_tags[gate],
                                stats.histogram_tensor(per_gate[gate]),
                                step=step,
                                metadata=hist_metas[gate],
                            )

            self._kernel_writers[key] = tf.function(
                write, input_signature=signature, autograph=False
            )
        return self._kernel_writers[key]

    def _stats_metadata(self, info, kind):
        return metadata.create_stats_metadata(
            info, kind, bins=self.options.histogram_bins, near_zero=self.options.threshold(kind)
        )

    def _write_snapshots(self, kind: str, step: int, arrays) -> None:
        """Writes each gate of (group, whole-variable array) pairs, block-reduced."""
        max_cells = self.options.snapshot_max_cells
        with self.writer.as_default(), tf.summary.record_if(True):
            for group, array in arrays:
                for info in group.slices:
                    tag = metadata.snapshot_tag(info, kind)
                    description = None
                    if tag not in self._described:
                        self._described.add(tag)
                        block = snapshot.snapshot_block(info.shape, max_cells)
                        description = metadata.create_snapshot_metadata(
                            info, kind, max_cells, block
                        )
                    tf.summary.write(
                        tag,
                        snapshot.reduce_snapshot(info.select(array), max_cells),
                        step=step,
                        metadata=description,
                    )


def _as_matrix(tensor: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """The kernel as rows x last axis (a scalar is 1 x 1), the layout `gate_stats` splits."""
    width = tensor.shape[-1] if tensor.shape.rank else 1
    return tf.reshape(tf.cast(tensor, dtype), [-1, width])


def _to_numpy(variable: Any) -> np.ndarray:
    return np.asarray(variable.numpy())
