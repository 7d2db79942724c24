import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  RUN_PALETTE,
  assignColors,
  compileFilter,
  filterRuns,
  isSelected,
  orderRuns,
  parseSelection,
  selectedRuns,
  setSelected,
  shownRuns,
} from "../../tensorboard_plugin_weightgates/static/runs.js";

describe("run order", () => {
  it("follows TensorBoard's run list and keeps only runs with data", () => {
    assert.deepEqual(orderRuns(["b", "a", "c"], ["c", "no_data", "a", "b"]), ["c", "a", "b"]);
  });

  it("appends runs TensorBoard does not list yet, by name", () => {
    assert.deepEqual(orderRuns(["z", "b", "a"], ["b"]), ["b", "a", "z"]);
    assert.deepEqual(orderRuns(["z", "b", "a"], null), ["a", "b", "z"]);
  });
});

describe("run colours", () => {
  it("uses TensorBoard's palette in the order of its run list", () => {
    const colors = assignColors(["r1", "r2"], ["r0", "r1", "r2"]);
    assert.equal(colors.get("r1"), RUN_PALETTE[1]);
    assert.equal(colors.get("r2"), RUN_PALETTE[2]);
  });

  it("starts with TensorBoard's first colours and cycles after the last", () => {
    assert.deepEqual(RUN_PALETTE.slice(0, 3), ["#425066", "#12b5cb", "#e52592"]);
    const runs = Array.from({ length: RUN_PALETTE.length + 2 }, (_, i) => `run${i}`);
    const colors = assignColors(runs, runs);
    assert.equal(colors.get("run0"), RUN_PALETTE[0]);
    assert.equal(colors.get(`run${RUN_PALETTE.length}`), RUN_PALETTE[0]);
    assert.equal(colors.get(`run${RUN_PALETTE.length + 1}`), RUN_PALETTE[1]);
  });

  it("gives runs TensorBoard does not list the colours after its runs", () => {
    const colors = assignColors(["new", "a"], ["a"]);
    assert.equal(colors.get("a"), RUN_PALETTE[0]);
    assert.equal(colors.get("new"), RUN_PALETTE[1]);
  });

  it("keeps a run's colour when other runs are filtered out", () => {
    const host = ["a", "b", "c"];
    assert.equal(assignColors(["c"], host).get("c"), assignColors(host, host).get("c"));
  });
});

describe("regex filter", () => {
  const runs = ["lr_0.01/train", "lr_0.1/train", "Adam/train", "<img src=x>/train"];

  it("matches anywhere, case-insensitively, as TensorBoard's run filter", () => {
    assert.deepEqual(filterRuns(runs, "adam").runs, ["Adam/train"]);
    assert.deepEqual(filterRuns(runs, "^lr_0\\.0").runs, ["lr_0.01/train"]);
    assert.deepEqual(filterRuns(runs, "<img").runs, ["<img src=x>/train"]);
  });

  it("shows everything for an empty filter", () => {
    assert.deepEqual(filterRuns(runs, "").runs, runs);
  });

  it("matches nothing and explains an invalid regular expression", () => {
    const result = filterRuns(runs, "lr_(");
    assert.deepEqual(result.runs, []);
    assert.equal(result.error, "Not a valid regex: unterminated group");
    assert.doesNotMatch(result.error, /regular expression/i, "no engine preamble");
    assert.equal(compileFilter("a").error, null);
  });
});

describe("shownRuns", () => {
  it("shows the selected runs that the filter lets through", () => {
    const runs = ["adam/train", "sgd/train", "adam_lr/train"];
    assert.deepEqual(shownRuns(runs, {}, "adam"), ["adam/train", "adam_lr/train"]);
    assert.deepEqual(shownRuns(runs, { "adam/train": false }, "adam"), ["adam_lr/train"]);
    assert.deepEqual(shownRuns(runs, {}, ""), runs);
    assert.deepEqual(shownRuns(runs, {}, "("), []);
  });
});

describe("selection", () => {
  it("selects runs it has not seen", () => {
    assert.equal(isSelected({}, "new"), true);
    assert.deepEqual(selectedRuns(["a", "b"], { a: false }), ["b"]);
  });

  it("sets several runs at once without touching the others", () => {
    const selection = setSelected({ a: false, c: true }, ["a", "b"], true);
    assert.deepEqual(selection, { a: true, b: true, c: true });
    assert.deepEqual(setSelected(selection, ["c"], false), { a: true, b: true, c: false });
  });

  it("survives a round trip through storage and ignores junk", () => {
    const stored = JSON.stringify(setSelected({}, ["x/train"], false));
    assert.deepEqual(parseSelection(stored), { "x/train": false });
    assert.deepEqual(parseSelection(null), {});
    assert.deepEqual(parseSelection("not json"), {});
    assert.deepEqual(parseSelection("[1, 2]"), {});
    assert.deepEqual(parseSelection('{"a": "yes", "b": false}'), { b: false });
  });
});
