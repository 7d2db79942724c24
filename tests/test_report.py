"""`weightgates report`: per-gate tables read back through TensorBoard's data provider.

The log directory holds models imported from real files (`test_importer.model_files`), and
the tables are checked against statistics computed here with NumPy from the weights each file
holds, as `metadata.STAT_FIELDS` defines them.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import functools
import io
import json
import math
import os
import shutil
import tempfile

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from test_importer import build_model, expected_gates, model_files  # noqa: E402

from tensorboard_plugin_weightgates.cli import importer, report  # noqa: E402
from tensorboard_plugin_weightgates.cli import main as cli  # noqa: E402
from tensorboard_plugin_weightgates.format import options  # noqa: E402
from tensorboard_plugin_weightgates.keras_writer import summary  # noqa: E402

NEAR_ZERO = options.DEFAULT_NEAR_ZERO
RUNS = ("a/train", "b/train", "grads/train", "series/train")


def numpy_stats(values: np.ndarray, previous: np.ndarray | None = None) -> dict[str, float]:
    """One gate's report columns, from its values (and those at the previous logged step)."""
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    units = values.shape[-1]
    columns = values.reshape(-1, units)
    dead = 0
    for unit in range(units):
        kept = columns[:, unit][np.isfinite(columns[:, unit])]
        dead += bool(kept.size) and bool(np.all(np.abs(kept) <= NEAR_ZERO))
    nan = float("nan")
    some = finite.size > 0
    return {
        "shape": "x".join(str(d) for d in values.shape),
        "mean": finite.mean() if some else nan,
        "std": finite.std() if some else nan,
        "l2_norm": math.sqrt(np.sum(finite**2)) if some else nan,
        "near_zero_fraction": np.mean(np.abs(finite) <= NEAR_ZERO) if some else nan,
        "units": units,
        "dead_units": dead,
        "nan_count": int(np.isnan(values).sum()),
        "inf_count": int(np.isinf(values).sum()),
        "update_size": nan
        if previous is None
        else np.linalg.norm(values - previous) / np.linalg.norm(previous),
    }


BIDIRECTIONAL_LAYERS = ("bi",)
"""The layers of `build_model` with directions: the others have no direction column."""


def expected_rows(run: str, weights, previous=None) -> dict[tuple, dict[str, float | str]]:
    """Report rows by (run, layer, direction, kernel, gate) for a model's weights, as CSV
    writes them: no direction for a layer without directions, and dead units "n/a" for a
    bias, which has one value per unit."""
    gates_before = expected_gates(previous) if previous is not None else {}
    rows = {}
    for (layer, _, direction, kernel), gate_values in expected_gates(weights).items():
        names = report_gates(len(gate_values))
        shown_direction = direction if layer in BIDIRECTIONAL_LAYERS else ""
        for index, (gate, values) in enumerate(zip(names, gate_values)):
            before = gates_before.get((layer, None, direction, kernel))
            stats: dict[str, float | str] = dict(
                numpy_stats(values, None if before is None else before[index])
            )
            if kernel.endswith("bias"):
                stats["dead_units"] = "n/a"
            rows[(run, layer, shown_direction, kernel, gate)] = stats
    return rows


def report_gates(count: int) -> tuple[str, ...]:
    return {
        4: ("input", "forget", "cell", "output"),
        3: ("update", "reset", "candidate"),
        1: ("",),
    }[count]


