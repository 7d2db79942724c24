// Client of the weightgates HTTP API (docs/http-api.md): the only module that knows routes,
// parameters and the binary snapshot format.

export const API_VERSION = 2;

/** A failed request: `message` is the server's `{"error": ...}` text when it sent one. */
export class ApiError extends Error {
  constructor(message, { status = null, route = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.route = route;
  }
}

/** A snapshot body that does not follow the documented layout. */
export class SnapshotFormatError extends Error {
  constructor(message) {
    super(`malformed snapshot: ${message}`);
    this.name = "SnapshotFormatError";
  }
}

/**
 * Query parameters of a slice (`run`, `layer`, `direction`, `kernel`, `kind`, `cell` unless
 * null) plus `extra` entries that are not null or undefined (`step`, `gate`).
 */
export function sliceQuery(slice, extra = {}) {
  const params = new URLSearchParams();
  for (const name of ["run", "layer", "direction", "kernel", "kind"]) {
    if (slice[name] === undefined || slice[name] === null) {
      throw new TypeError(`slice parameter ${name} is missing`);
    }
    params.set(name, String(slice[name]));
  }
  if (slice.cell !== null && slice.cell !== undefined) params.set("cell", String(slice.cell));
  for (const [name, value] of Object.entries(extra)) {
    if (value !== null && value !== undefined) params.set(name, String(value));
  }
  return params.toString();
}

/**
 * Query parameters of an activation group (`run`, `layer`, `direction`, `cell` unless null)
 * plus `extra` entries that are not null or undefined (`name`, `step`).
 */
export function groupQuery(group, extra = {}) {
  const params = new URLSearchParams();
  for (const name of ["run", "layer", "direction"]) {
    if (group[name] === undefined || group[name] === null) {
      throw new TypeError(`group parameter ${name} is missing`);
    }
    params.set(name, String(group[name]));
  }
  if (group.cell !== null && group.cell !== undefined) params.set("cell", String(group.cell));
  for (const [name, value] of Object.entries(extra)) {
    if (value !== null && value !== undefined) params.set(name, String(value));
  }
  return params.toString();
}

const HEADER_FIELDS = ["rows", "cols", "planes", "gates", "gate_boundaries", "step"];
const MAPS_HEADER_FIELDS = ["rows", "cols", "planes", "names", "step", "valid", "nan_count"];

/**
 * Decodes a `snapshot` response body: uint32 LE header length, UTF-8 JSON header, zero padding
 * to a multiple of 4, then float32 LE `planes x rows x cols` row-major.
 *
 * Returns `{header, planes}` where `planes` maps each plane name of the header ("mean",
 * "max_abs") to a Float32Array of `rows * cols` values.
 */
export function decodeSnapshot(buffer) {
  const { header, values } = decodeBody(buffer, HEADER_FIELDS, 1);
  return { header, planes: splitPlanes(values, header, 0) };
}

/**
 * Decodes an `activation_maps` response body: the layout of `snapshot` with `names x planes x
 * rows x cols` floats. Returns `{header, maps}` where `maps[name][plane]` is a Float32Array of
 * `rows * cols` values (one row per unit, one column per timestep).
 */
export function decodeActivationMaps(buffer) {
  const { header, values } = decodeBody(buffer, MAPS_HEADER_FIELDS, null);
  const perName = header.planes.length * header.rows * header.cols;
  const maps = {};
  header.names.forEach((name, i) => {
    maps[name] = splitPlanes(values, header, i * perName);
  });
  return { header, maps };
}

/** The header and the float32 data of a binary body holding `blocks` blocks of planes (null: the header's `names`). */
function decodeBody(buffer, fields, blocks) {
  if (!(buffer instanceof ArrayBuffer)) throw new SnapshotFormatError("expected an ArrayBuffer");
  if (buffer.byteLength < 4) throw new SnapshotFormatError("shorter than its header length");
  const view = new DataView(buffer);
  const headerLength = view.getUint32(0, true);
  if (4 + headerLength > buffer.byteLength) {
    throw new SnapshotFormatError(`header length ${headerLength} exceeds the body`);
  }
  let header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(buffer, 4, headerLength)));
  } catch (error) {
    throw new SnapshotFormatError(`header is not UTF-8 JSON (${error.message})`);
  }
  const missing = fields.filter((field) => !(field in header));
  if (missing.length) throw new SnapshotFormatError(`header lacks ${missing.join(", ")}`);
  const { rows, cols, planes: planeNames } = header;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new SnapshotFormatError(`bad grid ${rows} x ${cols}`);
  }
  const count = blocks ?? (Array.isArray(header.names) ? header.names.length : 0);
  const dataOffset = Math.ceil((4 + headerLength) / 4) * 4;
  const values = count * planeNames.length * rows * cols;
  const expected = dataOffset + values * 4;
  if (buffer.byteLength !== expected) {
    const what = blocks === null ? `${count} names x ${planeNames.length} planes` : `${planeNames.length} planes`;
    throw new SnapshotFormatError(`${buffer.byteLength} bytes, expected ${expected} for ${what} of ${rows} x ${cols}`);
  }
  return { header, values: readFloat32LE(buffer, dataOffset, values) };
}

