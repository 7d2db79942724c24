"""Importing saved Keras models and checkpoint series into a log directory, as weightgates runs.

Models trained without `WeightGatesCallback`, often long ago and with Keras 2, become runs that
the Weight Gates tab and `weightgates report` compare like any other: each is logged by the same
writer as the callback (`summary.GateLogger`: per-gate statistics, snapshots and histograms) into
``logdir/<run>/train``, the directory layout of the callback, so TensorBoard names the run
``<run>/train`` either way and imported models line up with trained ones.

* `import_models`: each model file becomes a run of its own, logged at step 0.
* `import_series`: weights-only checkpoints loaded one after the other into one architecture
  become one run, a step per checkpoint (`checkpoint_steps`), with update sizes between them.

With an `ActivationProbe`, each logged step also gets the recurrent layers' gate activations on
the probe batch (and, with targets and a loss, their gradients through time), as
``WeightGatesCallback(activations=...)`` logs them, so models trained elsewhere are compared on
the same inputs.

Which Keras loads a file: Keras 3 cannot rebuild recurrent layers saved by Keras 2 / tf-keras
(``LSTM(time_major=...)`` is refused), and tf-keras cannot read every Keras 3 file, so a file is
loaded by the Keras that saved it (the ``keras_version`` it records), then by the other one.
tf-keras (``tf_keras``) is imported beside Keras 3 in the same process; a SavedModel directory
can only be loaded by tf-keras. Every model is loaded with ``compile=False``: only weights are
read, and no optimizer, loss or metric needs to be deserialized.

TensorFlow (and Keras) are imported when a file is first loaded or written, not with this
module, so that the command line can check its arguments first (`cli.main`).

A run is written to a hidden staging directory in `logdir` and moved into place only when it is
complete, so a failed import leaves nothing behind and an existing run is never mixed with a new
one: it is refused (`RunExistsError`) unless ``overwrite=True``, which replaces it whole.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import json
import os
import re
import shutil
import sys
import tempfile
import typing
import uuid
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import h5py

from tensorboard_plugin_weightgates.cli import files
from tensorboard_plugin_weightgates.cli.probe import ProbeBatch
from tensorboard_plugin_weightgates.format.options import LogOptions

if TYPE_CHECKING:
    from tensorboard_plugin_weightgates.keras_writer.activation_logger import ActivationLogger
    from tensorboard_plugin_weightgates.keras_writer.summary import GateLogger

RUN_SUBDIRECTORY = "train"
"""Where a run's records go inside its directory: the callback's (and Keras' TensorBoard
callback's) training subdirectory."""

KERAS_3 = "Keras 3"
TF_KERAS = "tf-keras"

_STEP_WORD = re.compile(
    r"(?<![a-z])(?:epochs?|steps?|ckpt|checkpoint|iter|iteration|batch)[-_.]?(\d+)", re.IGNORECASE
)
"""A number named as a step in a checkpoint's file name: ``epoch_012``, ``ckpt-3000``."""

_MODEL_SUFFIXES = (".weights.h5", ".weights.hdf5", ".h5", ".hdf5", ".keras", ".index")
_TF_DATA_SUFFIX = re.compile(r"\.data-\d+-of-\d+$")
_CUSTOM_OBJECT_ERROR = re.compile(
    r"(?:Could not locate (?:class|function)|Unknown (?:layer|object|activation|loss|metric|"
    r"initializer|regularizer|constraint|optimizer)):? '([^']+)'"
)
"""Keras' messages for a class or function it cannot find; Keras 3 puts them deep inside a
longer message about the enclosing model."""


class ImportFailure(Exception):
    """A file that could not be imported. `reason` is one line a user can act on.

    `custom_object` is True when the model uses a class or function that Keras could not find:
    passing the module that defines it (`load_custom_objects`) may fix it.
    """

    def __init__(self, path: str, reason: str, custom_object: bool = False):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.custom_object = custom_object


class RunExistsError(ImportFailure):
    """The run's directory exists in the log directory and overwriting was not asked for."""


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model and the Keras that loaded it (`KERAS_3` or `TF_KERAS`)."""

    model: Any
    framework: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one file: logged as `run` at `step`, or not, and why (`error`).

    The architecture of a series has `step` None: it gives the layers, not logged weights.
    """

    path: str
    run: str | None = None
    step: int | None = None
    framework: str | None = None
    error: ImportFailure | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclasses.dataclass(frozen=True)
class ActivationProbe:
    """A probe batch for the imported models' activations, and the name of the Keras loss
    (``"mse"``) its targets are compared with, for gradients through time (None: no gradients;
    `check_loss` validates it)."""

    batch: ProbeBatch
    loss: str | None = None

    def logger(self, loaded: LoadedModel, writer: Any, options: LogOptions) -> ActivationLogger:
        from tensorboard_plugin_weightgates.keras_writer.activation_logger import ActivationLogger

        loss = None if self.loss is None else _keras(loaded.framework).losses.get(self.loss)
        return ActivationLogger(loaded.model, writer, options=options, loss=loss)

    def log(self, logger: ActivationLogger, step: int) -> None:
        batch = self.batch
        y = batch.y if self.loss is not None else None
        logger.log(step, batch.x, y, batch.sample_weight, statistics=True, maps=True)


def check_loss(name: str) -> str:
    """Returns `name` if Keras knows it as a loss (``mse``, ``sparse_categorical_crossentropy``).

    Raises:
      ValueError: naming the loss.
    """
    import keras

    try:
        keras.losses.get(name)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name!r} is not a Keras loss: {_one_line(error)}") from None
    return name


