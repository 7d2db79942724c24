import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { API_VERSION, Api, ApiError, SnapshotFormatError, decodeActivationMaps, decodeSnapshot, groupQuery, sliceQuery } from "../../tensorboard_plugin_weightgates/static/api.js";

/** A snapshot body laid out as docs/http-api.md says, built byte by byte. */
function snapshotBody(header, values) {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataOffset = Math.ceil((4 + json.length) / 4) * 4;
  const buffer = new ArrayBuffer(dataOffset + values.length * 4);
  const view = new DataView(buffer);
  view.setUint32(0, json.length, true);
  new Uint8Array(buffer, 4, json.length).set(json);
  values.forEach((value, i) => view.setFloat32(dataOffset + i * 4, value, true));
  return buffer;
}

const HEADER = {
  run: "run/ä",
  layer: "encoder",
  cell: null,
  direction: "forward",
  kernel: "kernel",
  kind: "weights",
  step: 10,
  steps: [0, 10],
  shape: [2, 4],
  rows: 2,
  cols: 4,
  block: [1, 1],
  planes: ["mean", "max_abs"],
  gates: ["update", "reset"],
  gate_boundaries: [0, 2, 4],
  nan_count: 1,
  inf_count: 1,
};
const MEAN = [0.5, -1.25, NaN, 3, Infinity, -0, 1e-30, -2];

describe("decodeSnapshot", () => {
  it("reads the header and the float32 little-endian planes after the padding", () => {
    for (const pad of ["", "x", "xx", "xxx"]) {
      const header = { ...HEADER, run: `run${pad}` };
      const { header: decoded, planes } = decodeSnapshot(snapshotBody(header, [...MEAN, ...MEAN.map(Math.abs)]));
      assert.deepEqual(decoded, header);
      assert.deepEqual(Object.keys(planes), ["mean", "max_abs"]);
      assert.equal(planes.mean.length, 8);
      assert.equal(planes.mean[1], -1.25);
      assert.ok(Number.isNaN(planes.mean[2]));
      assert.equal(planes.mean[4], Infinity);
      assert.equal(planes.mean[6], Math.fround(1e-30));
      assert.equal(planes.max_abs[7], 2);
    }
  });

  it("handles an empty grid", () => {
    const { planes } = decodeSnapshot(snapshotBody({ ...HEADER, rows: 0, cols: 0 }, []));
    assert.equal(planes.mean.length, 0);
  });

  it("rejects bodies that do not match their header", () => {
    const body = snapshotBody(HEADER, [...MEAN, ...MEAN]);
    assert.throws(() => decodeSnapshot(body.slice(0, body.byteLength - 4)), SnapshotFormatError);
    assert.throws(() => decodeSnapshot(new ArrayBuffer(2)), SnapshotFormatError);
    const lying = snapshotBody(HEADER, [...MEAN, ...MEAN]);
    new DataView(lying).setUint32(0, 1 << 20, true);
    assert.throws(() => decodeSnapshot(lying), /header length/);
    const { rows, ...noRows } = HEADER;
    assert.throws(() => decodeSnapshot(snapshotBody(noRows, [])), /lacks rows/);
    assert.equal(rows, 2);
  });
});

describe("sliceQuery", () => {
  it("encodes every parameter and omits a null cell", () => {
    const query = sliceQuery(
      { run: "a b&c/train", layer: "enc", cell: null, direction: "forward", kernel: "kernel", kind: "weights" },
      { step: 5, gate: null },
    );
    const params = new URLSearchParams(query);
    assert.equal(params.get("run"), "a b&c/train");
    assert.equal(params.get("step"), "5");
    assert.equal(params.has("cell"), false);
    assert.equal(params.has("gate"), false);
    assert.equal(
      new URLSearchParams(
        sliceQuery({ run: "r", layer: "l", cell: 0, direction: "backward", kernel: "k", kind: "gradients" }),
      ).get("cell"),
      "0",
    );
  });

  it("refuses a slice without its parameters", () => {
    assert.throws(() => sliceQuery({ run: "r" }), /layer/);
  });
});

