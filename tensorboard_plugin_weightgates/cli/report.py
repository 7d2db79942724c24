"""Per-gate tables of a log directory: every run's gate statistics at one step.

`gate_rows` (and `activation_rows`, per recurrent layer direction, cell and gate or state on the
probe batch) reads through TensorBoard's own data provider and `reader`, as the Weight Gates tab
does, so a table shows what the tab shows; `render` formats the rows for a terminal (aligned
columns), for other programs (CSV, JSON) or for documents (Markdown). Nothing here imports
TensorFlow.

Steps: `step=None` takes each gate's latest record; `step=N` takes, per gate, the latest record
at or before step N (the state "as of" N), so runs logged at different steps, such as imported
models at step 0 and training runs every 100 batches, still compare; the `step` column says
which record each row is. A run with no record at or before N is left out, with a note.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from tensorboard import context as tb_context
from tensorboard.backend.event_processing import data_provider as mux_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer

from tensorboard_plugin_weightgates.backend import reader
from tensorboard_plugin_weightgates.format import metadata

_UNREPORTED = ("count", "min", "max", "mean_abs", "hist_low", "hist_high")

COLUMNS = (
    "run",
    "step",
    "layer",
    "cell",
    "direction",
    "kernel",
    "gate",
    "shape",
    *(name for name in metadata.STAT_FIELDS if name not in _UNREPORTED),
)
"""Columns of `weightgates report` in every format, in order: where a gate comes from, then its
statistics as `metadata.STAT_FIELDS` names and orders them (all but `_UNREPORTED`). `shape`
is one gate's shape."""

ACTIVATION_COLUMNS = (
    "run",
    "step",
    "layer",
    "cell",
    "direction",
    "name",
    "units",
    "mean",
    "std",
    "min",
    "max",
    "left_saturated",
    "right_saturated",
    *reader.SATURATED_UNIT_FIELDS,
    "nan_count",
    "inf_count",
)
"""Columns of `weightgates report --kind activations`: where the values come from (`name`: a
gate, ``cell_state`` or ``hidden_state``), then their statistics over the probe batch
(`metadata.ACTIVATION_STAT_FIELDS`; the saturated fractions are of all values, the saturated
units those saturated at more than `metadata.SATURATED_UNIT_FRACTION` of their positions)."""

SORT_COLUMNS = tuple(dict.fromkeys(COLUMNS + ACTIVATION_COLUMNS))
"""Every column of either kind of report, for the command line's ``--sort``."""

FORMATS = ("table", "csv", "json", "markdown")

_TEXT_COLUMNS = ("run", "layer", "direction", "kernel", "gate", "name")

NOT_APPLICABLE = "n/a"
"""What the table, CSV and Markdown show for a statistic that does not apply to a gate (JSON has
null): dead units of a bias."""
_NOT_APPLICABLE_COLUMNS = ("dead_units",)
_FIELD = {name: i for i, name in enumerate(metadata.STAT_FIELDS)}

_SAMPLING = {
    metadata.PLUGIN_NAME: 0,
    metadata.SNAPSHOT_PLUGIN_NAME: 1,
    metadata.ACTIVATIONS_PLUGIN_NAME: 0,
    metadata.ACTIVATION_MAPS_PLUGIN_NAME: 1,
    "histograms": 1,
}
"""What the multiplexer keeps per tag: every statistics record (0 means all), and only the
latest snapshot and histogram, which a report does not read."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One gate of one kernel of one run, at `step`. Statistics as `metadata.STAT_FIELDS`
    defines them; NaN where undefined (`update_size` at a run's first logged step).
    `direction` is None for a layer without directions (not ``Bidirectional``), and
    `dead_units` None where it does not apply: a bias has one value per unit, not a column
    of incoming weights (`metadata.KernelInfo.counts_dead_units`)."""

    run: str
    step: int
    layer: str
    cell: int | None
    direction: str | None
    kernel: str
    gate: str | None
    shape: tuple[int, ...]
    mean: float
    std: float
    l2_norm: float
    near_zero_fraction: float
    units: int
    dead_units: int | None
    nan_count: int
    inf_count: int
    update_size: float


@dataclasses.dataclass(frozen=True)
class ActivationRow:
    """One gate or state of one direction and cell of a recurrent layer of one run, at `step`,
    over the probe batch; NaN where undefined (saturation of a cell state)."""

    run: str
    step: int
    layer: str
    cell: int | None
    direction: str
    name: str
    units: int
    mean: float
    std: float
    min: float
    max: float
    left_saturated: float
    right_saturated: float
    left_saturated_units: float
    right_saturated_units: float
    nan_count: int
    inf_count: int


@dataclasses.dataclass(frozen=True)
class Report:
    """The rows of every run that has records of the kind, and per run what was left out."""

    kind: str
    step: int | None
    rows: tuple[Any, ...]
    notes: dict[str, str]

    @property
    def columns(self) -> tuple[str, ...]:
        return ACTIVATION_COLUMNS if self.kind == metadata.ACTIVATIONS else COLUMNS