class Progress(Protocol):
    """Told when each file starts loading and how it ended, to show progress."""

    def begin(self, path: str) -> None: ...

    def end(self, outcome: Outcome) -> None: ...


class _Silent:
    def begin(self, path: str) -> None:
        pass

    def end(self, outcome: Outcome) -> None:
        pass


def default_run_name(path: str) -> str:
    """The run a file is imported as: its name without the Keras or checkpoint extension
    (``models/lstm_v1.h5`` -> ``lstm_v1``, ``export/`` -> ``export``)."""
    return _stem(path)


def check_run_name(name: str) -> str:
    """Returns `name` if it can be a run directory directly under the log directory.

    Raises:
      ValueError: empty, hidden (leading dot, the staging directories' names), or a path.
    """
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise ValueError(
            f"run name must be a non-empty directory name without '/' or a leading '.', "
            f"got {name!r}"
        )
    return name


def checkpoint_files(paths: Iterable[str]) -> list[str]:
    """The checkpoints that `paths` name, each once, in the order given.

    A TensorFlow checkpoint is named by its prefix; its ``PREFIX.index`` and
    ``PREFIX.data-*`` files (as a shell glob lists them) stand for the prefix, and a directory
    with a ``checkpoint`` state file for every checkpoint the state lists. Anything else is kept
    as given, to fail with its own reason when loaded.
    """
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "checkpoint")):
            import tensorflow as tf

            state = tf.train.get_checkpoint_state(path)
            expanded = list(state.all_model_checkpoint_paths) if state else [path]
        elif path.endswith(".index"):
            expanded = [path[: -len(".index")]]
        else:
            expanded = [_TF_DATA_SUFFIX.sub("", path)]
        for item in expanded:
            if item not in files:
                files.append(item)
    return files


def checkpoint_steps(paths: Sequence[str]) -> list[int]:
    """The step of each checkpoint of a series, from the numbers in the file names.

    In order of preference: the number after a step word in every name (``epoch_012``,
    ``ckpt-3000``, ``step3``); else, when all names hold the same count of numbers, the first
    number that differs between them (``weights.03-0.41.h5``, ``run2_e10.h5``; a lone file's
    only number); else the position in `paths` (0, 1, 2...). Numbers that would give two
    checkpoints the same step are not used.
    """
    stems = [_stem(path) for path in paths]
    for steps in (_named_steps(stems), _varying_numbers(stems)):
        if steps is not None and len(set(steps)) == len(steps):
            return steps
    return list(range(len(paths)))


def _named_steps(stems: Sequence[str]) -> list[int] | None:
    matches = [_STEP_WORD.findall(stem) for stem in stems]
    if not all(matches):
        return None
    return [int(found[-1]) for found in matches]