@functools.cache
def report_logdir() -> tuple[str, dict[str, np.ndarray]]:
    """A log directory of runs ``a`` and ``b`` (models imported at step 0; ``a`` has a NaN,
    an Inf, a dead unit and a near-zero weight), ``series`` (checkpoints at steps 3, 10, 12)
    and ``grads`` (weights and gradients written by the writer at step 5). Returns it and the
    gradients of ``grads`` in `model.weights` order."""
    files = model_files()
    logdir = tempfile.mkdtemp(prefix="weightgates_report_")
    atexit.register(shutil.rmtree, logdir, ignore_errors=True)
    outcomes = importer.import_models([files.path("a.keras"), files.path("b.keras")], logdir)
    checkpoints = [files.path(f"epoch_{e:03d}.weights.h5") for e in (3, 10, 12)]
    outcomes += importer.import_series(files.path("arch.keras"), checkpoints, logdir, "series")
    assert all(o.ok for o in outcomes)
    model = build_model(keras)
    model.set_weights(files.weights["b"])
    rng = np.random.default_rng(7)
    gradients = [rng.normal(size=w.shape).astype("float32") for w in model.weights]
    writer = tf.summary.create_file_writer(os.path.join(logdir, "grads", "train"))
    logger = summary.GateLogger(model, writer)
    logger.log_weights(5)
    logger.log_gradients(logger.gradient_pairs(zip(gradients, model.weights)), 5)
    writer.close()
    return logdir, gradients


def cli_output(capsys, *argv: str) -> tuple[int, str, str]:
    """Runs `weightgates argv`: its exit status, stdout and stderr (only its own: what was
    written before it, such as TensorFlow's warnings while preparing files, is dropped)."""
    capsys.readouterr()
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def parse_csv(text: str) -> dict[tuple, dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return {(r["run"], r["layer"], r["direction"], r["kernel"], r["gate"]): r for r in rows}


def assert_rows_equal(rows: dict[tuple, dict[str, str]], expected: dict[tuple, dict]) -> None:
    assert set(rows) == set(expected)
    for key, stats in expected.items():
        row = rows[key]
        for column, value in stats.items():
            if isinstance(value, str):
                assert row[column] == value, (key, column)
            else:
                np.testing.assert_allclose(
                    float(row[column]), value, rtol=1e-5, atol=1e-7, err_msg=f"{key} {column}"
                )


def test_csv_report_equals_numpy_statistics_of_the_saved_weights(capsys):
    logdir, _ = report_logdir()
    files = model_files()
    status, out, err = cli_output(capsys, "report", logdir, "--format", "csv")
    assert status == 0 and err == ""
    assert out.splitlines()[0] == ",".join(report.COLUMNS)
    rows = parse_csv(out)
    expected = {
        **expected_rows("a/train", files.weights["a"]),
        **expected_rows("b/train", files.weights["b"]),
        **expected_rows("grads/train", files.weights["b"]),
        **expected_rows("series/train", files.weights["epoch_012"], files.weights["epoch_010"]),
    }
    assert_rows_equal(rows, expected)
    assert {r["step"] for k, r in rows.items() if k[0] == "series/train"} == {"12"}
    assert {r["step"] for k, r in rows.items() if k[0] == "a/train"} == {"0"}
    # What `a` was built with: a dead unit, a near-zero weight, a NaN and an Inf.
    assert rows[("a/train", "bi", "forward", "kernel", "input")]["dead_units"] == "1"
    assert float(rows[("a/train", "bi", "forward", "kernel", "forget")]["near_zero_fraction"]) > 0
    assert rows[("a/train", "dense", "", "kernel", "")]["nan_count"] == "1"
    assert rows[("a/train", "dense", "", "bias", "")]["inf_count"] == "1"
    assert rows[("a/train", "dense", "", "bias", "")]["mean"] == "nan"
    # A bias has one value per unit: dead units do not apply, whatever its values.
    assert rows[("a/train", "dense", "", "bias", "")]["dead_units"] == "n/a"
    assert rows[("a/train", "gru", "", "input_bias", "update")]["dead_units"] == "n/a"


def test_gradients_are_reported_with_kind_gradients(capsys):
    logdir, gradients = report_logdir()
    status, out, _ = cli_output(capsys, "report", logdir, "--kind", "gradients", "--format", "csv")
    assert status == 0
    rows = parse_csv(out)
    expected = expected_rows("grads/train", gradients)
    for stats in expected.values():
        # Gradients count as zero below their own threshold (1e-8); none of these is.
        stats.update(near_zero_fraction=0.0)
        if stats["dead_units"] != "n/a":
            stats["dead_units"] = 0
    assert_rows_equal(rows, expected)


def test_step_takes_each_gates_latest_record_at_or_before_it():
    logdir, _ = report_logdir()
    provider = report.data_provider(logdir)
    latest = report.gate_rows(provider)
    assert sorted({r.run for r in latest.rows}) == list(RUNS)
    assert {r.step for r in latest.rows if r.run == "series/train"} == {12}
    at_11 = report.gate_rows(provider, step=11)
    assert {(r.run, r.step) for r in at_11.rows} == {
        ("a/train", 0),
        ("b/train", 0),
        ("grads/train", 5),
        ("series/train", 10),
    }
    assert at_11.notes == {}
    files = model_files()
    series = {
        (r.layer, r.direction, r.kernel, r.gate or ""): r
        for r in at_11.rows
        if r.run == "series/train"
    }
    expected = expected_rows("series/train", files.weights["epoch_010"], files.weights["epoch_003"])
    for (_, layer, direction, kernel, gate), stats in expected.items():
        row = series[(layer, direction or None, kernel, gate)]
        np.testing.assert_allclose(row.l2_norm, stats["l2_norm"], rtol=1e-5)
        np.testing.assert_allclose(row.update_size, stats["update_size"], rtol=1e-5)
    at_2 = report.gate_rows(provider, step=2)
    assert {(r.run, r.step) for r in at_2.rows} == {("a/train", 0), ("b/train", 0)}
    assert at_2.notes == {
        "grads/train": "no statistics of weights at or before step 2",
        "series/train": "no statistics of weights at or before step 2",
    }


def some_rows() -> list[report.Row]:
    logdir, _ = report_logdir()
    rows = report.gate_rows(report.data_provider(logdir)).rows
    return [r for r in rows if r.run in ("a/train", "series/train")]


def test_table_has_aligned_columns():
    rows = some_rows()
    lines = report.format_table(rows).splitlines()
    assert len(lines) == len(rows) + 2
    assert lines[0].split() == [c for c in report.COLUMNS if c != "cell"]
    assert set(lines[1]) == {"-", " "}
    # Every column ends (numbers) or starts (text) at the same place on every line.
    assert len({len(line) for line in lines}) == 1
    starts = [
        i for i, ch in enumerate(lines[1]) if ch == "-" and (i == 0 or lines[1][i - 1] == " ")
    ]
    for line in lines:
        fields = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [len(line)])]
        assert all(fields) and all("  " not in f for f in fields)
    first = lines[2].split()
    assert first[:7] == ["a/train", "0", "bi", "forward", "kernel", "input", "3x2"]
    assert lines[2].rstrip().endswith("nan")  # no update size at a run's first step


