"""Untrusted input against both of TensorBoard's loaders: no record and no request makes a 5xx.

A log directory holds a well-formed run and one run per record of `BAD_RECORDS` (records the
writer never produces, written beside a well-formed kernel of the same run). For each loader,
the Python multiplexer (`--load_fast=false`) and the Rust data server (`--load_fast=true`),
TensorBoard's own app serves it in process, and

* every bad record is reported in the index's ``errors`` of its run with its reason, while the
  run's well-formed kernel is listed and served with every step;
* `REQUESTS` seeded random requests to every route of `ROUTES` (right, wrong, missing,
  repeated, huge and odd parameters; every method; URLs past `routes.MAX_URL_BYTES`) get no
  5xx, every error is JSON ``{"error": ...}``, every HEAD has no body and every success parses.

To cover a new route, add it to `ROUTES` with its parameters and the values worth trying; to
cover a new record type, add its bad records to `BAD_RECORDS` (`content_case`, `values_case`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pytest
from test_loader import _data_server_provider, _multiplexer_provider, configure
from test_reader import CTX, KernelSpec, kernel_infos, kernel_records, write_events
from test_routes import PREFIX, decode_snapshot, strict_json
from werkzeug import test as werkzeug_test

from tensorboard_plugin_weightgates.backend import routes
from tensorboard_plugin_weightgates.format import metadata, options

pytest.importorskip("tensorflow")

from tensorboard.backend import application  # noqa: E402
from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402

REQUESTS = 600
"""Random requests per loader: a few seconds each."""

GOOD = KernelSpec(kernel_infos("good", gates=(None,), shape=(3, 2)))
BAD = KernelSpec(kernel_infos("bad"))
"""Every run holds both; a case damages one record of `BAD`'s first gate (the one the index
reads)."""
GOOD_STEPS = {"stats_steps": [0, 10, 20], "snapshot_steps": [0, 20]}

Events = list[tuple[str, Any, int, Any]]


@dataclasses.dataclass(frozen=True)
class BadRecord:
    """A run's well-formed records, damaged by `damage`; `reason` is in the index's errors."""

    name: str
    reason: str
    damage: Callable[[Events], Events]


def _first_gate_tag(record: str) -> str:
    make_tag = metadata.stats_tag if record == metadata.RECORD_STATS else metadata.snapshot_tag
    return make_tag(BAD.infos[0], "weights")


def content_case(
    name: str, reason: str, change: Callable[[dict], Any], record: str = metadata.RECORD_STATS
) -> BadRecord:
    """The content of `BAD`'s first gate of `record` changed by `change(content)`, which edits
    the JSON object in place, or returns the bytes to write instead."""

    def damage(events: Events) -> Events:
        tag = _first_gate_tag(record)
        damaged = []
        for event_tag, values, step, md in events:
            if event_tag == tag and md is not None:
                md = type(md).FromString(md.SerializeToString())
                content = json.loads(md.plugin_data.content)
                replaced = change(content)
                md.plugin_data.content = (
                    replaced if replaced is not None else json.dumps(content).encode("utf-8")
                )
            damaged.append((event_tag, values, step, md))
        return damaged

    return BadRecord(name, reason, damage)


def values_case(
    name: str, reason: str, values: Any, record: str = metadata.RECORD_STATS, step: int = 20
) -> BadRecord:
    """The values of `BAD`'s first gate of `record` at `step` replaced by `values` (an array
    or a `TensorProto`)."""

    def damage(events: Events) -> Events:
        tag = _first_gate_tag(record)
        return [(t, values if (t, s) == (tag, step) else v, s, md) for t, v, s, md in events]

    return BadRecord(name, reason, damage)


def _slice(**changes: Any) -> Callable[[dict], None]:
    def change(content: dict) -> None:
        for key, value in changes.items():
            if value is _MISSING:
                del content["slice"][key]
            else:
                content["slice"][key] = value

    return change


def _set(**changes: Any) -> Callable[[dict], None]:
    def change(content: dict) -> None:
        for key, value in changes.items():
            if value is _MISSING:
                del content[key]
            else:
                content[key] = value

    return change


def _proto(dtype: int, shape: tuple[int, ...], **fields: Any) -> tensor_pb2.TensorProto:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
    return tensor_pb2.TensorProto(
        dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **fields
    )


_MISSING = object()
_SNAPSHOT = metadata.RECORD_SNAPSHOT
_LENGTH = metadata.stats_vector_length(options.DEFAULT_BINS)
_NOT_READ = "TensorBoard could not read its values"

BAD_RECORDS = [
    # The content: JSON types, ranges, sizes, versions.
    content_case("bins_negative", "bins must be an integer from 1", _set(bins=-5)),
    content_case("bins_huge", f"to {metadata.MAX_BINS}, got 1000000000000", _set(bins=10**12)),
    content_case("bins_float", "bins must be an integer", _set(bins=30.0)),
    content_case("bins_bool", "bins must be an integer", _set(bins=True)),
    content_case("bins_missing", "no 'bins'", _set(bins=_MISSING)),
    content_case("near_zero_nan", "near_zero must be a finite number", _set(near_zero=np.nan)),
    content_case("near_zero_negative", "near_zero must be a finite", _set(near_zero=-1)),
    content_case("near_zero_text", "near_zero must be a finite", _set(near_zero="0.1")),
    content_case(
        "version_newer",
        f"version {metadata.FORMAT_VERSION + 1} is not supported",
        _set(version=metadata.FORMAT_VERSION + 1),
    ),
    content_case("version_text", "version '1' is not supported", _set(version="1")),
    content_case("version_bool", "version True is not supported", _set(version=True)),
    content_case("version_missing", "version None is not supported", _set(version=_MISSING)),
    content_case("kind_unknown", "unknown kind 'activations'", _set(kind="activations")),
    content_case("record_other", "expected a stats record", _set(record="snapshot")),
    content_case("not_utf8", "not weightgates JSON", lambda c: b"\xff\xfe{}"),
    content_case("not_json", "not weightgates JSON", lambda c: b'{"version": 1,'),
    content_case("empty", "not weightgates JSON", lambda c: b""),
    content_case("json_array", "not a JSON object", lambda c: b"[]"),
    content_case("json_deep", "not weightgates JSON", lambda c: b"[" * 100_000),
    content_case("json_long_integer", "not weightgates JSON", lambda c: b"[" + b"9" * 5000 + b"]"),
    content_case(
        "content_huge", "larger than the", lambda c: b" " * (metadata.MAX_CONTENT_BYTES + 1)
    ),
    content_case("slice_missing", "no 'slice'", _set(slice=_MISSING)),
    content_case("slice_array", "slice description: not a JSON object", _set(slice=[])),
    content_case("layer_missing", "no 'layer'", _slice(layer=_MISSING)),
    content_case("layer_number", "layer must be a non-empty string", _slice(layer=5)),
    content_case("layer_empty", "layer must be a non-empty string", _slice(layer="")),
    content_case("layer_surrogate", "layer is not valid Unicode", _slice(layer="\ud800")),
    content_case("order_negative", "order must be an integer >= 0", _slice(order=-1)),
    content_case("order_infinite", "order must be an integer >= 0, got inf", _slice(order=1e400)),
    content_case("direction_unknown", "direction must be one of", _slice(direction="up")),
    content_case("cell_text", "cell must be an integer", _slice(cell="0")),
    content_case(
        "gate_index_high", "gate_index must be an integer from 0 to 3", _slice(gate_index=7)
    ),
    content_case("gate_index_negative", "gate_index must be an integer", _slice(gate_index=-1)),
    content_case("gate_other", "is not entry 0 of gates", _slice(gate="forget")),
    content_case("gates_empty", "gates must not be empty", _slice(gates=[])),
    content_case("gates_twice", "name a gate twice", _slice(gates=["a", "a", "b", "c"])),
    content_case("gates_object", "gates must be a JSON array", _slice(gates={"a": 1})),
    content_case("shape_negative", "shape must be an integer >= 0", _slice(shape=[3, -2])),
    content_case("shape_text", "shape must be a JSON array", _slice(shape="32")),
    content_case("shape_float", "shape must be an integer", _slice(shape=[3.0, 2])),
    content_case("shape_rank", "axes, more than", _slice(shape=[1] * (metadata.MAX_RANK + 1))),
    content_case("shape_size", "more than", _slice(shape=[2**40, 2**40])),
    content_case("shape_scalar_gates", "needs an axis to split", _slice(shape=[])),
    content_case("tag_other_slice", "the tag does not match", _slice(layer="elsewhere")),
    content_case(
        "max_cells_zero", "max_cells must be an integer >= 1", _set(max_cells=0), _SNAPSHOT
    ),
    content_case("block_zero", "block must be an integer >= 1", _set(block=[0, 0]), _SNAPSHOT),
    content_case("block_short", "block must be [block_rows", _set(block=[1]), _SNAPSHOT),
    content_case("block_text", "block must be a JSON array", _set(block="1x1"), _SNAPSHOT),
    content_case("block_huge", "larger than the slice's", _set(block=[10**9, 10**9]), _SNAPSHOT),
    content_case("block_too_fine", "more than max_cells 2", _set(max_cells=2), _SNAPSHOT),
    # The values: dtypes, shapes, and tensors TensorBoard itself cannot convert.
    values_case("stats_strings", "has dtype object", np.array([b"x"] * _LENGTH)),
    values_case("stats_complex", "has dtype complex", np.zeros(_LENGTH, np.complex64)),
    values_case("stats_bool", "has dtype bool", np.zeros(_LENGTH, bool)),
    values_case("stats_short", "has shape (3,), expected (45,)", np.zeros(3)),
    values_case("stats_rank", "has shape (45, 1)", np.zeros((_LENGTH, 1))),
    values_case("stats_scalar", "has shape ()", np.float64(1.0)),
    values_case("snapshot_strings", "has dtype object", np.full((2, 3, 2), b"x"), _SNAPSHOT),
    values_case("snapshot_grid", "has shape (2, 1, 1)", np.zeros((2, 1, 1)), _SNAPSHOT),
    values_case("snapshot_rank", "has shape (2, 6)", np.zeros((2, 6)), _SNAPSHOT),
    values_case("snapshot_big", "has shape (2, 600, 600)", np.zeros((2, 600, 600)), _SNAPSHOT),
    values_case("variant", _NOT_READ, _proto(types_pb2.DT_VARIANT, (_LENGTH,))),
    values_case("resource", _NOT_READ, _proto(types_pb2.DT_RESOURCE, (_LENGTH,))),
    values_case(
        "short_bytes", _NOT_READ, _proto(types_pb2.DT_DOUBLE, (_LENGTH,), tensor_content=b"abc")
    ),
    values_case("size_overflow", _NOT_READ, _proto(types_pb2.DT_FLOAT, (2**62, 4))),
    values_case("no_values", _NOT_READ, _proto(types_pb2.DT_FLOAT, (2**40,), float_val=[])),
]


def _write_logdir(logdir: str) -> dict[str, dict[str, dict[str, int]]]:
    """Writes the good run and one run per bad record; returns per plugin name, run and tag the
    last step written, to know when a loader has read everything."""
    last: dict[str, dict[str, dict[str, int]]] = {
        metadata.PLUGIN_NAME: {},
        metadata.SNAPSHOT_PLUGIN_NAME: {},
    }
    runs: list[tuple[str, Callable[[Events], Events]]] = [("good", lambda events: events)]
    for case in BAD_RECORDS:
        runs.append((case.name, case.damage))
    for run, damage in runs:
        events = damage(list(kernel_records([GOOD, BAD])))
        write_events(os.path.join(logdir, run), events)
        for tag, _, step, _ in events:
            plugin = metadata.PLUGIN_NAME if "/stats/" in tag else metadata.SNAPSHOT_PLUGIN_NAME
            last[plugin].setdefault(run, {})[tag] = step
    return last


def _read_everything(last: dict[str, dict[str, dict[str, int]]]) -> Callable[[Any], bool]:
    def loaded(data_provider) -> bool:
        for plugin, runs in last.items():
            listed = data_provider.list_tensors(CTX, experiment_id="", plugin_name=plugin)
            for run, tags in runs.items():
                series = listed.get(run, {})
                if any(tag not in series or series[tag].max_step != s for tag, s in tags.items()):
                    return False
        return True

    return loaded


@contextlib.contextmanager
def _app(logdir: str, load_fast: str, loaded: Callable[[Any], bool]) -> Iterator[Any]:
    """TensorBoard's WSGI app with every installed plugin, on the data provider that
    ``--load_fast`` picks, once that provider has read the whole logdir."""
    tensorboard = configure("--logdir", logdir, f"--load_fast={load_fast}", "--reload_interval=0")

    def app(data_provider):
        return application.TensorBoardWSGIApp(
            tensorboard.flags,
            tensorboard.plugin_loaders,
            data_provider,
            tensorboard.assets_zip_provider,
            None,
        )

    if load_fast == "true":
        with _data_server_provider(tensorboard.flags, loaded) as data_provider:
            yield app(data_provider)
    else:
        data_provider = _multiplexer_provider(tensorboard)
        assert loaded(data_provider)
        yield app(data_provider)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> tuple[str, dict]:
    path = str(tmp_path_factory.mktemp("fuzz"))
    return path, _write_logdir(path)


@pytest.fixture(scope="module", params=["false", "true"], ids=["load_fast_false", "load_fast_true"])
def served(request, logdir) -> Iterator[tuple[werkzeug_test.Client, dict]]:
    """A client of the app over `logdir`, and the index it serves."""
    path, last = logdir
    with _app(path, request.param, _read_everything(last)) as app:
        client = werkzeug_test.Client(app)
        response = client.get(f"{PREFIX}/index")
        assert response.status_code == 200
        yield client, strict_json(response)


def _kernels(index: dict, run: str) -> dict[str, dict]:
    return {
        layer["layer"]: kernel
        for layer in index["runs"].get(run, {}).get("layers", [])
        for direction in layer["directions"]
        for kernel in direction["kernels"]
    }


def _check(response, method: str, url: str) -> str | None:
    """What is wrong with `response`, or None."""
    body = response.get_data()
    if response.status_code >= 500:
        return f"{response.status_code}: {body[:200]!r}"
    if method == "HEAD":
        return f"HEAD has a body of {len(body)} bytes" if body else None
    if response.status_code >= 400:
        if response.mimetype != "application/json":
            return f"{response.status_code} is {response.mimetype}, not JSON"
        error = json.loads(body)
        if list(error) != ["error"] or not isinstance(error["error"], str):
            return f"{response.status_code} body {body[:200]!r} is not {{'error': str}}"
        return None
    route = url[len(PREFIX) + 1 :].split("?")[0]
    if route in ("index", "stats"):
        strict_json(response)
    elif route == "snapshot":
        decode_snapshot(body)
    return None


def test_the_good_run_is_served_whole(served):
    client, index = served

    assert "good" not in index["errors"]
    assert set(_kernels(index, "good")) == {"good", "bad"}
    for layer in ("good", "bad"):
        params = {"run": "good", "layer": layer, "direction": "forward", "kernel": "kernel"}
        stats = strict_json(client.get(f"{PREFIX}/stats?{urlencode(params)}&kind=weights"))
        assert [g["steps"] for g in stats["gates"]] == [[0, 10, 20]] * len(stats["gates"])
        assert stats["errors"] == []


@pytest.mark.parametrize("case", BAD_RECORDS, ids=lambda case: case.name)
def test_bad_record_is_reported_and_the_rest_of_its_run_served(served, case):
    client, index = served

    assert case.reason in index["errors"].get(case.name, ""), index["errors"].get(case.name)
    assert _kernels(index, case.name)["good"]["kinds"] == {"weights": GOOD_STEPS}
    for layer in ("good", "bad"):
        params = {"run": case.name, "layer": layer, "direction": "forward", "kernel": "kernel"}
        for route in ("stats", "snapshot"):
            url = f"{PREFIX}/{route}?{urlencode(params)}&kind=weights"
            response = client.get(url)
            assert _check(response, "GET", url) is None
            assert response.status_code == 200 or layer == "bad"


# Random requests.

NASTY = [
    "",
    " ",
    "nope",
    "0",
    "-1",
    "1.5",
    "1e3",
    "NaN",
    "-Infinity",
    "9" * 30,
    "0x10",
    "\x00",
    "\u0661",
    "é/ü",
    "../../etc/passwd",
    "%",
    "%zz",
    "<script>alert(1)</script>",
    "null",
    "[]",
    "{}",
    "weights\x00",
    "a/b/c/d",
]


@dataclasses.dataclass(frozen=True)
class Route:
    """A route and, per parameter, the values that exist in the logdir (`valid`, filled in
    from the index) or that are worth trying anyway (`extra`)."""

    path: str
    params: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


SLICE_PARAMS = ("run", "layer", "direction", "kernel", "kind", "cell")
ROUTES = [
    Route("index"),
    Route("stats", (*SLICE_PARAMS, "gate"), {"gate": ("input", "forget", "cell", "output")}),
    Route("snapshot", (*SLICE_PARAMS, "step"), {"step": ("0", "10", "20", "5", str(2**63))}),
    Route("static/index.js"),
    Route("static/api.js"),
    Route("static/style.css"),
    Route("static/%2e%2e/routes.py"),
    Route("static/..%2f..%2fsetup.py"),
    Route("static/nope.js"),
    Route("static/"),
    Route("nope"),
    Route("index/more"),
]
METHODS = ["GET"] * 16 + ["HEAD"] * 3 + ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def _valid_values(index: dict) -> dict[str, list[str]]:
    values: dict[str, set[str]] = {name: set() for name in SLICE_PARAMS}
    values["kind"] = set(metadata.KINDS)
    values["direction"] = set(metadata.DIRECTIONS)
    for run, entry in index["runs"].items():
        values["run"].add(run)
        for layer in entry["layers"]:
            values["layer"].add(layer["layer"])
            if layer["cell"] is not None:
                values["cell"].add(str(layer["cell"]))
            for direction in layer["directions"]:
                values["kernel"].update(k["kernel"] for k in direction["kernels"])
    values["run"].update(index["errors"])
    return {name: sorted(v) for name, v in values.items()}


def _random_value(rng: random.Random, valid: list[str], extra: tuple[str, ...]) -> str:
    roll = rng.random()
    if roll < 0.6 and (valid or extra):
        return rng.choice(valid + list(extra))
    if roll < 0.95:
        return rng.choice(NASTY)
    return "x" * rng.choice([rng.randint(100, 2000), routes.MAX_URL_BYTES + rng.randint(0, 10**5)])


def _random_request(rng: random.Random, valid: dict[str, list[str]]) -> tuple[str, str]:
    route = rng.choice(ROUTES)
    params: list[tuple[str, str]] = []
    for name in route.params:
        if rng.random() < 0.85:
            params.append(
                (name, _random_value(rng, valid.get(name, []), route.extra.get(name, ())))
            )
    if params and rng.random() < 0.1:
        params.append(rng.choice(params))  # a parameter given twice
    if rng.random() < 0.1:
        params.append((rng.choice(NASTY) or "junk", rng.choice(NASTY)))
    query = urlencode(params, quote_via=quote)
    if rng.random() < 0.05:
        query = rng.choice(["%", "&&&", "=x", "run", "%ff%fe=%ff", "run=%00&kind=%zz"])
    url = f"{PREFIX}/{route.path}" + (f"?{query}" if query else "")
    return rng.choice(METHODS), url


def test_random_requests_get_no_5xx_and_only_json_errors(served):
    client, index = served
    rng = random.Random(13)
    valid = _valid_values(index)
    problems = []
    statuses: dict[int, int] = {}

    for _ in range(REQUESTS):
        method, url = _random_request(rng, valid)
        response = client.open(url, method=method)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        problem = _check(response, method, url)
        if problem:
            problems.append(f"{method} {url[:200]}: {problem}")

    assert problems == [], "\n".join(problems[:10])
    assert {200, 400, 404, 405, 414} <= set(statuses), statuses  # the generator reaches each