def _varying_numbers(stems: Sequence[str]) -> list[int] | None:
    numbers = [[int(n) for n in re.findall(r"\d+", stem)] for stem in stems]
    if len({len(found) for found in numbers}) != 1 or not numbers[0]:
        return None
    if len(stems) == 1:
        return numbers[0] if len(numbers[0]) == 1 else None
    for column in zip(*numbers):
        if len(set(column)) > 1:
            return list(column)
    return None


def _stem(path: str) -> str:
    name = os.path.basename(os.path.normpath(path))
    name = _TF_DATA_SUFFIX.sub("", name)
    for suffix in _MODEL_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def load_custom_objects(spec: str) -> dict[str, Any]:
    """The classes and functions defined in a Python file (``layers.py``) or importable module
    (``mypackage.layers``), by name, to pass as Keras' ``custom_objects``.

    Importing the module also runs its ``register_keras_serializable`` decorators.

    Raises:
      ValueError: the file or module cannot be imported (the message says why).
    """
    try:
        if spec.endswith(".py") or os.path.isfile(spec):
            name = f"weightgates_custom_objects_{_stem(spec).replace('.', '_')}"
            module_spec = importlib.util.spec_from_file_location(name, spec)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"not a Python file: {spec}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except Exception as error:
        raise ValueError(f"cannot import {spec!r}: {_one_line(error)}") from error
    return {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module.__name__
    }


def load_model(path: str, custom_objects: Mapping[str, Any] | None = None) -> LoadedModel:
    """Loads a whole model (architecture and weights) without compiling it.

    `path` is a ``.keras`` archive, a full-model HDF5 file (``.h5``; Keras 3 or Keras 2 /
    tf-keras) or a SavedModel directory written by tf-keras (``model.save(directory)``, with
    its ``keras_metadata.pb``), whatever its extension says: a file is read as what its content
    is (`files.kind`). The Keras that saved the file is tried first, then the other one.

    Raises:
      ImportFailure: the file does not exist, is not a whole model (weights only, a plain
        TensorFlow SavedModel), or neither Keras loads it; the reason is the first Keras' error.
    """
    file_kind = files.kind(path)
    errors = []
    for framework in _frameworks(path, file_kind):
        try:
            with warnings.catch_warnings(), files.readable_by_keras(path, file_kind) as readable:
                warnings.simplefilter("ignore")
                model = _keras(framework).models.load_model(
                    readable, compile=False, custom_objects=dict(custom_objects or {})
                )
        except Exception as failure:
            errors.append((framework, failure))
            continue
        if not hasattr(model, "layers"):
            raise ImportFailure(
                path, f"{framework} loads it as {type(model).__name__}, not a model"
            )
        return LoadedModel(model, framework)
    framework, error = errors[0]
    missing = _CUSTOM_OBJECT_ERROR.search(str(error))
    if missing:
        reason = (
            f"{framework} cannot load it: it uses {missing.group(1)!r}, a custom class or "
            "function that is not registered with Keras"
        )
    else:
        reason = f"{framework} cannot load it: {_one_line(error)}"
        if len(errors) > 1:
            reason += f" ({errors[1][0]} failed too)"
    raise ImportFailure(path, reason, custom_object=missing is not None)


def _frameworks(path: str, file_kind: str) -> list[str]:
    """The Kerases to try on `path`, a file of `file_kind`, the one that saved it first."""
    if file_kind == files.SAVED_MODEL:
        if os.path.isfile(os.path.join(path, "keras_metadata.pb")):
            return [TF_KERAS]
        raise ImportFailure(
            path,
            "this SavedModel has no Keras metadata (written by model.export() or "
            "tf.saved_model.save()), so its layers cannot be rebuilt; import the model's "
            ".keras or .h5 file instead",
        )
    if file_kind == files.HDF5_MODEL:
        with h5py.File(path, "r") as file:
            version = _text(file.attrs.get("keras_version"))
    elif file_kind == files.KERAS_ARCHIVE:
        version = _zip_keras_version(path)
    else:
        raise ImportFailure(path, _not_a_model(path, file_kind))
    if version.startswith(("1.", "2.")):
        return [TF_KERAS, KERAS_3]
    return [KERAS_3, TF_KERAS]


