"""`weightgates import --probe` and `weightgates report --kind activations`: saved models' gate
activations on a probe file, reported with saturation columns that equal a NumPy count on
`gate_activations` of the saved model; the probe file's and the options' errors."""

from __future__ import annotations

import csv
import io
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from test_activation_logging import CTX  # noqa: E402
from test_cli import run  # noqa: E402
from test_importer import model_files  # noqa: E402
from test_reader import multiplexer_provider  # noqa: E402

from tensorboard_plugin_weightgates import gate_activations  # noqa: E402
from tensorboard_plugin_weightgates.backend import reader  # noqa: E402
from tensorboard_plugin_weightgates.cli import probe, report  # noqa: E402


@pytest.fixture(scope="module")
def probe_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = str(tmp_path_factory.mktemp("probe") / "probe.npz")
    x = rng.normal(size=(5, 4, 3)).astype(np.float32)
    np.savez(path, x=x, y=rng.normal(size=(5, 1)).astype(np.float32))
    return path, x


@pytest.fixture(scope="module")
def imported(tmp_path_factory, probe_file):
    """`a.keras` imported with the probe and mse."""
    logdir = str(tmp_path_factory.mktemp("logs"))
    path = os.path.join(model_files().directory, "a.keras")
    status = _main("import", path, "--logdir", logdir, "--probe", probe_file[0], "--loss", "mse")
    assert status == 0
    return logdir, path


def _main(*argv: str) -> int:
    from tensorboard_plugin_weightgates.cli import main as cli

    return cli.main(list(argv))


def test_import_with_a_probe_logs_activations_and_gradients(imported):
    logdir, _ = imported

    index = reader.read_activation_index(multiplexer_provider(logdir), CTX, "")

    entries = index.runs["a/train"]
    assert [(e.group.info.layer, e.group.info.direction) for e in entries] == [
        ("bi", "forward"),
        ("bi", "backward"),
        ("gru", "forward"),
    ]
    for entry in entries:
        assert entry.stats_steps == entry.gradient_steps == entry.map_steps == (0,)


def test_activation_report_has_saturation_columns_from_a_numpy_count(capsys, imported, probe_file):
    logdir, path = imported
    status, out, _ = run(capsys, "report", logdir, "--kind", "activations", "--format", "csv")

    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(report.ACTIVATION_COLUMNS)
    assert {(r["layer"], r["direction"]) for r in rows} == {
        ("bi", "forward"),
        ("bi", "backward"),
        ("gru", "forward"),
    }
    layer = keras.models.load_model(path, compile=False).get_layer("bi")
    values = gate_activations(layer, probe_file[1])
    for row in rows:
        if row["layer"] != "bi":
            continue
        kept = values[(row["direction"], None, row["name"])].reshape(-1, 2)
        if row["name"] == "cell_state":
            assert row["left_saturated"] == row["left_saturated_units"] == "nan"
            continue
        low = 0.1 if row["name"] in ("input", "forget", "output") else -0.9
        assert float(row["left_saturated"]) == pytest.approx((kept < low).mean())
        per_unit = (kept < low).mean(axis=0)
        assert float(row["left_saturated_units"]) == (per_unit > 0.9).sum()
        assert float(row["mean"]) == pytest.approx(kept.mean(), rel=1e-5)


def test_activation_report_sorts_by_its_own_columns(capsys, imported):
    logdir, _ = imported

    status, out, _ = run(
        capsys, "report", logdir, "--kind", "activations", "--sort", "right_saturated", "--reverse"
    )
    assert status == 0
    header, _, first, *_ = out.splitlines()
    assert header.split()[:6] == ["run", "step", "layer", "direction", "name", "units"]
    status, _, err = run(capsys, "report", logdir, "--kind", "activations", "--sort", "dead_units")
    assert status == 2 and "not a column of --kind activations" in err
    status, _, err = run(capsys, "report", logdir, "--sort", "right_saturated")
    assert status == 2 and "--kind activations only" in err


def test_a_logdir_without_activations_has_nothing_to_report(capsys, tmp_path):
    status, out, err = run(capsys, "report", str(tmp_path), "--kind", "activations")

    assert (status, out) == (1, "")
    assert "no statistics of activations" in err


@pytest.mark.parametrize(
    "arrays, extra, message",
    [
        ({"x": np.zeros((2, 4, 3)), "y": np.zeros((2, 1))}, [], "holds targets y; pass --loss"),
        ({"x": np.zeros((2, 4, 3))}, ["--loss", "mse"], "holds no targets y"),
        ({"x": np.zeros((2, 4, 3)), "y": np.zeros((2, 1))}, ["--loss", "nope"], "not a Keras loss"),
        ({"x": np.zeros((2, 4, 3)), "z": np.zeros(2)}, [], "holds arrays ['z']"),
        ({"x": np.zeros((2, 4, 3)), "y": np.zeros((3, 1))}, ["--loss", "mse"], "different numbers"),
        ({"y": np.zeros((2, 1))}, [], "has no array x"),
    ],
)
def test_bad_probe_files_and_losses_exit_2_naming_the_argument(
    capsys, tmp_path, arrays, extra, message
):
    path = str(tmp_path / "probe.npz")
    np.savez(path, **arrays)
    model = os.path.join(model_files().directory, "b.keras")

    status, _, err = run(
        capsys, "import", model, "--logdir", str(tmp_path), "--probe", path, *extra
    )

    assert status == 2
    assert message in err and "argument --" in err


def test_loss_without_a_probe_is_refused(capsys, tmp_path):
    model = os.path.join(model_files().directory, "b.keras")

    status, _, err = run(capsys, "import", model, "--logdir", str(tmp_path), "--loss", "mse")

    assert status == 2 and "argument --loss" in err


def test_probe_files_of_several_inputs(tmp_path):
    path = str(tmp_path / "two.npz")
    np.savez(path, x_1=np.ones((2, 3)), x_0=np.zeros((2, 3)))

    batch = probe.load_probe(path)

    assert [a[0, 0] for a in batch.x] == [0.0, 1.0] and batch.samples == 2
    np.save(str(tmp_path / "one.npy"), np.zeros(3))
    with pytest.raises(ValueError, match="npz"):
        probe.load_probe(str(tmp_path / "one.npy"))