function splitPlanes(values, header, offset) {
  const cells = header.rows * header.cols;
  const planes = {};
  header.planes.forEach((name, i) => {
    planes[name] = values.subarray(offset + i * cells, offset + (i + 1) * cells);
  });
  return planes;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readFloat32LE(buffer, offset, count) {
  if (LITTLE_ENDIAN) return new Float32Array(buffer, offset, count);
  const view = new DataView(buffer, offset, count * 4);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true);
  return values;
}

/**
 * The API of one TensorBoard: `index()`, `stats(slice)` and `snapshot(slice, step)`, and the
 * activation routes `activations()`, `activationStats`, `activationGradients`, `activationMaps`.
 * Responses are cached until `clearCache()` (called when TensorBoard reloads its data).
 *
 * `baseUrl` is the plugin's route prefix (".../data/plugin/weightgates/"), `fetchFn` the fetch
 * implementation (injected by tests).
 */
export class Api {
  constructor(baseUrl, fetchFn = globalThis.fetch.bind(globalThis)) {
    this.baseUrl = String(baseUrl).endsWith("/") ? String(baseUrl) : `${baseUrl}/`;
    this.fetchFn = fetchFn;
    this.cache = new Map();
  }

  clearCache() {
    this.cache.clear();
  }

  /** `GET index`; fails if the server speaks another API version. */
  async index() {
    const index = await this.request("index", "json", { cache: false });
    if (index.version !== API_VERSION) {
      throw new ApiError(
        `the plugin's server speaks API version ${index.version}, this page version ${API_VERSION}; reload the page`,
        { route: "index" },
      );
    }
    return { runs: index.runs ?? {}, errors: index.errors ?? {} };
  }

  stats(slice) {
    return this.request(`stats?${sliceQuery(slice)}`, "json");
  }

  async snapshot(slice, step) {
    return decodeSnapshot(await this.request(`snapshot?${sliceQuery(slice, { step })}`, "arrayBuffer"));
  }

  /**
   * `GET activations`: `{runs, errors}` of the activation index (docs/http-api.md#activations),
   * cached like the other routes until `clearCache()`, so views can ask for it on every draw.
   */
  async activations() {
    const index = await this.request("activations", "json");
    if (index.version !== API_VERSION) {
      throw new ApiError(
        `the plugin's server speaks API version ${index.version}, this page version ${API_VERSION}; reload the page`,
        { route: "activations" },
      );
    }
    return { runs: index.runs ?? {}, errors: index.errors ?? {} };
  }

  /** Statistics of a group's names; `step`: an integer, "all", or null for the latest. */
  activationStats(group, { name = null, step = null } = {}) {
    return this.request(`activation_stats?${groupQuery(group, { name, step })}`, "json");
  }

  activationGradients(group) {
    return this.request(`activation_gradients?${groupQuery(group)}`, "json");
  }

  async activationMaps(group, { step = null, name = null } = {}) {
    const path = `activation_maps?${groupQuery(group, { step, name })}`;
    return decodeActivationMaps(await this.request(path, "arrayBuffer"));
  }

  request(path, bodyType, { cache = true } = {}) {
    if (cache && this.cache.has(path)) return this.cache.get(path);
    const promise = this.fetchBody(path, bodyType);
    if (cache) {
      this.cache.set(path, promise);
      promise.catch(() => this.cache.delete(path));
    }
    return promise;
  }

  async fetchBody(path, bodyType) {
    const route = path.split("?")[0];
    let response;
    try {
      response = await this.fetchFn(this.baseUrl + path, { credentials: "same-origin" });
    } catch (error) {
      throw new ApiError(`cannot reach TensorBoard (${error.message})`, { route });
    }
    if (!response.ok) throw await errorOf(response, route);
    try {
      return await response[bodyType]();
    } catch (error) {
      throw new ApiError(`unreadable response from ${route}: ${error.message}`, { route, status: response.status });
    }
  }
}

async function errorOf(response, route) {
  let message = `${route} failed: HTTP ${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
  } catch {
    // Not the API's JSON error (a proxy's page, say): keep the status line.
  }
  return new ApiError(message, { status: response.status, route });
}