def _not_a_model(path: str, file_kind: str) -> str:
    """Why a file of `file_kind` cannot be imported as a model, and what to do instead."""
    if file_kind == files.MISSING:
        return "no such file or directory"
    if file_kind == files.CHECKPOINT:
        what = (
            "a TensorFlow checkpoint"
            if not os.path.exists(path)
            else "a TensorFlow checkpoint file"
        )
        return _weights_only(what)
    if file_kind in (files.HDF5_WEIGHTS, files.HDF5_LEGACY_WEIGHTS):
        return _weights_only("an HDF5 file of weights")
    if file_kind == files.DIRECTORY:
        return "a directory that is not a SavedModel (no saved_model.pb)"
    if file_kind == files.EVENT_FILE:
        return (
            "a TensorBoard event file, not a model; 'weightgates report' reads the log "
            "directory it is in"
        )
    return (
        "not a Keras model: neither an HDF5 file (.h5), a .keras archive nor a SavedModel directory"
    )


def _weights_only(what: str) -> str:
    return (
        f"{what} holds weights only, no architecture; import it as a checkpoint of the model "
        "whose architecture it fits"
    )


def _zip_keras_version(path: str) -> str:
    """The Keras version recorded in a ``.keras`` archive's ``metadata.json`` ("" if none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return str(json.loads(archive.read("metadata.json")).get("keras_version", ""))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return ""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _keras(framework: str) -> Any:
    if framework == TF_KERAS:
        import tf_keras

        return tf_keras
    import keras

    return keras


def load_weights(loaded: LoadedModel, path: str) -> None:
    """Loads one checkpoint into `loaded.model`, every variable or none is logged.

    `path` is a weights file (``.weights.h5``, a tf-keras ``.h5``, a whole-model ``.h5`` or
    ``.keras``), read by the model's own ``load_weights``, or a TensorFlow checkpoint prefix,
    restored with the model as the checkpoint's root (tf-keras' ``save_weights``) or as its
    ``model`` (``tf.train.Checkpoint(model=model)``): every variable of the model must get a
    value.

    Raises:
      ImportFailure: missing or unreadable, or it does not fit the model.
    """
    if os.path.isfile(path + ".index"):
        _restore_checkpoint(loaded.model, path)
        return
    file_kind = files.kind(path)
    if file_kind == files.MISSING:
        raise ImportFailure(path, "no such file or directory")
    if file_kind not in (
        files.KERAS_ARCHIVE,
        files.HDF5_MODEL,
        files.HDF5_WEIGHTS,
        files.HDF5_LEGACY_WEIGHTS,
    ):
        raise ImportFailure(
            path,
            "not a weights file: expected .weights.h5, .h5, .keras or a TensorFlow checkpoint "
            "(PREFIX.index and PREFIX.data-*)",
        )
    try:
        with warnings.catch_warnings(), files.readable_by_keras(path, file_kind) as readable:
            warnings.simplefilter("ignore")
            loaded.model.load_weights(readable)
    except Exception as error:
        raise ImportFailure(
            path, f"{loaded.framework} cannot load it into the model: {_one_line(error)}"
        ) from error


def _restore_checkpoint(model: Any, prefix: str) -> None:
    import tensorflow as tf

    problems = []
    for where, checkpoint in (
        ("as its root", lambda: tf.train.Checkpoint(root=model)),
        ("as its 'model'", lambda: tf.train.Checkpoint(model=model)),
    ):
        try:
            status = checkpoint().read(prefix)
            status.expect_partial()
            status.assert_existing_objects_matched()
            return
        except AssertionError:
            problems.append(where)
        except Exception as error:
            raise ImportFailure(
                prefix, f"cannot read the checkpoint: {_one_line(error)}"
            ) from error
    raise ImportFailure(
        prefix,
        "the checkpoint's variables do not match the model's (tried the model "
        f"{' and '.join(problems)}); a checkpoint written by tf-keras needs an architecture that "
        "tf-keras loads (its .h5 or SavedModel)",
    )


def import_models(
    paths: Sequence[str],
    logdir: str,
    name: str | None = None,
    overwrite: bool = False,
    options: LogOptions | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    probe: ActivationProbe | None = None,
) -> list[Outcome]:
    """Imports each model file as a run of its own, logged at step 0.

    Args:
      paths: model files (see `load_model`).
      logdir: the log directory; runs go to ``logdir/<run>/train``. Created if missing.
      name: the run's name when importing one file; default `default_run_name`.
      overwrite: replace a run of the same name; otherwise such a file fails with
        `RunExistsError` and the run is left as it is.
      options: what to log per gate (bins, near-zero threshold, snapshot size).
      custom_objects: passed to Keras' ``load_model`` (see `load_custom_objects`).
      progress: told when each file begins and ends.
      probe: also log the recurrent layers' activations on this probe.

    Returns:
      One `Outcome` per file, in the order of `paths`. A file that fails does not stop the
      others.

    Raises:
      ValueError: `name` with several files, or two files that would be the same run.
    """
    runs = check_distinct_runs(paths, name)
    progress = progress or _Silent()
    outcomes = []
    for path, run in zip(paths, runs):
        progress.begin(path)
        outcome = _import_model(path, run, logdir, overwrite, options, custom_objects, probe)
        progress.end(outcome)
        outcomes.append(outcome)
    return outcomes


def check_distinct_runs(paths: Sequence[str], name: str | None = None) -> list[str]:
    """The run each of `paths` is imported as by `import_models` (`name` for a single file,
    else `default_run_name`).

    Raises:
      ValueError: `name` with several files, a bad `name`, or two files that would be the same
        run.
    """
    if name is not None and len(paths) != 1:
        raise ValueError(f"name is for importing one file, got {len(paths)} files")
    runs = [check_run_name(name) if name else default_run_name(path) for path in paths]
    first: dict[str, str] = {}
    for path, run in zip(paths, runs):
        if run in first:
            raise ValueError(
                f"{first[run]} and {path} would both be run {run!r}; import them one at a time "
                "with a name each"
            )
        first[run] = path
    return runs


def _import_model(path, run, logdir, overwrite, options, custom_objects, probe) -> Outcome:
    try:
        _check_free(logdir, run, path, overwrite)
        loaded = load_model(path, custom_objects)
        with _StagedRun(logdir, run, overwrite, path) as staged:
            logger = _logger(loaded, staged.writer, options, path)
            logger.log_weights(0, statistics=True, snapshot_values=True)
            if probe is not None:
                probe.log(probe.logger(loaded, staged.writer, logger.options), 0)
            staged.commit()
    except ImportFailure as failure:
        return Outcome(path, run=run, error=failure)
    except Exception as error:  # One model the writer cannot split must not stop the others.
        return Outcome(path, run=run, error=ImportFailure(path, _one_line(error)))
    return Outcome(path, run=run, step=0, framework=loaded.framework)


def import_series(
    architecture: str,
    checkpoints: Sequence[str],
    logdir: str,
    name: str | None = None,
    overwrite: bool = False,
    options: LogOptions | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    probe: ActivationProbe | None = None,
) -> list[Outcome]:
    """Imports weights-only checkpoints of one architecture as one run, a step per checkpoint.

    The architecture (a model file, see `load_model`) is loaded once; each checkpoint (see
    `checkpoint_files`, `load_weights`) is loaded into it in the order of its step
    (`checkpoint_steps` of the checkpoints that exist) and logged, so update sizes compare
    consecutive checkpoints that loaded. The run is kept if at least one checkpoint was
    logged.

    Args:
      architecture: the model file that gives the layers.
      checkpoints: the checkpoints' paths (TensorFlow checkpoints by prefix, index or data file,
        or by the directory of their ``checkpoint`` state file).
      name: the run's name; default: the architecture's `default_run_name`.
      Others as in `import_models`.

    Returns:
      The architecture's `Outcome` (`step` None), then one per checkpoint in step order (files
      that do not exist last). When the architecture fails, its outcome alone.
    """
    run = check_run_name(name) if name else default_run_name(architecture)
    files = checkpoint_files(checkpoints)
    present = [f for f in files if os.path.exists(f) or os.path.exists(f + ".index")]
    steps = dict(zip(present, checkpoint_steps(present)))
    progress = progress or _Silent()
    progress.begin(architecture)
    staged = None
    try:
        _check_free(logdir, run, architecture, overwrite)
        loaded = load_model(architecture, custom_objects)
        staged = _StagedRun(logdir, run, overwrite, architecture)
        logger = _logger(loaded, staged.writer, options, architecture)
        activations = None if probe is None else probe.logger(loaded, staged.writer, logger.options)
    except Exception as error:  # Reported as the architecture's failure, like a model's.
        if staged is not None:
            staged.discard()
        if not isinstance(error, ImportFailure):
            error = ImportFailure(architecture, _one_line(error))
        outcome = Outcome(architecture, run=run, error=error)
        progress.end(outcome)
        return [outcome]
    outcomes = [Outcome(architecture, run=run, framework=loaded.framework)]
    progress.end(outcomes[0])
    with staged:
        missing = [f for f in files if f not in steps]
        for path in sorted(steps, key=lambda path: steps[path]) + missing:
            progress.begin(path)
            outcome = _import_checkpoint(loaded, logger, path, run, steps.get(path))
            if outcome.ok and probe is not None and activations is not None:
                probe.log(activations, typing.cast(int, outcome.step))
            progress.end(outcome)
            outcomes.append(outcome)
        if any(o.ok for o in outcomes[1:]):
            staged.commit()
    return outcomes


def _import_checkpoint(
    loaded: LoadedModel, logger: GateLogger, path: str, run: str, step: int | None
) -> Outcome:
    if step is None:
        return Outcome(path, run=run, error=ImportFailure(path, "no such file or directory"))
    try:
        load_weights(loaded, path)
        logger.log_weights(step, statistics=True, snapshot_values=True)
    except ImportFailure as failure:
        return Outcome(path, run=run, step=step, error=failure)
    except Exception as error:  # One bad checkpoint must not stop the series.
        return Outcome(path, run=run, step=step, error=ImportFailure(path, _one_line(error)))
    return Outcome(path, run=run, step=step, framework=loaded.framework)


def _logger(loaded: LoadedModel, writer, options: LogOptions | None, path: str) -> GateLogger:
    from tensorboard_plugin_weightgates.keras_writer.summary import GateLogger

    logger = GateLogger(loaded.model, writer, options=options or LogOptions())
    if not logger.groups:
        raise ImportFailure(path, "the model has no layer with weights")
    return logger


def _check_free(logdir: str, run: str, path: str, overwrite: bool) -> None:
    target = os.path.join(logdir, run)
    if not overwrite and os.path.lexists(target):
        raise RunExistsError(
            path,
            f"run {run!r} exists in {logdir} ({target}); choose another name or overwrite it",
        )


class _StagedRun:
    """A run written to a hidden directory of the log directory, moved to ``logdir/<run>`` by
    `commit` (replacing the old run when overwriting), and deleted if not committed."""

    def __init__(self, logdir: str, run: str, overwrite: bool, path: str):
        self.target = os.path.join(logdir, run)
        self.overwrite = overwrite
        self.path = path
        os.makedirs(logdir, exist_ok=True)
        self.staging = tempfile.mkdtemp(prefix=f".{run}.", suffix=".importing", dir=logdir)
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(os.path.join(self.staging, RUN_SUBDIRECTORY))

    def __enter__(self) -> _StagedRun:
        return self

    def commit(self) -> None:
        self.writer.close()
        old = None
        if os.path.lexists(self.target):
            if not self.overwrite:
                raise RunExistsError(
                    self.path, f"run directory {self.target} appeared while importing"
                )
            old = f"{self.staging}.replaced-{uuid.uuid4().hex[:8]}"
            os.rename(self.target, old)
        os.rename(self.staging, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        self.writer.close()
        if os.path.exists(self.staging):
            shutil.rmtree(self.staging, ignore_errors=True)

    def __exit__(self, *exc_info) -> None:
        self.discard()


def _one_line(error: BaseException) -> str:
    """An error's message on one line of at most 300 characters: its first line (Keras' run
    over many), and the next one too when the first only introduces it ("...:")."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = " ".join(lines[:2] if lines and lines[0].endswith(":") else lines[:1])
    text = text or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