describe("Api", () => {
  const json = (body, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

  it("reports the server's error message and status", async () => {
    const api = new Api("http://tb/data/plugin/weightgates", async () => json({ error: "unknown run 'x'" }, 404));
    await assert.rejects(
      api.stats({ run: "x", layer: "l", direction: "forward", kernel: "k", kind: "weights" }),
      (error) => {
        assert.ok(error instanceof ApiError);
        assert.equal(error.message, "unknown run 'x'");
        assert.equal(error.status, 404);
        assert.equal(error.route, "stats");
        return true;
      },
    );
  });

  it("keeps the status line when the error body is not the API's JSON", async () => {
    const api = new Api(
      "/p/",
      async () => new Response("<html>proxy</html>", { status: 502, statusText: "Bad Gateway" }),
    );
    await assert.rejects(api.index(), /index failed: HTTP 502 Bad Gateway/);
  });

  it("turns network failures into ApiError", async () => {
    const api = new Api("/p/", async () => {
      throw new TypeError("Failed to fetch");
    });
    await assert.rejects(
      api.index(),
      (error) => error instanceof ApiError && /cannot reach TensorBoard/.test(error.message),
    );
  });

  it("checks the API version of index", async () => {
    const api = new Api("/p/", async () => json({ version: API_VERSION + 1, runs: {} }));
    await assert.rejects(api.index(), new RegExp(`API version ${API_VERSION + 1}`));
  });

  it("requests relative to the base URL and caches until cleared", async () => {
    const urls = [];
    const api = new Api("http://tb/data/plugin/weightgates/", async (url) => {
      urls.push(url);
      return new Response(snapshotBody(HEADER, [...MEAN, ...MEAN]));
    });
    const slice = { run: "r", layer: "l", cell: null, direction: "forward", kernel: "kernel", kind: "weights" };
    const first = await api.snapshot(slice, 10);
    await api.snapshot(slice, 10);
    assert.equal(urls.length, 1);
    assert.match(urls[0], /^http:\/\/tb\/data\/plugin\/weightgates\/snapshot\?run=r&/);
    assert.match(urls[0], /&step=10$/);
    assert.equal(first.header.step, 10);
    api.clearCache();
    await api.snapshot(slice, 10);
    assert.equal(urls.length, 2);
  });

  it("does not cache failures", async () => {
    let calls = 0;
    const api = new Api("/p/", async () => (++calls === 1 ? json({ error: "busy" }, 400) : json({ gates: [] })));
    const slice = { run: "r", layer: "l", direction: "forward", kernel: "k", kind: "weights" };
    await assert.rejects(api.stats(slice), /busy/);
    assert.deepEqual(await api.stats(slice), { gates: [] });
  });
});

describe("activation routes", () => {
  /** An activation_maps body: the snapshot layout with names x planes blocks. */
  function mapsBody(header, values) {
    return snapshotBody(header, values);
  }
  const MAPS = {
    run: "r",
    layer: "rnn",
    cell: null,
    direction: "forward",
    kind: "activations",
    step: 4,
    steps: [0, 4],
    sample: 0,
    names: ["forget", "hidden_state"],
    units: 2,
    spatial: [],
    timesteps: 3,
    shape: [2, 3],
    rows: 2,
    cols: 3,
    block: [1, 1],
    planes: ["mean", "max_abs"],
    valid: [1, 1, 0],
    nan_count: { forget: 2, hidden_state: 2 },
  };

  it("decodes the maps of every name and plane", () => {
    const values = Array.from({ length: 2 * 2 * 6 }, (_, i) => i);
    const { header, maps } = decodeActivationMaps(mapsBody(MAPS, values));
    assert.deepEqual(header.names, ["forget", "hidden_state"]);
    assert.deepEqual([...maps.forget.mean], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...maps.forget.max_abs], [6, 7, 8, 9, 10, 11]);
    assert.deepEqual([...maps.hidden_state.mean], [12, 13, 14, 15, 16, 17]);
  });

  it("rejects a maps body of the wrong length or header", () => {
    assert.throws(() => decodeActivationMaps(mapsBody(MAPS, [1, 2, 3])), /expected .* for 2 names x 2 planes of 2 x 3/);
    const { valid, ...noValid } = MAPS;
    assert.equal(valid.length, 3);
    assert.throws(() => decodeActivationMaps(mapsBody(noValid, [])), /lacks valid/);
  });

  it("queries a group with its cell only when there is one", () => {
    const params = new URLSearchParams(groupQuery({ run: "a&b", layer: "stack", cell: 1, direction: "forward" }, { step: "all", name: null }));
    assert.deepEqual([...params], [["run", "a&b"], ["layer", "stack"], ["direction", "forward"], ["cell", "1"], ["step", "all"]]);
    assert.equal(new URLSearchParams(groupQuery({ run: "a", layer: "l", cell: null, direction: "forward" })).has("cell"), false);
    assert.throws(() => groupQuery({ run: "a", layer: "l" }), /direction/);
  });

  it("asks the four routes with their parameters and checks the index's version", async () => {
    const asked = [];
    const fetchFn = async (url) => {
      asked.push(url);
      const route = url.split("?")[0].split("/").pop();
      if (route === "activation_maps") return { ok: true, arrayBuffer: async () => mapsBody(MAPS, new Array(24).fill(0)) };
      const body = route === "activations" ? { version: API_VERSION, runs: { r: {} } } : { route };
      return { ok: true, json: async () => body };
    };
    const api = new Api("http://tb/data/plugin/weightgates", fetchFn);
    const group = { run: "r", layer: "rnn", cell: null, direction: "forward" };
    assert.deepEqual((await api.activations()).runs, { r: {} });
    await api.activations();
    assert.equal((await api.activationStats(group, { step: 4 })).route, "activation_stats");
    await api.activationGradients(group);
    assert.deepEqual((await api.activationMaps(group, { step: 4 })).header.names, MAPS.names);
    assert.deepEqual(asked, [
      "http://tb/data/plugin/weightgates/activations",
      "http://tb/data/plugin/weightgates/activation_stats?run=r&layer=rnn&direction=forward&step=4",
      "http://tb/data/plugin/weightgates/activation_gradients?run=r&layer=rnn&direction=forward",
      "http://tb/data/plugin/weightgates/activation_maps?run=r&layer=rnn&direction=forward&step=4",
    ]);
    const stale = new Api("http://tb/", async () => ({ ok: true, json: async () => ({ version: 1, runs: {} }) }));
    await assert.rejects(stale.activations(), /API version 1/);
  });
});
