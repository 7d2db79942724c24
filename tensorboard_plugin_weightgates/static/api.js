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

const HEADER_FIELDS = ["rows", "cols", "planes", "gates", "gate_boundaries", "step"];

/**
 * Decodes a `snapshot` response body: uint32 LE header length, UTF-8 JSON header, zero padding
 * to a multiple of 4, then float32 LE `planes x rows x cols` row-major.
 *
 * Returns `{header, planes}` where `planes` maps each plane name of the header ("mean",
 * "max_abs") to a Float32Array of `rows * cols` values.
 */
export function decodeSnapshot(buffer) {
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
  const missing = HEADER_FIELDS.filter((field) => !(field in header));
  if (missing.length) throw new SnapshotFormatError(`header lacks ${missing.join(", ")}`);
  const { rows, cols, planes: planeNames } = header;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new SnapshotFormatError(`bad grid ${rows} x ${cols}`);
  }
  const dataOffset = Math.ceil((4 + headerLength) / 4) * 4;
  const cells = rows * cols;
  const expected = dataOffset + planeNames.length * cells * 4;
  if (buffer.byteLength !== expected) {
    throw new SnapshotFormatError(
      `${buffer.byteLength} bytes, expected ${expected} for ${planeNames.length} planes of ${rows} x ${cols}`,
    );
  }
  const values = readFloat32LE(buffer, dataOffset, planeNames.length * cells);
  const planes = {};
  planeNames.forEach((name, i) => {
    planes[name] = values.subarray(i * cells, (i + 1) * cells);
  });
  return { header, planes };
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
 * The API of one TensorBoard: `index()`, `stats(slice)` and `snapshot(slice, step)`.
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
