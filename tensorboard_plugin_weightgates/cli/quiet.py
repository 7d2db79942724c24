"""Keeping TensorFlow's start-up log lines off the command line's output.

TensorFlow's native libraries log a few lines when they load and when the first device is set
up (oneDNN notes, "Could not find cuda drivers", "failed call to cuInit", the absl notice that
precedes them), written straight to file descriptor 2 before TensorFlow reads
``TF_CPP_MIN_LOG_LEVEL``, so no setting silences them. The command line imports TensorFlow
inside `native_logs_hidden`, which passes every other line through to stderr as it comes (so a
crash still shows what preceded it) and drops those. `weightgates report` needs no TensorFlow at
all: `use_tensorboard_without_tensorflow` makes TensorBoard read event files with its own reader.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import types
from collections.abc import Iterator

NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] |"
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: )"
)
"""A line of TensorFlow's native logging (absl's ``I0000 00:00:...  123 port.cc:153] ...``
format at info, warning or error level; fatal lines pass), absl's notice before its first
line, and the second line of TensorFlow's CPU-feature note."""


@contextlib.contextmanager
def native_logs_hidden(enabled: bool = True) -> Iterator[None]:
    """Drops `NATIVE_LOG_LINE` lines written to file descriptor 2 while this is active (by the
    import of TensorFlow and the set-up of its devices); every other line goes through to
    stderr at once. With `enabled` False, or where stderr has no file descriptor, nothing is
    changed."""
    try:
        target = sys.stderr.fileno() if enabled else -1
    except (AttributeError, OSError, ValueError):
        target = -1
    if target != 2:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    forwarder = threading.Thread(target=_forward, args=(read_end, saved), daemon=True)
    forwarder.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # Closes the pipe's last write end: the forwarder sees its end.
        forwarder.join(timeout=10)  # Unless a child process holds a copy of that end.
        if not forwarder.is_alive():
            os.close(saved)


def _forward(read_end: int, destination: int) -> None:
    with os.fdopen(read_end, "rb") as pipe:
        for line in pipe:
            if not NATIVE_LOG_LINE.match(line):
                os.write(destination, line)


def import_tensorflow(quiet: bool = True) -> None:
    """Imports TensorFlow and sets up its devices, with `native_logs_hidden` when `quiet`, so
    that the lines they log at that time are not shown; later ones are (at the level of
    ``TF_CPP_MIN_LOG_LEVEL``)."""
    if "tensorflow" in sys.modules:
        return
    with native_logs_hidden(quiet):
        import tensorflow as tf

        tf.config.list_logical_devices()


def use_tensorboard_without_tensorflow() -> None:
    """Has TensorBoard read event files with its own Python reader (its ``tensorflow_stub``)
    instead of importing TensorFlow, unless TensorFlow is imported already.

    TensorBoard takes TensorFlow when ``tensorboard.compat.tf`` is first used, unless the
    module ``tensorboard.compat.notf`` can be imported, its marker for "run without
    TensorFlow" (its build defines it for TensorBoard without TensorFlow). The stub reads local
    files, which is all `weightgates report` reads; should a TensorBoard release drop the
    marker, TensorFlow is imported as before, and the report is the same, only slower."""
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("notf"))