def test_json_and_markdown_hold_the_same_rows():
    rows = some_rows()
    objects = json.loads(report.format_json(rows))
    assert [list(o) for o in objects] == [list(report.COLUMNS)] * len(rows)
    assert objects[0]["shape"] == [3, 2] and objects[0]["update_size"] is None
    dense_bias = [
        o for o in objects if (o["run"], o["layer"], o["kernel"]) == ("a/train", "dense", "bias")
    ]
    assert dense_bias[0]["mean"] is None and dense_bias[0]["gate"] is None
    assert dense_bias[0]["inf_count"] == 1
    lines = report.format_markdown(rows).splitlines()
    assert len(lines) == len(rows) + 2
    assert lines[1].startswith("| --- | ---: | --- |")
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines)
    assert lines[2].split(" | ")[:3] == ["| a/train", "0", "bi"]


def test_sort_orders_by_a_column_with_missing_values_last(capsys):
    rows = some_rows()
    by_norm = report.sort_rows(rows, "l2_norm", reverse=True)
    norms = [r.l2_norm for r in by_norm]
    finite = [n for n in norms if not math.isnan(n)]
    assert finite == sorted(finite, reverse=True)
    assert all(math.isnan(n) for n in norms[len(finite) :]) and len(finite) < len(norms)
    by_update = report.sort_rows(rows, "update_size")
    assert by_update[0].run == "series/train" and by_update[-1].run == "a/train"
    assert report.sort_rows(rows, "shape")[-1].shape == (4, 2)
    logdir, _ = report_logdir()
    status, out, _ = cli_output(
        capsys, "report", logdir, "--sort", "dead_units", "--reverse", "--format", "csv"
    )
    assert status == 0
    first = next(csv.DictReader(io.StringIO(out)))
    assert first["dead_units"] == "1"
    with pytest.raises(ValueError, match="column must be one of"):
        report.sort_rows(rows, "size")


