import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { layerKey } from "../../tensorboard_plugin_weightgates/static/layers.js";
import {
  StatsLoader,
  byDirection,
  fetchStats,
  statsByGate,
  statsSlices,
} from "../../tensorboard_plugin_weightgates/static/stats_loader.js";

const kernel = (statsSteps) => ({
  kernel: "kernel",
  shape: [3, 8],
  gates: ["update", "reset"],
  gate_boundaries: [0, 4, 8],
  kinds: { weights: { stats_steps: statsSteps, snapshot_steps: [0] } },
});
const gru = (directions) => ({
  layer: "encoder",
  layer_type: "GRU",
  order: 0,
  cell: null,
  directions: directions.map(([direction, steps]) => ({ direction, kernels: [kernel(steps)] })),
});

const index = {
  runs: {
    a: { layers: [gru([["forward", [0, 10]], ["backward", [0, 10]]])] },
    b: { layers: [gru([["forward", [5]], ["backward", []]])] },
    c: { layers: [gru([["forward", []]])] },
  },
};
const KEY = layerKey(index.runs.a.layers[0]);

/** A stats response (docs/http-api.md) with `gates`, each over `steps`. */
const response = (gates, steps = [0, 10]) => ({
  gates: gates.map((gate) => ({ gate, steps, values: { mean: steps.map(() => 0) } })),
});

describe("statsSlices", () => {
  it("keeps the slices that have statistics, run by run", () => {
    const slices = statsSlices(index, ["a", "b", "c"], KEY, "kernel", "weights");
    assert.deepEqual(
      slices.map((s) => [s.run, s.direction]),
      [
        ["a", "forward"],
        ["a", "backward"],
        ["b", "forward"],
      ],
    );
    assert.deepEqual(slices[2].slice, {
      run: "b",
      layer: "encoder",
      cell: null,
      direction: "forward",
      kernel: "kernel",
      kind: "weights",
    });
  });

  it("is empty for a kind or runs without statistics", () => {
    assert.deepEqual(statsSlices(index, ["c"], KEY, "kernel", "weights"), []);
    assert.deepEqual(statsSlices(index, ["a"], KEY, "kernel", "gradients"), []);
  });
});

describe("fetchStats", () => {
  it("requests every slice and keeps a failure beside the others, in order", async () => {
    const requested = [];
    const api = {
      async stats(slice) {
        requested.push(slice.run);
        if (slice.run === "a") throw new Error("a is broken");
        return response(["update"]);
      },
    };
    const slices = statsSlices(index, ["a", "b"], KEY, "kernel", "weights");
    const loaded = await fetchStats(api, slices);
    assert.deepEqual(requested, ["a", "a", "b"]);
    assert.deepEqual(
      loaded.map((item) => [item.run, item.direction, item.error?.message ?? null, Boolean(item.stats)]),
      [
        ["a", "forward", "a is broken", false],
        ["a", "backward", "a is broken", false],
        ["b", "forward", null, true],
      ],
    );
    assert.equal(loaded[2].slice, slices[2].slice);
  });
});

describe("byDirection", () => {
  it("groups in the order directions first appear, keeping the items' order", () => {
    const items = [
      { run: "a", direction: "forward" },
      { run: "a", direction: "backward" },
      { run: "b", direction: "forward" },
    ];
    assert.deepEqual(byDirection(items), [
      { direction: "forward", items: [items[0], items[2]] },
      { direction: "backward", items: [items[1]] },
    ]);
    assert.deepEqual(byDirection([]), []);
  });
});

describe("statsByGate", () => {
  it("charts the gates of the first slice that loaded, with every run that has each", () => {
    const a = { run: "a", error: new Error("broken") };
    const b = { run: "b", stats: response(["update", "reset"]) };
    const c = { run: "c", stats: response(["reset"]) };
    const perGate = statsByGate([a, b, c]);
    assert.deepEqual(
      perGate.map(({ gate, runs }) => [gate, runs.map((r) => r.run)]),
      [
        ["update", ["b"]],
        ["reset", ["b", "c"]],
      ],
    );
    assert.equal(perGate[1].runs[1].stats, c.stats.gates[0]);
  });

  it("keeps a non-gated kernel as one null gate, and nothing when no slice loaded", () => {
    assert.deepEqual(
      statsByGate([{ run: "a", stats: response([null]) }]).map(({ gate }) => gate),
      [null],
    );
    assert.deepEqual(statsByGate([{ run: "a", error: new Error("x") }]), []);
  });
});

/** What StatsLoader needs of its element while loading: its attributes. */
function sectionsElement() {
  const attributes = new Map();
  return {
    attributes,
    setAttribute: (name, value) => attributes.set(name, value),
    removeAttribute: (name) => attributes.delete(name),
  };
}

/** An api whose stats requests answer when the test says: `release(run)` answers that run's. */
function heldApi() {
  const pending = [];
  return {
    stats: (slice) => new Promise((resolve) => pending.push({ run: slice.run, resolve })),
    release(run) {
      for (const request of pending.filter((p) => p.run === run)) request.resolve(response(["update"]));
    },
  };
}

describe("StatsLoader", () => {
  const context = (api, runs) => ({ api, index, runs, layer: { key: KEY }, kernel: "kernel", kind: "weights" });

  it("marks its element busy while loading and resolves with the loaded slices", async () => {
    const sections = sectionsElement();
    const api = heldApi();
    const loading = new StatsLoader(sections).load(context(api, ["b"]));
    assert.equal(sections.attributes.get("aria-busy"), "true");
    api.release("b");
    const loaded = await loading;
    assert.deepEqual(
      loaded.map((item) => item.run),
      ["b"],
    );
    assert.equal(sections.attributes.has("aria-busy"), false);
  });

  it("resolves a superseded load with null, and stays busy until the latest one is done", async () => {
    const sections = sectionsElement();
    const api = heldApi();
    const loader = new StatsLoader(sections);
    const first = loader.load(context(api, ["a"]));
    const second = loader.load(context(api, ["b"]));
    api.release("a");
    assert.equal(await first, null);
    assert.equal(sections.attributes.get("aria-busy"), "true");
    api.release("b");
    assert.deepEqual(
      (await second).map((item) => item.run),
      ["b"],
    );
    assert.equal(sections.attributes.has("aria-busy"), false);
  });
});
