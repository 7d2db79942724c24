"""`EventWriter`: the event file writer of the callback, which no write failure makes fatal.

Logging is an observer: a full disk, a permission taken away or a network file system gone must
not be the reason a three-day training run dies. TensorFlow's file writer touches the disk in
three places: when its queue fills or its timer expires, inside any write op; at the exit of
every ``with writer.as_default():`` block, inside compiled functions too (Keras' training step
with ``gradients="train"``); and on `flush`. Here only the host does, where errors are caught:

- write ops never flush: the queue and the timer are as large as TensorFlow allows, and the
  writer that the loggers write through (`writer`, a `compat.UnflushedWriter`) does nothing on
  exit, so no op inside a compiled function can raise a write error;
- `tick`, called by the host after batches, flushes at most every `FLUSH_SECONDS` (and whenever
  asked: at the end of an epoch and of training);
- a failure, there or in any host-side logging call run in `guard`, pauses logging (`active`
  is False), warns once with the directory and the error, and is retried after `RETRY_SECONDS`,
  doubling up to `MAX_RETRY_SECONDS`. A retry that can write to the directory again closes the
  failed event file (what it holds stays readable, up to the failure) and opens a new one in
  the same writer resource, so compiled functions that captured the writer write to the new
  file; logging resumes (`reopened` counts these, so loggers can describe their tags again).
- ``on_error="raise"`` raises the error instead, which stops training.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import tensorflow as tf
from tensorboard.compat.proto import event_pb2

from tensorboard_plugin_weightgates.format.options import check_on_error
from tensorboard_plugin_weightgates.keras_writer import compat

FLUSH_SECONDS = 5.0
"""Longest time records wait in memory before the host writes them out."""

RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
"""The first wait after a failure, and the longest: each failed retry doubles the wait."""

MAX_QUEUE = 2**31 - 1
MAX_FLUSH_MILLIS = 2**31 - 1
"""The largest queue length and timer TensorFlow's writer takes (int32): it never flushes on its
own, inside a write op, so only `EventWriter.flush` meets the disk."""

PROBE_BYTES = 1 << 16
"""What a retry writes (and deletes) to see whether the directory takes data again, before it
closes the failed event file."""

_LOG = logging.getLogger(__name__)


class EventWriter:
    """One run directory's event files, written through `writer`, flushed by the host.

    Args:
      logdir: the directory of the event files (the callback's ``log_dir/train``).
      on_error: ``"warn"`` (pause, warn once, retry) or ``"raise"`` (see the module docstring).
      owner: who writes, for the messages (``"WeightGatesCallback"``).
    """

    def __init__(self, logdir: str, on_error: str = "warn", owner: str = "weightgates"):
        self.logdir = logdir
        self.on_error = check_on_error(on_error)
        self.owner = owner
        self.reopened = 0
        with tf.init_scope(), tf.device("cpu:0"):
            self._resource = tf.raw_ops.SummaryWriter(
                shared_name=f"weightgates_{uuid.uuid4().hex}", container=""
            )
        self.writer = compat.UnflushedWriter(self._resource)
        weakref.finalize(self.writer, _destroy, self._resource)
        self._open = False
        self._last_flush = time.monotonic()
        self._retry_at: float | None = None
        self._wait = RETRY_SECONDS
        try:
            self._create()
        except (tf.errors.OpError, OSError) as error:
            self._failed(error)

    @property
    def active(self) -> bool:
        """Whether logging goes on: False from a failure until a retry succeeds."""
        return self._retry_at is None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Runs host-side logging: an error in it (a write, or our own code) pauses logging
        as a failed flush does, or is raised with ``on_error="raise"``. Interrupts
        (`KeyboardInterrupt`) go through."""
        try:
            yield
        except Exception as error:
            self._failed(error)

    def tick(self, flush: bool = False) -> None:
        """Called by the host after batches: flushes when `FLUSH_SECONDS` have passed since the
        last flush, or when `flush` (the end of an epoch or of training); while paused, retries
        once the wait is over."""
        now = time.monotonic()
        if self._retry_at is not None:
            if now >= self._retry_at:
                self._retry()
            return
        if flush or now - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Writes out the queued records; a failure pauses logging (see `guard`)."""
        if not self.active:
            return
        with self.guard():
            with tf.device("cpu:0"):
                tf.raw_ops.ImportEvent(writer=self._resource, event=_last_event())
                tf.raw_ops.FlushSummaryWriter(writer=self._resource)
            if not tf.io.gfile.isdir(self.logdir):
                # The writer's file went with its directory, and writing to it still succeeds.
                raise FileNotFoundError(f"the directory {self.logdir!r} was deleted")
            self._last_flush = time.monotonic()

    def _create(self) -> None:
        with tf.init_scope(), tf.device("cpu:0"):
            tf.raw_ops.CreateSummaryFileWriter(
                writer=self._resource,
                logdir=self.logdir,
                max_queue=MAX_QUEUE,
                flush_millis=MAX_FLUSH_MILLIS,
                filename_suffix=".v2",
            )
        self._open = True
        self._last_flush = time.monotonic()

    def _failed(self, error: Exception) -> None:
        """Pauses logging until `_retry_at`, warning once per failure (not per retry)."""
        if self.on_error == "raise":
            raise error
        first = self._retry_at is None
        self._retry_at = time.monotonic() + self._wait
        if first:
            warnings.warn(
                f"{self.owner}: writing to {self.logdir!r} failed ({describe_error(error)}); "
                "training goes on, logging is paused and retried with a backoff from "
                f"{RETRY_SECONDS:g} s to {MAX_RETRY_SECONDS:g} s. Records written before stay "
                'readable. Pass on_error="raise" to stop training instead',
                RuntimeWarning,
                stacklevel=5,
            )

    def _retry(self) -> None:
        """Tries the directory with a real write; if it takes data, closes the failed event
        file and opens a new one in the same resource. Otherwise waits twice as long.

        If the directory fails again between the probe and the new file (milliseconds), the
        resource stays closed until the next retry: the host writes nothing meanwhile, but a
        write op compiled into Keras' training step (``gradients="train"``) would fail."""
        try:
            _probe_directory(self.logdir)
            if self._open:
                self._open = False
                with tf.init_scope(), tf.device("cpu:0"):
                    tf.raw_ops.CloseSummaryWriter(writer=self._resource)
            self._create()
        except (tf.errors.OpError, OSError):
            self._wait = min(self._wait * 2, MAX_RETRY_SECONDS)
            self._retry_at = time.monotonic() + self._wait
            return
        self._retry_at = None
        self._wait = RETRY_SECONDS
        self.reopened += 1
        _LOG.warning(
            "%s: writing to %r works again; logging resumes in a new event file",
            self.owner,
            self.logdir,
        )


def _last_event() -> bytes:
    """A small event (a wall time, nothing for readers to read) written last before each flush.

    TensorFlow's writer ignores the error of each record's write and reports only the flush's.
    A record larger than the file's buffer (a step of a large model's statistics, snapshots)
    is written at once, so a full disk would fail it unreported, and the flush would find
    nothing left to write; a small record after it waits in the buffer for the flush, which then
    meets the full disk and reports it."""
    return event_pb2.Event(wall_time=time.time()).SerializeToString()


def describe_error(error: BaseException) -> str:
    """The error's type and first line, without TensorFlow's ``{{function_node ...}}``."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _probe_directory(logdir: str) -> None:
    """Writes `PROBE_BYTES` to a new file in `logdir` (made again if it was deleted) and
    deletes it; raises on failure. Through `tf.io.gfile`, so that it works on every file system
    the event files can be on."""
    tf.io.gfile.makedirs(logdir)
    path = os.path.join(logdir, f".weightgates-probe-{uuid.uuid4().hex}")
    try:
        with tf.io.gfile.GFile(path, "wb") as probe:
            probe.write(b"\0" * PROBE_BYTES)
    finally:
        with contextlib.suppress(tf.errors.OpError, OSError):
            tf.io.gfile.remove(path)


def _destroy(resource: Any) -> None:
    """Deletes the writer resource when its writer goes, which writes out what is queued
    (errors ignored by TensorFlow); also at interpreter exit, where TensorFlow may be gone.

    A garbage collection can run this in the middle of building a graph (Keras tracing its
    training step): the op is made eagerly (`tf.init_scope`), as TensorFlow's own resource
    deleters do, since adding it to that graph would wait forever on the graph's lock, which
    the same thread holds."""
    with contextlib.suppress(Exception):
        with tf.init_scope(), tf.device("cpu:0"):
            tf.raw_ops.DestroyResourceOp(resource=resource, ignore_lookup_error=True)
