"""The `weightgates` command: import saved models into a log directory, and report per-gate
tables of a log directory.

    weightgates import MODEL... --logdir DIR
    weightgates import --model ARCHITECTURE CHECKPOINT... --logdir DIR [--probe FILE.npz]
    weightgates report LOGDIR [--step N|last] [--format table|csv|json|markdown] [--sort COLUMN]
        [--kind weights|gradients|activations]

Exit status: 0 on success; 1 when some file could not be imported (the others are) or a
report has nothing to show; 2 for bad arguments, with a one-line message naming the argument.
TensorFlow is imported only by `import`, once its arguments are checked and at least one file
exists, without the log lines it prints while loading (`quiet`); ``--help``, `report` and bad
arguments answer at once. Unless ``TF_CPP_MIN_LOG_LEVEL`` is set, TensorFlow's later native log
lines are shown from warnings up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from tensorboard_plugin_weightgates import __version__
from tensorboard_plugin_weightgates.cli import files, quiet, report
from tensorboard_plugin_weightgates.format import metadata, options

_IMPORT_EPILOG = """\
examples:
  weightgates import old/*.h5 new.keras --logdir logs
      each model becomes a run: logs/<file name>/train, at step 0
  weightgates import --model arch.keras ckpt/epoch_*.weights.h5 --logdir logs --name run1
      one run over steps, a step per checkpoint: the number in its file name (epoch_012 -> 12,
      ckpt-3000 -> 3000), or its position on the command line when names have no such number
  weightgates import models/*.keras --logdir logs --probe probe.npz --loss mse
      also the recurrent layers' gate activations on the same probe batch (np.savez('probe.npz',
      x=x, y=y)), with gradients through time from the targets y and the loss

Models: .keras, .h5 saved by Keras 3 or by Keras 2 / tf-keras, SavedModel directories saved by
tf-keras. Each file is loaded (compile=False) by the Keras that saved it, else by the other one.
Checkpoints: .weights.h5, tf-keras weight .h5 files, whole-model files, and TensorFlow
checkpoints (by prefix, .index file, or the directory of their 'checkpoint' file). A file that
cannot be imported is reported with the reason; the others are imported and the exit status is 1.
"""

_REPORT_EPILOG = """\
examples:
  weightgates report logs
  weightgates report logs --step 3000 --sort update_size --reverse
  weightgates report logs --format csv > gates.csv
  weightgates report logs --kind activations --sort right_saturated --reverse

--step N takes, per gate, the latest record at or before step N (the 'step' column says which);
a run with none is left out with a note on stderr. Units: indices of a gate's last axis; a unit
is dead when all its finite values are within the near-zero threshold of 0. Biases show n/a:
one value per unit, no column of incoming weights. Direction is '-' for a layer that is not
Bidirectional.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with errors on one line: the program, the message naming the argument, and
    where to find help; exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="weightgates",
        description="Per-gate weights of recurrent Keras layers: import saved models into a "
        "TensorBoard log directory, and report per-gate tables.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{import,report}", required=True)
    _add_import(commands)
    _add_report(commands)
    return parser


def _add_import(commands: Any) -> None:
    sub = commands.add_parser(
        "import",
        help="log saved models or checkpoint series as runs of a log directory",
        description="Logs saved Keras models (each a run) or a series of checkpoints of one\n"
        "architecture (one run over steps) into a log directory, with the per-gate statistics,\n"
        "snapshots and histograms that WeightGatesCallback writes.",
        epilog=_IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument(
        "files",
        nargs="+",
        metavar="MODEL",
        help="model files; with --model, the checkpoints to load into it",
    )
    sub.add_argument(
        "--logdir",
        required=True,
        type=_writable_directory,
        metavar="DIR",
        help="the log directory (created if missing)",
    )
    sub.add_argument(
        "--model",
        metavar="ARCHITECTURE",
        help="a model file giving the architecture: the files are then weights-only "
        "checkpoints of it, imported as one run with a step per checkpoint",
    )
    sub.add_argument(
        "--name",
        metavar="RUN",
        help="the run's name (one model, or a series); default: the file's name without its "
        "extension (with --model, the architecture's)",
    )
    sub.add_argument(
        "--overwrite", action="store_true", help="replace runs of the same name in the logdir"
    )
    sub.add_argument(
        "--custom-objects",
        metavar="MODULE",
        help="a Python file or importable module defining the model's custom layers or functions",
    )
    sub.add_argument(
        "--near-zero",
        type=_threshold,
        metavar="X",
        help="|w| at or below which a weight counts as zero "
        f"(default {options.DEFAULT_NEAR_ZERO:g}, as the callback)",
    )
    sub.add_argument(
        "--histogram-bins",
        type=_integer(2),
        metavar="N",
        help=f"buckets per gate histogram (default {options.DEFAULT_BINS})",
    )
    sub.add_argument(
        "--probe",
        type=_file,
        metavar="FILE.npz",
        help="also log the recurrent layers' gate activations on this probe batch: a NumPy "
        ".npz of x (or x_0, x_1...), optionally y and sample_weight",
    )
    sub.add_argument(
        "--loss",
        metavar="NAME",
        help="the Keras loss (mse, sparse_categorical_crossentropy...) of the probe's y, for "
        "gradients through time",
    )
    sub.add_argument(
        "--snapshot-max-cells",
        type=_integer(1),
        metavar="N",
        help="most cells kept per gate snapshot, larger gates are block-reduced "
        f"(default {options.DEFAULT_SNAPSHOT_MAX_CELLS})",
    )
    sub.add_argument(
        "--write-histograms",
        action="store_true",
        help="also write each gate as a TensorBoard histogram, for its Time Series tab (about "
        "doubles a run's size; the Weight Gates tab does not need them)",
    )
    sub.set_defaults(handler=_import, parser=sub)


def _add_report(commands: Any) -> None:
    sub = commands.add_parser(
        "report",
        help="a per-gate table of every run of a log directory",
        description="Prints per-gate statistics of every run of a log directory at one step:\n"
        "mean, std, L2 norm, fraction near zero, dead units, NaN and Inf counts, update size;\n"
        "with --kind activations, per gate and state of the recurrent layers on the probe\n"
        "batch: mean, std, saturated fractions and units.",
        epilog=_REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("logdir", type=_directory, metavar="LOGDIR", help="the log directory")
    sub.add_argument(
        "--step",
        type=_step,
        default=None,
        metavar="N|last",
        help="the step to report: per gate, the latest record at or before N (default: last)",
    )
    sub.add_argument("--format", choices=report.FORMATS, default="table", help="default: table")
    sub.add_argument(
        "--sort",
        choices=report.SORT_COLUMNS,
        metavar="COLUMN",
        help="one of: "
        + ", ".join(report.COLUMNS)
        + "; with --kind activations: "
        + ", ".join(report.ACTIVATION_COLUMNS),
    )
    sub.add_argument(
        "--reverse", action="store_true", help="descending order (rows without a value last)"
    )
    sub.add_argument(
        "--kind",
        choices=(*metadata.KINDS, metadata.ACTIVATIONS),
        default="weights",
        help="default: weights",
    )
    sub.set_defaults(handler=_report, parser=sub)


def _step(text: str) -> int | None:
    if text == "last":
        return None
    try:
        step = int(text)
    except ValueError:
        step = -1
    if step < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or 'last', got {text!r}")
    return step


def _integer(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _writable_directory(text: str) -> str:
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"not a directory: {text!r}")
    return text


def _file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _directory(text: str) -> str:
    """A log directory; a model or event file given instead is answered with what to run."""
    if os.path.isdir(text):
        return text
    kind = files.kind(text)
    if kind in files.MODEL_KINDS or kind == files.HDF5_LEGACY_WEIGHTS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is a Keras model file, not a log directory; import it into one first "
            f"('weightgates import {text} --logdir logs'), then run 'weightgates report logs'"
        )
    if kind in (files.HDF5_WEIGHTS, files.CHECKPOINT):
        raise argparse.ArgumentTypeError(
            f"{text!r} is a checkpoint of weights, not a log directory; import it with its "
            f"model ('weightgates import --model MODEL {text} --logdir logs'), then run "
            "'weightgates report logs'"
        )
    if kind == files.EVENT_FILE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is an event file; pass the log directory above it, "
            f"'weightgates report {os.path.dirname(text) or '.'}'"
        )
    if kind != files.MISSING:
        raise argparse.ArgumentTypeError(f"not a directory: {text!r}")
    raise argparse.ArgumentTypeError(f"no such directory: {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line `argv` (default: `sys.argv[1:]`); returns the exit status."""
    quiet_start = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    args.quiet_start = quiet_start
    return args.handler(args, args.parser)


def _import(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tensorboard_plugin_weightgates.cli import importer  # TensorFlow comes at first use

    if args.name is not None:
        try:
            importer.check_run_name(args.name)
        except ValueError as error:
            parser.error(f"argument --name: {error}")
        if args.model is None and len(args.files) > 1:
            parser.error(
                f"argument --name: names one run, but {len(args.files)} models were given; "
                "import them one at a time, or leave --name out"
            )
    if args.model is None:
        try:
            importer.check_distinct_runs(args.files, args.name)
        except ValueError as error:
            parser.error(f"argument MODEL: {error}")
    custom_objects = None
    if args.custom_objects:
        _import_tensorflow(args)  # before the user's module, which may import Keras
        try:
            custom_objects = importer.load_custom_objects(args.custom_objects)
        except ValueError as error:
            parser.error(f"argument --custom-objects: {error}")
    missing = _missing_sources(args)
    if missing is not None:
        return _report_missing(missing, args)
    _import_tensorflow(args)
    probe = _activation_probe(args, parser, importer)
    given = {
        "histogram_bins": args.histogram_bins,
        "near_zero": args.near_zero,
        "snapshot_max_cells": args.snapshot_max_cells,
        "write_histograms": args.write_histograms or None,
    }
    log_options = options.LogOptions(**{k: v for k, v in given.items() if v is not None})
    common = dict(
        logdir=args.logdir,
        name=args.name,
        overwrite=args.overwrite,
        options=log_options,
        custom_objects=custom_objects,
        probe=probe,
    )
    if args.model is not None:
        total = 1 + len(importer.checkpoint_files(args.files))
    else:
        total = len(args.files)
    progress = ProgressBar(total, sys.stderr)
    try:
        if args.model is not None:
            outcomes = importer.import_series(args.model, args.files, progress=progress, **common)
        else:
            outcomes = importer.import_models(args.files, progress=progress, **common)
    except ValueError as error:
        progress.close()
        parser.error(f"argument MODEL: {error}")
    progress.close()
    print(_summary(outcomes, args.logdir, series=args.model is not None), file=sys.stderr)
    return 0 if all(o.ok for o in outcomes) else 1


def _missing_sources(args: argparse.Namespace) -> list[str] | None:
    """The files named, when none of them exists (the architecture, for a series), so that
    the command can say so without importing TensorFlow; else None."""
    sources = [args.model] if args.model is not None else args.files
    if all(files.kind(path) == files.MISSING for path in sources):
        return sources
    return None


def _report_missing(paths: Sequence[str], args: argparse.Namespace) -> int:
    """Reports `paths` as not found, the way an import reports any file that fails."""
    total = len(paths) if args.model is None else 1 + len(args.files)
    for i, path in enumerate(paths, 1):
        print(f"[{i}/{total}] error: {path}: no such file or directory", file=sys.stderr)
    if args.model is not None:
        print(f"weightgates import: nothing imported into {args.logdir}", file=sys.stderr)
    else:
        print(
            f"weightgates import: 0 of {len(paths)} models imported into {args.logdir}; "
            f"failed: {', '.join(paths)}",
            file=sys.stderr,
        )
    return 1


def _import_tensorflow(args: argparse.Namespace) -> None:
    """Imports TensorFlow without its start-up log lines (unless the user set
    ``TF_CPP_MIN_LOG_LEVEL``), and keeps its and Keras' Python log lines (loading warnings,
    absl notices) off the progress display; failures are reported by the command itself."""
    quiet.import_tensorflow(args.quiet_start)
    import tensorflow as tf
    from absl import logging as absl_logging

    tf.get_logger().setLevel("ERROR")
    absl_logging.set_verbosity(absl_logging.ERROR)


def _activation_probe(args: argparse.Namespace, parser: argparse.ArgumentParser, importer: Any):
    """The import's `importer.ActivationProbe`, or None without --probe."""
    from tensorboard_plugin_weightgates.cli import probe

    if args.probe is None:
        if args.loss is not None:
            parser.error("argument --loss: is for the targets of --probe, which is not given")
        return None
    try:
        batch = probe.load_probe(args.probe)
    except ValueError as error:
        parser.error(f"argument --probe: {error}")
    if batch.y is not None and args.loss is None:
        parser.error(
            f"argument --probe: {args.probe} holds targets y; pass --loss (a Keras loss such "
            "as mse) for gradients through time, or leave y out of it"
        )
    if args.loss is not None:
        if batch.y is None:
            parser.error(f"argument --loss: {args.probe} holds no targets y to compare")
        try:
            importer.check_loss(args.loss)
        except ValueError as error:
            parser.error(f"argument --loss: {error}")
    return importer.ActivationProbe(batch, args.loss)


def _summary(outcomes: Sequence[Any], logdir: str, series: bool) -> str:
    if series:
        architecture, checkpoints = outcomes[0], outcomes[1:]
        if not architecture.ok:
            return f"weightgates import: nothing imported into {logdir}"
        logged = [o for o in checkpoints if o.ok]
        text = (
            f"weightgates import: {len(logged)} of {len(checkpoints)} checkpoints logged as run "
            f"{architecture.run!r} in {logdir}"
        )
        if logged:
            text += f" (steps {', '.join(str(o.step) for o in logged)})"
        failed = [o.path for o in checkpoints if not o.ok]
    else:
        runs = [o.run for o in outcomes if o.ok]
        text = f"weightgates import: {len(runs)} of {len(outcomes)} models imported into {logdir}"
        if runs:
            text += f" as runs {', '.join(runs)}"
        failed = [o.path for o in outcomes if not o.ok]
    if failed:
        text += f"; failed: {', '.join(failed)}"
    return text


def _outcome_line(outcome: Any) -> str:
    from tensorboard_plugin_weightgates.cli import importer

    if outcome.ok and outcome.step is None:
        return f"{outcome.path}: architecture of run {outcome.run!r} ({outcome.framework})"
    if outcome.ok:
        return f"{outcome.path}: run {outcome.run!r}, step {outcome.step} ({outcome.framework})"
    failure = outcome.error
    text = f"error: {failure.path}: {failure.reason}"
    if failure.custom_object:
        text += " (if your code defines it, pass that file or module with --custom-objects)"
    elif isinstance(failure, importer.RunExistsError):
        text += " (--overwrite replaces it, --name picks another name)"
    return text


class ProgressBar:
    """An import's progress on `stream`.

    On a terminal: one line redrawn in place (a bar, files done of `total`, the file being
    loaded), with failures printed above it as lines of their own. Elsewhere (a log file, a
    pipe): one plain line per file when it ends, failures included.
    """

    WIDTH = 20

    def __init__(self, total: int, stream: TextIO):
        self.total = max(total, 1)
        self.stream = stream
        self.done = 0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._current = ""

    def begin(self, path: str) -> None:
        self._current = os.path.basename(os.path.normpath(path))
        if self.tty:
            self._draw()

    def end(self, outcome: Any) -> None:
        self.done += 1
        if self.tty:
            if not outcome.ok:
                self.stream.write(f"\r\x1b[K{_outcome_line(outcome)}\n")
            self._draw()
        else:
            self.stream.write(f"[{self.done}/{self.total}] {_outcome_line(outcome)}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _draw(self) -> None:
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        text = f"[{bar}] {self.done}/{self.total} {self._current}"
        columns = shutil.get_terminal_size((80, 24)).columns
        self.stream.write(f"\r{text[: max(columns - 1, 10)]}\x1b[K")
        self.stream.flush()


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.kind == metadata.ACTIVATIONS and args.sort not in (None, *report.ACTIVATION_COLUMNS):
        parser.error(
            f"argument --sort: {args.sort!r} is not a column of --kind activations; choose from "
            + ", ".join(report.ACTIVATION_COLUMNS)
        )
    if args.kind != metadata.ACTIVATIONS and args.sort not in (None, *report.COLUMNS):
        parser.error(
            f"argument --sort: {args.sort!r} is a column of --kind activations only; choose "
            "from " + ", ".join(report.COLUMNS)
        )
    quiet.use_tensorboard_without_tensorflow()
    provider = report.data_provider(args.logdir)
    if args.kind == metadata.ACTIVATIONS:
        result = report.activation_rows(provider, step=args.step)
    else:
        result = report.gate_rows(provider, kind=args.kind, step=args.step)
    for run, note in sorted(result.notes.items()):
        print(f"weightgates report: run {run!r}: {note}", file=sys.stderr)
    if not result.rows:
        where = "" if args.step is None else f" at or before step {args.step}"
        print(
            f"weightgates report: no statistics of {args.kind}{where} in {args.logdir}",
            file=sys.stderr,
        )
        return 1
    rows = list(result.rows)
    if args.sort:
        rows = report.sort_rows(rows, args.sort, reverse=args.reverse, columns=result.columns)
    elif args.reverse:
        rows.reverse()
    try:
        sys.stdout.write(report.render(rows, args.format, result.columns))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (`| head`) left: stop quietly, and keep Python from failing on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
