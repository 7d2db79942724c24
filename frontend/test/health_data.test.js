import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  METRICS,
  NOT_APPLICABLE,
  TABLE_COLUMNS,
  constantValue,
  csvField,
  firstRecords,
  metricValues,
  metricsFor,
  sortRows,
  tableColumns,
  tableRows,
  toCsv,
} from "../../tensorboard_plugin_weightgates/static/health_data.js";

function gate(name, steps, values) {
  return { gate: name, steps, values };
}

const stats = (kernel, gates) => ({ kernel, gates });

describe("metricValues", () => {
  it("reads a field over steps and keeps nulls as gaps", () => {
    const g = gate("input", [0, 10], { update_size: [null, 0.5] });
    assert.deepEqual(
      metricValues(
        g,
        METRICS.find((m) => m.id === "update_size"),
      ),
      [null, 0.5],
    );
  });

  it("sums NaN and Inf counts", () => {
    const g = gate("input", [0, 10], { nan_count: [0, 3], inf_count: [1, 2] });
    assert.deepEqual(
      metricValues(
        g,
        METRICS.find((m) => m.id === "nonfinite"),
      ),
      [1, 5],
    );
  });
});

describe("tableRows", () => {
  const entries = [
    {
      run: "a",
      direction: "forward",
      stats: stats("kernel", [
        gate("input", [0, 10, 20], { mean: [1, 2, 3] }),
        gate("forget", [0, 10, 20], { mean: [4, 5, 6] }),
      ]),
    },
    { run: "b", direction: "forward", stats: stats("kernel", [gate("input", [0, 15], { mean: [7, 8] })]) },
    { run: "c", direction: "forward", stats: stats("bias", [gate(null, [5], { mean: [9] })]) },
  ];

  it("takes each gate at the latest step at or before the chosen one", () => {
    const rows = tableRows(entries, 10);
    assert.deepEqual(
      rows.map((r) => [r.run, r.gate, r.step, r.mean]),
      [
        ["a", "input", 10, 2],
        ["a", "forget", 10, 5],
        ["b", "input", 0, 7],
        ["c", "bias", 5, 9],
      ],
    );
    assert.equal(rows[0].std, null, "fields the response lacks are null");
  });

  it("leaves out a run first logged after the step, and says where it starts", () => {
    assert.deepEqual(
      tableRows(entries, 4).map((r) => r.run),
      ["a", "a", "b"],
    );
    assert.deepEqual(firstRecords(entries, 4), [{ run: "c", direction: "forward", first: 5 }]);
    assert.deepEqual(firstRecords(entries, 5), []);
  });

  it("has no dead units for a bias, in the table and the CSV", () => {
    const bias = [{ ...entries[2], countsDeadUnits: false }];
    const [row] = tableRows(bias, 5);
    assert.equal(row.dead_units, NOT_APPLICABLE);
    const csv = toCsv(TABLE_COLUMNS, [row]);
    assert.equal(csv.split("\r\n")[1].split(",")[TABLE_COLUMNS.findIndex((c) => c.id === "dead_units")], "n/a");
    const sorted = sortRows([row, { ...row, run: "z", dead_units: 2 }], "dead_units", "asc");
    assert.deepEqual(
      sorted.map((r) => r.run),
      ["z", "c"],
      "n/a sorts with the missing values",
    );
  });
});

describe("columns and metrics per layer and kind", () => {
  it("has no update size for gradients and no direction for a layer without one", () => {
    assert.ok(metricsFor("weights").some((m) => m.id === "update_size"));
    assert.ok(!metricsFor("gradients").some((m) => m.id === "update_size"));
    assert.ok(!tableColumns({ bidirectional: false }).some((c) => c.id === "direction"));
    assert.ok(tableColumns({ bidirectional: true }).some((c) => c.id === "direction"));
    assert.ok(!tableColumns({ kind: "gradients" }).some((c) => c.id === "update_size"));
  });

  it("finds a constant series", () => {
    assert.equal(constantValue([[0, null, 0], [0]]), 0);
    assert.equal(constantValue([[0.25, 0.25]]), 0.25);
    assert.equal(constantValue([[0, 1]]), null);
    assert.equal(constantValue([[null]]), null);
  });
});

describe("sortRows", () => {
  const rows = [
    { run: "run10", step: 1, mean: 0.5 },
    { run: "run2", step: 1, mean: null },
    { run: "Run1", step: 1, mean: -1 },
    { run: "run3", step: 1, mean: 0.5 },
  ];

  it("sorts numbers numerically, ascending or descending, nulls last either way", () => {
    assert.deepEqual(
      sortRows(rows, "mean", "asc").map((r) => r.run),
      ["Run1", "run10", "run3", "run2"],
    );
    assert.deepEqual(
      sortRows(rows, "mean", "desc").map((r) => r.run),
      ["run10", "run3", "Run1", "run2"],
    );
  });

  it("sorts text naturally and case-insensitively", () => {
    assert.deepEqual(
      sortRows(rows, "run", "asc").map((r) => r.run),
      ["Run1", "run2", "run3", "run10"],
    );
  });

  it("is stable and does not change its input", () => {
    const before = rows.map((r) => r.run);
    assert.deepEqual(
      sortRows(rows, "step", "desc").map((r) => r.run),
      before,
    );
    assert.deepEqual(
      rows.map((r) => r.run),
      before,
    );
    assert.throws(() => sortRows(rows, "nope"), RangeError);
  });
});

describe("CSV", () => {
  it("quotes fields with commas, quotes and line breaks (RFC 4180)", () => {
    assert.equal(csvField("plain"), "plain");
    assert.equal(csvField("a,b"), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField("two\nlines"), '"two\nlines"');
    assert.equal(csvField("cr\r"), '"cr\r"');
  });

  it("defuses text a spreadsheet would run as a formula", () => {
    assert.equal(csvField('=HYPERLINK("x")'), '"\'=HYPERLINK(""x"")"');
    assert.equal(csvField("+1"), "'+1");
    assert.equal(csvField("@run"), "'@run");
    assert.equal(csvField("-lr/train"), "'-lr/train");
  });

  it("writes numbers as numbers and missing values as empty fields", () => {
    assert.equal(csvField(-0.25), "-0.25");
    assert.equal(csvField(1e-12), "1e-12");
    assert.equal(csvField(null), "");
    assert.equal(csvField(undefined), "");
    assert.equal(csvField(NaN), "");
  });

  it("writes a header line and one CRLF-terminated line per row", () => {
    const columns = TABLE_COLUMNS.filter((c) => ["run", "gate", "mean"].includes(c.id));
    const csv = toCsv(columns, [
      { run: "<img src=x>,a", gate: "input", mean: 1.5 },
      { run: "b", gate: "forget", mean: null },
    ]);
    assert.equal(csv, 'Run,Gate,Mean\r\n"<img src=x>,a",input,1.5\r\nb,forget,\r\n');
  });
});