def data_provider(logdir: str) -> mux_data_provider.MultiplexerDataProvider:
    """TensorBoard's in-process data provider over `logdir`, keeping every statistics record."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance=dict(_SAMPLING))
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    return mux_data_provider.MultiplexerDataProvider(multiplexer, logdir)


def gate_rows(
    provider: Any,
    kind: str = "weights",
    step: int | None = None,
    experiment_id: str = "",
) -> Report:
    """Every gate of every run at `step` (None: the latest), runs by name, kernels in model
    order, gates in storage order.

    Raises:
      ValueError: `kind` is not one of `metadata.KINDS`, or `step` is negative.
    """
    if kind not in metadata.KINDS:
        raise ValueError(f"kind must be one of {metadata.KINDS}, got {kind!r}")
    if step is not None and step < 0:
        raise ValueError(f"step must be >= 0 or None, got {step!r}")
    ctx = tb_context.RequestContext()
    index = reader.read_index(provider, ctx, experiment_id)
    notes = dict(index.errors)
    rows: list[Row] = []
    for run in sorted(index.runs):
        kernels = [k.kernel for k in index.runs[run] if kind in k.kernel.stats]
        run_rows = []
        for kernel in kernels:
            stats = reader.read_stats(provider, ctx, experiment_id, kernel, kind)
            for gate_index, gate in enumerate(stats.gates):
                chosen = _record_at(gate.steps, step)
                if chosen is not None:
                    run_rows.append(_row(kernel, gate_index, gate, chosen))
        if run_rows:
            rows.extend(run_rows)
        else:
            notes[run] = _join(notes.get(run), _missing(kind, step, bool(kernels)))
    return Report(kind=kind, step=step, rows=tuple(rows), notes=notes)


def activation_rows(provider: Any, step: int | None = None, experiment_id: str = "") -> Report:
    """Every gate and state of every recurrent layer's direction and cell of every run at
    `step` (None: the latest), as `gate_rows` takes steps; runs by name, layers in model order.

    Raises:
      ValueError: `step` is negative.
    """
    if step is not None and step < 0:
        raise ValueError(f"step must be >= 0 or None, got {step!r}")
    ctx = tb_context.RequestContext()
    index = reader.read_activation_index(provider, ctx, experiment_id)
    notes = dict(index.errors)
    rows: list[ActivationRow] = []
    for run in sorted(index.runs):
        run_rows = []
        for entry in index.runs[run]:
            if not entry.group.stats:
                continue
            stats = reader.read_activation_stats(provider, ctx, experiment_id, entry.group)
            for name in stats.names:
                chosen = _record_at(name.steps, step)
                if chosen is not None:
                    run_rows.append(_activation_row(entry.group, name, chosen))
        if run_rows:
            rows.extend(run_rows)
        else:
            notes[run] = _join(notes.get(run), _missing(metadata.ACTIVATIONS, step, True))
    return Report(kind=metadata.ACTIVATIONS, step=step, rows=tuple(rows), notes=notes)


def _activation_row(
    group: reader.ActivationGroup, name: reader.NameStats, record: int
) -> ActivationRow:
    fields = {
        f: float(name.scalars[record, i]) for i, f in enumerate(metadata.ACTIVATION_STAT_FIELDS)
    }
    saturated = dict(zip(reader.SATURATED_UNIT_FIELDS, name.units_saturated[record].tolist()))
    info = group.info
    return ActivationRow(
        run=group.run,
        step=int(name.steps[record]),
        layer=info.layer,
        cell=info.cell,
        direction=info.direction,
        name=name.name,
        units=info.units,
        mean=fields["mean"],
        std=fields["std"],
        min=fields["min"],
        max=fields["max"],
        left_saturated=fields["left_saturated"],
        right_saturated=fields["right_saturated"],
        left_saturated_units=saturated["left_saturated_units"],
        right_saturated_units=saturated["right_saturated_units"],
        nan_count=int(fields["nan_count"]),
        inf_count=int(fields["inf_count"]),
    )


def _record_at(steps: np.ndarray, step: int | None) -> int | None:
    """Index of the latest record at or before `step` (the last one written of that step)."""
    candidates = np.flatnonzero(steps <= step) if step is not None else np.arange(len(steps))
    if not len(candidates):
        return None
    latest = steps[candidates].max()
    return int(candidates[steps[candidates] == latest][-1])


def _row(kernel: reader.Kernel, gate_index: int, gate: reader.GateStats, record: int) -> Row:
    values = gate.values[record]

    def field(name: str) -> float:
        return float(values[_FIELD[name]])

    return Row(
        run=kernel.run,
        step=int(gate.steps[record]),
        layer=kernel.layer,
        cell=kernel.cell,
        direction=kernel.direction if kernel.bidirectional else None,
        kernel=kernel.kernel,
        gate=gate.gate,
        shape=tuple(kernel.gate_shapes[gate_index]),
        mean=field("mean"),
        std=field("std"),
        l2_norm=field("l2_norm"),
        near_zero_fraction=field("near_zero_fraction"),
        units=int(field("units")),
        dead_units=int(field("dead_units")) if kernel.counts_dead_units else None,
        nan_count=int(field("nan_count")),
        inf_count=int(field("inf_count")),
        update_size=field("update_size"),
    )


def _missing(kind: str, step: int | None, has_kind: bool) -> str:
    if not has_kind:
        return f"no statistics of {kind}"
    return f"no statistics of {kind} at or before step {step}"


def _join(*parts: str | None) -> str:
    return "; ".join(p for p in parts if p)


def sort_rows(
    rows: Iterable[Any], column: str, reverse: bool = False, columns: Sequence[str] = COLUMNS
) -> list[Any]:
    """Rows ordered by `column` (ascending, or descending with `reverse`), ties in their
    current order; rows without a value there (NaN, no gate) come last either way.

    Raises:
      ValueError: `column` is not one of `columns` (the rows' `Report.columns`).
    """
    if column not in columns:
        raise ValueError(f"column must be one of {tuple(columns)}, got {column!r}")
    rows = list(rows)
    present = [r for r in rows if not _missing_value(getattr(r, column))]
    absent = [r for r in rows if _missing_value(getattr(r, column))]
    key = (lambda r: math.prod(r.shape)) if column == "shape" else (lambda r: getattr(r, column))
    return sorted(present, key=key, reverse=reverse) + absent


def _missing_value(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def render(rows: Sequence[Any], format: str, columns: Sequence[str] = COLUMNS) -> str:
    """`rows` as text in `format` (one of `FORMATS`) with `columns` (the rows' kind's,
    `Report.columns`), ending with a newline."""
    renderers = {
        "table": format_table,
        "csv": format_csv,
        "json": format_json,
        "markdown": format_markdown,
    }
    if format not in renderers:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    return renderers[format](rows, columns)


def format_table(rows: Sequence[Any], columns: Sequence[str] = COLUMNS) -> str:
    """Aligned columns for a terminal: text left, numbers right, 4 significant digits, "-"
    where a row has no gate, cell or direction, "n/a" for dead units of a bias. The `cell`
    column appears only if some row has one."""
    columns = _shown_columns(rows, columns)
    cells = [[_short(getattr(row, c), c) for c in columns] for row in rows]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.ljust(w) if c in _TEXT_COLUMNS else v.rjust(w)
            for v, w, c in zip(values, widths, columns)
        ]
        return "  ".join(padded).rstrip()

    lines = [line(columns), line(["-" * w for w in widths]), *(line(c) for c in cells)]
    return "\n".join(lines) + "\n"


def format_markdown(rows: Sequence[Any], columns: Sequence[str] = COLUMNS) -> str:
    """A GitHub-flavoured Markdown table, numbers right-aligned, 4 significant digits, as
    `format_table` writes missing values."""
    columns = _shown_columns(rows, columns)
    align = ["---" if c in _TEXT_COLUMNS else "---:" for c in columns]
    lines = [_markdown_line(columns), _markdown_line(align)]
    lines += [_markdown_line([_short(getattr(row, c), c) for c in columns]) for row in rows]
    return "\n".join(lines) + "\n"


def _markdown_line(values: Sequence[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"


def format_csv(rows: Sequence[Any], columns: Sequence[str] = COLUMNS) -> str:
    """CSV with a header of `columns`; floats at full precision (``nan`` where undefined),
    shapes as ``3x4``, an empty field where a row has no gate, cell or direction, ``n/a`` for
    dead units of a bias."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_exact(getattr(row, c), c) for c in columns])
    return buffer.getvalue()


def format_json(rows: Sequence[Any], columns: Sequence[str] = COLUMNS) -> str:
    """A JSON array of one object per row with the keys of `columns`; shapes as lists, null
    where a value is NaN or infinite (JSON has neither), a row has no gate, cell or direction,
    or a statistic does not apply (dead units of a bias)."""
    objects = [{c: _json_value(getattr(row, c)) for c in columns} for row in rows]
    return json.dumps(objects, indent=1, allow_nan=False) + "\n"


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _shown_columns(rows: Sequence[Any], columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c != "cell" or any(r.cell is not None for r in rows)]


def _short(value: Any, column: str) -> str:
    if value is None:
        return NOT_APPLICABLE if column in _NOT_APPLICABLE_COLUMNS else "-"
    if column == "shape":
        return _shape_text(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _exact(value: Any, column: str) -> str:
    if value is None:
        return NOT_APPLICABLE if column in _NOT_APPLICABLE_COLUMNS else ""
    if column == "shape":
        return _shape_text(value)
    return repr(value) if isinstance(value, float) else str(value)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"