def test_the_command_line_offers_every_report_format_and_column():
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    options_by_flag = {
        flag: action
        for action in commands.choices["report"]._actions
        for flag in action.option_strings
    }
    assert tuple(options_by_flag["--format"].choices) == report.FORMATS
    assert tuple(options_by_flag["--sort"].choices) == report.SORT_COLUMNS


def test_nothing_to_report_exits_1(tmp_path, capsys):
    status, out, err = cli_output(capsys, "report", str(tmp_path))
    assert (status, out) == (1, "")
    assert err == f"weightgates report: no statistics of weights in {tmp_path}\n"
    logdir, _ = report_logdir()
    status, out, err = cli_output(capsys, "report", logdir, "--step", "2", "--kind", "gradients")
    assert (status, out) == (1, "")
    assert err.splitlines()[-1] == (
        f"weightgates report: no statistics of gradients at or before step 2 in {logdir}"
    )


def test_attention_is_reported_per_head(tmp_path):
    """Every projection of a MultiHeadAttention is a row per head, with the statistics of that
    head's slice (the output kernel's transposed: a unit is a head_dim component); dead units
    are counted in each head's kernel, and do not apply to biases."""
    inputs = keras.Input((4, 3))
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="attention")
    model = keras.Model(inputs, attention(inputs, inputs))
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(0, 0.5, size=w.shape).astype("float32") for w in model.weights])
    values = [np.array(w) for w in attention.weights]  # query k, b, key k, b, value k, b, out k, b
    values[0][:, 0, 1] = 0.0  # query head 0: head_dim unit 1 gets no input
    values[6][1, 2, :] = 0.0  # output head 1: head_dim unit 2 reaches no output
    attention.set_weights(values)
    writer = tf.summary.create_file_writer(str(tmp_path / "run" / "train"))
    summary.GateLogger(model, writer).log_weights(0)
    writer.close()

    rows = report.gate_rows(report.data_provider(str(tmp_path))).rows

    by_key = {(r.kernel, r.gate): r for r in rows}
    names = ["query", "key", "value"]
    expected_slices = {}
    for p, name in enumerate(names):
        for h in range(2):
            expected_slices[(f"{name}/kernel", f"head_{h}")] = values[2 * p][:, h, :]
        for h in range(2):
            expected_slices[(f"{name}/bias", f"head_{h}")] = values[2 * p + 1][h]
    for h in range(2):
        expected_slices[("attention_output/kernel", f"head_{h}")] = values[6][h].T
    expected_slices[("attention_output/bias", None)] = values[7]
    assert list(by_key) == list(expected_slices)  # storage order: query, key, value, output
    for key, slice_values in expected_slices.items():
        row, stats = by_key[key], numpy_stats(slice_values)
        assert (row.direction, row.shape) == (None, slice_values.shape)
        for column in ("mean", "std", "l2_norm", "units"):
            np.testing.assert_allclose(getattr(row, column), stats[column], rtol=1e-5)
        assert row.dead_units == (None if key[0].endswith("bias") else stats["dead_units"])
    assert by_key[("query/kernel", "head_0")].dead_units == 1
    assert by_key[("attention_output/kernel", "head_1")].dead_units == 1
    assert by_key[("attention_output/kernel", "head_0")].dead_units == 0
