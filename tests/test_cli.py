"""The `weightgates` command line: help, argument errors, imports that partly fail, re-imports,
checkpoint series and the progress display. Commands run in this process through `cli.main`,
as the console script calls it; the console script itself is run once, for its help.

Not marked `keras`: the tf-keras file comes from `test_importer`'s own subprocess.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from test_importer import CUSTOM_LAYERS, legacy_files, model_files  # noqa: E402

from tensorboard_plugin_weightgates.cli import importer, report  # noqa: E402
from tensorboard_plugin_weightgates.cli import main as cli  # noqa: E402


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`weightgates argv`: exit status, stdout and its own stderr (earlier output dropped)."""
    capsys.readouterr()
    try:
        status = cli.main(list(argv))
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def report_runs(logdir: str) -> dict[str, set[int]]:
    rows = report.gate_rows(report.data_provider(logdir)).rows
    runs: dict[str, set[int]] = {}
    for row in rows:
        runs.setdefault(row.run, set()).add(row.step)
    return runs


def test_console_script_help_answers_without_tensorflow():
    script = os.path.join(os.path.dirname(sys.executable), "weightgates")
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "{import,report}" in done.stdout
    check = (
        "import sys\n"
        "from tensorboard_plugin_weightgates.cli import main as cli\n"
        "for argv in (['--help'], ['import', '--help'], ['report', '--help']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--help"], ["import", "report", "--version"]),
        (["import", "--help"], ["--logdir", "--model", "--name", "--overwrite", "epoch_012"]),
        (["report", "--help"], ["--step", "--format", "--sort", "--kind", "at or before"]),
    ],
)
def test_every_command_has_help(capsys, argv, words):
    status, out, _ = run(capsys, *argv)
    assert status == 0
    for word in words:
        assert word in out


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: {import,report}"),
        (["frobnicate"], "argument {import,report}: invalid choice: 'frobnicate'"),
        (["report"], "the following arguments are required: LOGDIR"),
        (["report", "/no/such/logdir"], "argument LOGDIR: no such directory: '/no/such/logdir'"),
        (["report", "FILE"], "argument LOGDIR: not a directory"),
        (
            ["report", "MODEL"],
            "is a Keras model file, not a log directory; import it into one first "
            "('weightgates import",
        ),
        (["report", "WEIGHTS"], "is a checkpoint of weights, not a log directory"),
        (
            ["report", "LOGDIR", "--step", "x"],
            "argument --step: expected an integer >= 0 or 'last'",
        ),
        (["report", "LOGDIR", "--step", "-1"], "argument --step: expected an integer >= 0"),
        (["report", "LOGDIR", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["report", "LOGDIR", "--sort", "size"], "argument --sort: invalid choice: 'size'"),
        (["report", "LOGDIR", "--kind", "bias"], "argument --kind: invalid choice: 'bias'"),
        (["import", "a.keras"], "the following arguments are required: --logdir"),
        (["import", "--logdir", "FILE", "a.keras"], "argument --logdir: not a directory"),
        (["import", "--logdir", "LOGDIR"], "the following arguments are required: MODEL"),
        (["import", "--logdir", "LOGDIR", "a.keras", "--bogus"], "unrecognized arguments: --bogus"),
        (
            ["import", "--logdir", "LOGDIR", "--name", "x", "a.keras", "b.keras"],
            "argument --name: names one run, but 2 models were given",
        ),
        (
            ["import", "--logdir", "LOGDIR", "--name", "../x", "a.keras"],
            "argument --name: run name",
        ),
        (
            ["import", "--logdir", "LOGDIR", "--near-zero", "-1", "a.keras"],
            "argument --near-zero: expected a finite number >= 0, got '-1'",
        ),
        (
            ["import", "--logdir", "LOGDIR", "--histogram-bins", "1", "a.keras"],
            "argument --histogram-bins: expected an integer >= 2, got '1'",
        ),
        (
            ["import", "--logdir", "LOGDIR", "--snapshot-max-cells", "many", "a.keras"],
            "argument --snapshot-max-cells: expected an integer >= 1",
        ),
        (
            ["import", "--logdir", "LOGDIR", "--custom-objects", "no_such_module_xyz", "a.keras"],
            "argument --custom-objects: cannot import 'no_such_module_xyz'",
        ),
        (
            ["import", "--logdir", "LOGDIR", "one/m.keras", "two/m.keras"],
            "argument MODEL: one/m.keras and two/m.keras would both be run 'm'",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_argument(capsys, tmp_path, argv, message):
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    (tmp_path / "file").write_text("")
    files = model_files()
    given = {
        "LOGDIR": logdir,
        "FILE": str(tmp_path / "file"),
        "MODEL": files.path("a.keras"),
        "WEIGHTS": files.path("epoch_003.weights.h5"),
    }
    argv = [given.get(arg, arg) for arg in argv]
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.endswith("\n")
    assert err.startswith("weightgates")
    assert message in err
    assert err.rstrip().endswith("--help')")
    assert os.listdir(logdir) == []


def test_import_goes_past_files_that_fail_and_exits_1(capsys, tmp_path):
    files, legacy = model_files(), legacy_files()
    logdir = str(tmp_path / "logs")
    good, corrupt = files.path("a.keras"), files.path("corrupt.h5")
    old, missing = legacy.path("legacy.h5"), files.path("missing.keras")
    status, out, err = run(capsys, "import", good, corrupt, old, missing, "--logdir", logdir)
    assert (status, out) == (1, "")
    lines = err.splitlines()
    assert lines[:4] == [
        f"[1/4] {good}: run 'a', step 0 (Keras 3)",
        f"[2/4] error: {corrupt}: not a Keras model: neither an HDF5 file (.h5), a .keras "
        "archive nor a SavedModel directory",
        f"[3/4] {old}: run 'legacy', step 0 (tf-keras)",
        f"[4/4] error: {missing}: no such file or directory",
    ]
    assert lines[4:] == [
        f"weightgates import: 2 of 4 models imported into {logdir} as runs a, legacy; "
        f"failed: {corrupt}, {missing}"
    ]
    assert sorted(os.listdir(logdir)) == ["a", "legacy"]
    assert report_runs(logdir) == {"a/train": {0}, "legacy/train": {0}}


def test_import_again_is_refused_and_overwrite_replaces_the_run(capsys, tmp_path):
    files = model_files()
    logdir = str(tmp_path / "logs")
    assert run(capsys, "import", files.path("a.keras"), "--logdir", logdir)[0] == 0
    first = os.listdir(os.path.join(logdir, "a", "train"))
    status, _, err = run(capsys, "import", files.path("a.keras"), "--logdir", logdir)
    assert status == 1
    assert err.splitlines()[0] == (
        f"[1/1] error: {files.path('a.keras')}: run 'a' exists in {logdir} "
        f"({os.path.join(logdir, 'a')}); choose another name or overwrite it "
        "(--overwrite replaces it, --name picks another name)"
    )
    assert os.listdir(os.path.join(logdir, "a", "train")) == first
    status, _, _ = run(capsys, "import", files.path("a.keras"), "--logdir", logdir, "--overwrite")
    assert status == 0
    assert os.listdir(logdir) == ["a"]
    assert len(os.listdir(os.path.join(logdir, "a", "train"))) == 1
    assert os.listdir(os.path.join(logdir, "a", "train")) != first
    assert report_runs(logdir) == {"a/train": {0}}


def test_checkpoint_series_becomes_one_run_over_steps(capsys, tmp_path):
    files = model_files()
    logdir = str(tmp_path / "logs")
    checkpoints = [files.path(f"epoch_{e:03d}.weights.h5") for e in (12, 3, 10)]
    status, _, err = run(
        capsys, "import", "--model", files.path("arch.keras"), *checkpoints, "--logdir", logdir
    )
    assert status == 0
    lines = err.splitlines()
    assert lines[0] == f"[1/4] {files.path('arch.keras')}: architecture of run 'arch' (Keras 3)"
    assert [line.split(": ", 1)[1] for line in lines[1:4]] == [
        "run 'arch', step 3 (Keras 3)",
        "run 'arch', step 10 (Keras 3)",
        "run 'arch', step 12 (Keras 3)",
    ]
    assert lines[4] == (
        f"weightgates import: 3 of 3 checkpoints logged as run 'arch' in {logdir} (steps 3, 10, 12)"
    )
    status, out, _ = run(capsys, "report", logdir, "--step", "10", "--format", "csv")
    assert status == 0
    header, first = out.splitlines()[:2]
    values = dict(zip(header.split(","), first.split(",")))
    assert (values["run"], values["step"]) == ("arch/train", "10")
    assert float(values["update_size"]) > 0


def test_custom_objects_failure_says_how_to_fix_it(capsys, tmp_path):
    source = tmp_path / "custom_layers.py"
    source.write_text(CUSTOM_LAYERS)
    scale = importer.load_custom_objects(str(source))["Scale"]
    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, scale(name="scale")(keras.layers.GRU(2, name="gru")(inputs)))
    scale.__module__ = "not_importable_custom_layers"
    path = str(tmp_path / "custom.keras")
    model.save(path)
    logdir = str(tmp_path / "logs")
    status, _, err = run(capsys, "import", path, "--logdir", logdir)
    assert status == 1
    assert err.splitlines()[0] == (
        f"[1/1] error: {path}: Keras 3 cannot load it: it uses 'Scale', a custom class or "
        "function that is not registered with Keras (if your code defines it, pass that file or "
        "module with --custom-objects)"
    )
    status, _, _ = run(capsys, "import", path, "--logdir", logdir, "--custom-objects", str(source))
    assert status == 0
    assert report_runs(logdir) == {"custom/train": {0}}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_updating_line_on_a_terminal():
    stream = Terminal()
    bar = cli.ProgressBar(3, stream)
    bar.begin("models/a.keras")
    bar.end(importer.Outcome("models/a.keras", run="a", step=0, framework=importer.KERAS_3))
    bar.begin("models/b.h5")
    bar.end(importer.Outcome("models/b.h5", error=importer.ImportFailure("models/b.h5", "bad")))
    bar.begin("models/c.h5")
    text = stream.getvalue()
    # Redrawn in place with carriage returns; only the failure is a line of its own.
    assert text.count("\n") == 1
    assert "\r\x1b[Kerror: models/b.h5: bad\n" in text
    assert text.split("\r")[-1] == "[#############.......] 2/3 c.h5\x1b[K"
    assert "[......" in text and "0/3 a.keras" in text
    bar.close()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_progress_is_plain_lines_elsewhere():
    stream = io.StringIO()
    bar = cli.ProgressBar(2, stream)
    bar.begin("a.keras")
    bar.end(importer.Outcome("a.keras", run="a", step=0, framework=importer.TF_KERAS))
    bar.close()
    assert stream.getvalue() == "[1/2] a.keras: run 'a', step 0 (tf-keras)\n"


def _user_shell_env() -> dict[str, str]:
    """The environment of a user's shell: without the TF_CPP_MIN_LOG_LEVEL that the test
    session sets, which would make the command show TensorFlow's log lines as asked."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def test_missing_files_and_report_answer_without_tensorflow(tmp_path):
    """A model that does not exist is reported before TensorFlow is imported, and a report
    never imports it (TensorBoard reads the event files by itself)."""
    missing = str(tmp_path / "missing.keras")
    logdir = str(tmp_path / "logs")
    check = (
        "import sys\n"
        "from tensorboard_plugin_weightgates.cli import main as cli\n"
        "status = cli.main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check, "import", missing, "--logdir", logdir],
        capture_output=True,
        text=True,
        env=_user_shell_env(),
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"[1/1] error: {missing}: no such file or directory",
        f"weightgates import: 0 of 1 models imported into {logdir}; failed: {missing}",
    ]
    reported = model_files().path("a.keras")
    importer.import_models([reported], logdir)
    done = subprocess.run(
        [sys.executable, "-c", check, "report", logdir, "--format", "csv"],
        capture_output=True,
        text=True,
        env=_user_shell_env(),
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0] == ",".join(report.COLUMNS)


def test_import_prints_no_tensorflow_log_lines(tmp_path):
    """Run as a user runs it: the console script, in a shell without TF_CPP_MIN_LOG_LEVEL;
    stderr holds the progress lines and nothing else."""
    script = os.path.join(os.path.dirname(sys.executable), "weightgates")
    model, logdir = model_files().path("a.keras"), str(tmp_path / "logs")
    done = subprocess.run(
        [script, "import", model, "--logdir", logdir],
        capture_output=True,
        text=True,
        env=_user_shell_env(),
        timeout=300,
    )
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr.splitlines() == [
        f"[1/1] {model}: run 'a', step 0 (Keras 3)",
        f"weightgates import: 1 of 1 models imported into {logdir} as runs a",
    ]
