"""The Weight Gates tab's backend: the HTTP routes of docs/http-api.md.

Each route parses its parameters, asks `reader` through TensorBoard's data provider, and
responds. Every failure becomes a JSON ``{"error": message}``: 400 for a missing, repeated or
malformed parameter, 404 for a run, kernel, kind, gate or step without readable data (or a
path that is no route), 405 for a method other than GET and HEAD, 414 for a URL over
`MAX_URL_BYTES`, and 500 (logged with its traceback) only for a fault of the plugin or of the
data provider. Event files are untrusted input: nothing in them makes a 5xx (see `reader`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tensorboard_plugin_weightgates.backend import reader
from tensorboard_plugin_weightgates.format import metadata

logger = logging.getLogger(__name__)

API_VERSION = 2
"""Version of the HTTP API (docs/http-api.md), reported by the `index` route."""

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
"""The tab's ES modules and CSS, ``tensorboard_plugin_weightgates/static/``."""

STATIC_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
"""The static files served, by extension; other files under `static/` are not served."""

MAX_URL_BYTES = 8192
"""Longest URL (path and query, as sent) a route answers; the plugin's own are far shorter.
Longer ones get a JSON 414. (TensorBoard's HTTP server refuses request lines over 64 KiB with
an HTML 414 of its own, before any plugin sees them.)"""

METHODS = ("GET", "HEAD")
"""Methods the routes answer; HEAD answers as GET does, without the body."""

_STATIC_ROUTE = "/static/"
_MAX_ABS_PLANE = metadata.SNAPSHOT_PLANES.index("max_abs")
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_INT64 = (-(2**63), 2**63 - 1)


class _BadRequest(ValueError):
    """A missing or malformed request parameter (answered with 400)."""


def _json_route(handler: Callable) -> Callable:
    """Makes `handler(self, request)` a WSGI app whose failures are all JSON errors."""

    @functools.wraps(handler)
    def route(self, request: wrappers.Request) -> wrappers.Response:
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
        try:
            return handler(self, request)
        except _BadRequest as error:
            return _error_response(request, str(error), 400)
        except reader.NotFoundError as error:
            return _error_response(request, str(error), 404)
        except metadata.FormatError as error:
            return _error_response(request, f"cannot read this data: {error}", 404)
        except errors.PublicError as error:
            return _error_response(request, str(error), error.http_code)
        except Exception:
            logger.exception("weightgates: %s failed", request.full_path)
            return _error_response(
                request, "internal error in the weightgates plugin; see TensorBoard's log", 500
            )

    # A method, where Werkzeug types a function of the request alone.
    return wrappers.Request.application(route)  # type: ignore[arg-type]


def _refusal(request: wrappers.Request) -> wrappers.Response | None:
    """The error response for a request no route answers whatever its path: a method other
    than `METHODS`, a URL over `MAX_URL_BYTES`, a parameter given twice; None for others."""
    if request.method not in METHODS:
        response = _error_response(
            request, f"method {request.method} is not allowed; use {' or '.join(METHODS)}", 405
        )
        response.headers["Allow"] = ", ".join(METHODS)
        return response
    length = len(request.environ.get("PATH_INFO", "")) + len(
        request.environ.get("QUERY_STRING", "")
    )
    if length > MAX_URL_BYTES:
        return _error_response(
            request, f"the URL has {length} bytes, more than the {MAX_URL_BYTES} allowed", 414
        )
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        return _error_response(request, f"parameter {repeated[0]!r} is given more than once", 400)
    return None


class WeightGatesPlugin(base_plugin.TBPlugin):
    """Serves per-gate statistics and snapshots of recurrent layers' weights and gradients."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        self._data_provider = context.data_provider
        self._step_cache = reader.StepCache()

    def get_plugin_apps(self) -> dict[str, Callable]:
        return {
            "/index": self._index_route,
            "/stats": self._stats_route,
            "/snapshot": self._snapshot_route,
            "/activations": self._activations_route,
            "/activation_stats": self._activation_stats_route,
            "/activation_gradients": self._activation_gradients_route,
            "/activation_maps": self._activation_maps_route,
            _STATIC_ROUTE + "*": self._static_route,
            "/*": self._unknown_route,
        }

    def is_active(self) -> bool:
        return False  # TensorBoard finds the data through `data_plugin_names`.

    def data_plugin_names(self) -> tuple[str, ...]:
        return (
            metadata.PLUGIN_NAME,
            metadata.SNAPSHOT_PLUGIN_NAME,
            metadata.ACTIVATIONS_PLUGIN_NAME,
            metadata.ACTIVATION_MAPS_PLUGIN_NAME,
        )

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(
            es_module_path=_STATIC_ROUTE + "index.js",
            tab_name="Weight Gates",
            disable_reload=False,
        )

    @_json_route
    def _index_route(self, request: wrappers.Request) -> wrappers.Response:
        ctx, experiment_id = _request_context(request)
        index = reader.read_index(self._data_provider, ctx, experiment_id, self._step_cache)
        return _json_response(request, _index_json(index))

    @_json_route
    def _stats_route(self, request: wrappers.Request) -> wrappers.Response:
        kernel, kind = self._find_kernel(request, metadata.RECORD_STATS)
        gate = request.args.get("gate")
        ctx, experiment_id = _request_context(request)
        stats = reader.read_stats(self._data_provider, ctx, experiment_id, kernel, kind, gate)
        if stats.errors and not any(len(g.steps) for g in stats.gates):
            raise metadata.FormatError("; ".join(stats.errors))
        return _json_response(request, _stats_json(stats))

    @_json_route
    def _snapshot_route(self, request: wrappers.Request) -> wrappers.Response:
        kernel, kind = self._find_kernel(request, metadata.RECORD_SNAPSHOT)
        step = _int_param(request, "step")
        ctx, experiment_id = _request_context(request)
        snapshot = reader.read_snapshot(self._data_provider, ctx, experiment_id, kernel, kind, step)
        return http_util.Respond(request, _snapshot_body(snapshot), "application/octet-stream")

    @_json_route
    def _static_route(self, request: wrappers.Request) -> wrappers.Response:
        _, _, relative = request.path.partition(_STATIC_ROUTE)
        path = _static_file(relative)
        if path is None:
            raise reader.NotFoundError(f"no static file {relative!r}")
        with open(path, "rb") as f:
            content = f.read()
        content_type = STATIC_CONTENT_TYPES[os.path.splitext(path)[1].lower()]
        return http_util.Respond(request, content, content_type)

    @_json_route
    def _unknown_route(self, request: wrappers.Request) -> wrappers.Response:
        raise reader.NotFoundError(
            f"no route {request.path!r}; the routes are index, stats, snapshot, activations, "
            "activation_stats, activation_gradients, activation_maps and static/<path>"
        )

    @_json_route
    def _activations_route(self, request: wrappers.Request) -> wrappers.Response:
        ctx, experiment_id = _request_context(request)
        index = reader.read_activation_index(
            self._data_provider, ctx, experiment_id, self._step_cache
        )
        return _json_response(request, _activation_index_json(index))

    @_json_route
    def _activation_stats_route(self, request: wrappers.Request) -> wrappers.Response:
        group = self._find_group(request)
        step_text = request.args.get("step")
        unit_step: int | str | None = (
            reader.ALL_STEPS if step_text == reader.ALL_STEPS else _int_param(request, "step")
        )
        name = request.args.get("name")
        ctx, experiment_id = _request_context(request)
        stats = reader.read_activation_stats(
            self._data_provider, ctx, experiment_id, group, name, unit_step
        )
        return _json_response(request, _activation_stats_json(stats))

    @_json_route
    def _activation_gradients_route(self, request: wrappers.Request) -> wrappers.Response:
        group = self._find_group(request)
        ctx, experiment_id = _request_context(request)
        norms = reader.read_gradient_norms(self._data_provider, ctx, experiment_id, group)
        return _json_response(request, _gradient_norms_json(norms))

    @_json_route
    def _activation_maps_route(self, request: wrappers.Request) -> wrappers.Response:
        group = self._find_group(request)
        step = _int_param(request, "step")
        name = request.args.get("name")
        ctx, experiment_id = _request_context(request)
        maps = reader.read_activation_maps(
            self._data_provider, ctx, experiment_id, group, step, name
        )
        return http_util.Respond(request, _activation_maps_body(maps), "application/octet-stream")

    def _find_group(self, request: wrappers.Request) -> reader.ActivationGroup:
        """The direction and cell of a layer named by a request's `run`, `layer`, `direction`
        and `cell` parameters."""
        run, layer, direction = (
            _required_param(request, name) for name in ("run", "layer", "direction")
        )
        cell = _int_param(request, "cell")
        ctx, experiment_id = _request_context(request)
        listing = reader.list_activations(self._data_provider, ctx, experiment_id, run=run)
        return listing.group(run, (layer, cell, direction))

    def _find_kernel(self, request: wrappers.Request, record: str) -> tuple[reader.Kernel, str]:
        """The kernel and kind named by a request's slice parameters, listed with its `record`
        tags only."""
        run, layer, direction, kernel, kind = (
            _required_param(request, name)
            for name in ("run", "layer", "direction", "kernel", "kind")
        )
        cell = _int_param(request, "cell")
        if kind not in metadata.KINDS:
            raise reader.NotFoundError(f"unknown kind {kind!r}; expected one of {metadata.KINDS}")
        ctx, experiment_id = _request_context(request)
        listing = reader.list_kernels(
            self._data_provider, ctx, experiment_id, run=run, records=(record,)
        )
        return listing.kernel(run, (layer, cell, direction, kernel)), kind


def _request_context(request: wrappers.Request) -> tuple[Any, str]:
    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def _required_param(request: wrappers.Request, name: str) -> str:
    value = request.args.get(name)
    if value is None:
        raise _BadRequest(f"missing parameter {name!r}")
    return value


def _int_param(request: wrappers.Request, name: str) -> int | None:
    """An optional integer parameter: ASCII decimal digits with an optional minus sign, in
    int64 (TensorBoard's steps)."""
    value = request.args.get(name)
    if value is None:
        return None
    number = int(value) if _INTEGER.fullmatch(value) else None
    if number is None or not _INT64[0] <= number <= _INT64[1]:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise _BadRequest(f"parameter {name!r} must be an integer (decimal, 64-bit), got {shown!r}")
    return number


def _static_file(relative: str) -> str | None:
    """The file under `STATIC_DIR` that `relative` (a decoded URL path) names, or None if it
    names no servable file or anything outside `STATIC_DIR`."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        return None
    if os.path.splitext(parts[-1])[1].lower() not in STATIC_CONTENT_TYPES:
        return None
    root = os.path.realpath(STATIC_DIR)
    path = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
        return None
    return path


def _error_response(request: wrappers.Request, message: str, code: int) -> wrappers.Response:
    return http_util.Respond(request, json.dumps({"error": message}), "application/json", code=code)


def _json_response(request: wrappers.Request, body: Mapping[str, Any]) -> wrappers.Response:
    """Responds with `body` as JSON; non-finite numbers must already be None (null)."""
    return http_util.Respond(request, json.dumps(body, allow_nan=False), "application/json")


def _slice_json(kernel: reader.Kernel, kind: str) -> dict[str, Any]:
    return {
        "run": kernel.run,
        "layer": kernel.layer,
        "cell": kernel.cell,
        "direction": kernel.direction,
        "kernel": kernel.kernel,
        "kind": kind,
    }


def _index_json(index: reader.Index) -> dict[str, Any]:
    runs = {}
    for run, entries in index.runs.items():
        layers: dict[tuple[str, int | None], dict[str, Any]] = {}
        for entry in entries:
            kernel = entry.kernel
            layer = layers.setdefault(
                (kernel.layer, kernel.cell),
                {
                    "layer": kernel.layer,
                    "layer_type": kernel.layer_type,
                    "order": kernel.order,
                    "cell": kernel.cell,
                    "bidirectional": kernel.bidirectional,
                    "directions": [],
                },
            )
            directions = layer["directions"]
            if not directions or directions[-1]["direction"] != kernel.direction:
                directions.append({"direction": kernel.direction, "kernels": []})
            directions[-1]["kernels"].append(
                {
                    "kernel": kernel.kernel,
                    "kernel_order": kernel.kernel_order,
                    "shape": list(kernel.shape),
                    "axes": list(kernel.axes),
                    "variable_shape": list(kernel.variable_shape),
                    "gates": list(kernel.gates),
                    "gate_boundaries": list(kernel.gate_boundaries),
                    "counts_dead_units": kernel.counts_dead_units,
                    "kinds": {
                        kind: {
                            "stats_steps": list(steps.stats_steps),
                            "snapshot_steps": list(steps.snapshot_steps),
                        }
                        for kind, steps in entry.steps.items()
                    },
                }
            )
        runs[run] = {"layers": list(layers.values())}
    return {"version": API_VERSION, "runs": runs, "errors": dict(index.errors)}


def _stats_json(stats: reader.KernelStats) -> dict[str, Any]:
    low = metadata.STAT_FIELDS.index("hist_low")
    high = metadata.STAT_FIELDS.index("hist_high")
    return {
        **_slice_json(stats.kernel, stats.kind),
        "bins": stats.bins,
        "near_zero": stats.near_zero,
        "fields": list(metadata.STAT_FIELDS),
        "errors": list(stats.errors),
        "gates": [
            {
                "gate": gate.gate,
                "steps": gate.steps.tolist(),
                "wall_times": _nullable(gate.wall_times),
                "values": {
                    name: _nullable(gate.values[:, i])
                    for i, name in enumerate(metadata.STAT_FIELDS)
                },
                "histograms": {
                    "low": _nullable(gate.values[:, low]),
                    "high": _nullable(gate.values[:, high]),
                    "counts": _counts(gate.counts),
                },
            }
            for gate in stats.gates
        ],
    }


def _nullable(values: np.ndarray) -> list[float | None]:
    """`values` as a list with None (JSON null) for NaN and ±Inf."""
    finite = np.isfinite(values)
    if finite.all():
        return values.tolist()
    return [v if ok else None for v, ok in zip(values.tolist(), finite.tolist())]


def _counts(counts: np.ndarray) -> list[list[float | int | None]]:
    """Bucket counts as integers (as written), or as numbers if they are not whole."""
    if np.isfinite(counts).all() and np.array_equal(counts, np.round(counts)):
        return counts.astype(np.int64).tolist()
    return [_nullable(row) for row in counts]


def _snapshot_body(snapshot: reader.KernelSnapshot) -> bytes:
    """The binary layout of docs/http-api.md: header length (uint32 LE), JSON header, zero
    padding to a multiple of 4 bytes, then float32 LE planes x rows x cols."""
    values = snapshot.values
    header = {
        **_slice_json(snapshot.kernel, snapshot.kind),
        "step": snapshot.step,
        "steps": list(snapshot.steps),
        "shape": list(snapshot.kernel.shape),
        "axes": list(snapshot.kernel.axes),
        "variable_shape": list(snapshot.kernel.variable_shape),
        "rows": values.shape[1],
        "cols": values.shape[2],
        "block": list(snapshot.block),
        "planes": list(metadata.SNAPSHOT_PLANES),
        "gates": list(snapshot.kernel.gates),
        "gate_boundaries": list(snapshot.gate_boundaries),
        "nan_count": int(np.isnan(values[_MAX_ABS_PLANE]).sum()),
        "inf_count": int(np.isinf(values[_MAX_ABS_PLANE]).sum()),
    }
    encoded = json.dumps(header, allow_nan=False).encode("utf-8")
    padding = b"\0" * (-(4 + len(encoded)) % 4)
    data = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return struct.pack("<I", len(encoded)) + encoded + padding + data


# Activations (docs/http-api.md, "Activations").


def _group_json(group: reader.ActivationGroup) -> dict[str, Any]:
    info = group.info
    return {
        "run": group.run,
        "layer": info.layer,
        "cell": info.cell,
        "direction": info.direction,
        "kind": metadata.ACTIVATIONS,
    }


def _activation_index_json(index: reader.ActivationIndex) -> dict[str, Any]:
    runs = {}
    for run, entries in index.runs.items():
        layers: dict[tuple[str, int | None], dict[str, Any]] = {}
        for entry in entries:
            info = entry.group.info
            layer = layers.setdefault(
                (info.layer, info.cell),
                {
                    "layer": info.layer,
                    "layer_type": info.layer_type,
                    "order": info.order,
                    "cell": info.cell,
                    "directions": [],
                },
            )
            layer["directions"].append(
                {
                    "direction": info.direction,
                    "names": list(info.names),
                    "saturations": dict(zip(info.names, info.saturations)),
                    "units": info.units,
                    "spatial": list(info.spatial),
                    "timesteps": info.timesteps,
                    "map_names": list(entry.group.map_names),
                    "stats_steps": list(entry.stats_steps),
                    "gradient_steps": list(entry.gradient_steps),
                    "map_steps": list(entry.map_steps),
                }
            )
        runs[run] = {"layers": list(layers.values())}
    return {"version": API_VERSION, "runs": runs, "errors": dict(index.errors)}


def _activation_stats_json(stats: reader.ActivationStats) -> dict[str, Any]:
    fields = metadata.ACTIVATION_STAT_FIELDS
    low, high = fields.index("hist_low"), fields.index("hist_high")
    names = []
    for entry in stats.names:
        saturation = None
        if entry.thresholds is not None:
            saturation = {
                "type": entry.saturation,
                "low": entry.thresholds[0],
                "high": entry.thresholds[1],
            }
        saturated = entry.units_saturated
        names.append(
            {
                "name": entry.name,
                "saturation": saturation,
                "steps": entry.steps.tolist(),
                "wall_times": _nullable(entry.wall_times),
                "values": {
                    **{field: _nullable(entry.scalars[:, i]) for i, field in enumerate(fields)},
                    **{
                        field: _nullable(saturated[:, i])
                        for i, field in enumerate(reader.SATURATED_UNIT_FIELDS)
                    },
                },
                "histograms": {
                    "low": _nullable(entry.scalars[:, low]),
                    "high": _nullable(entry.scalars[:, high]),
                    "counts": _counts(entry.counts),
                },
                "units": {
                    "steps": entry.unit_steps.tolist(),
                    **{
                        field: [_nullable(row) for row in entry.units[:, i]]
                        for i, field in enumerate(metadata.ACTIVATION_UNIT_FIELDS)
                    },
                },
            }
        )
    return {
        **_group_json(stats.group),
        "bins": stats.bins,
        "units": stats.group.info.units,
        "saturated_unit_fraction": metadata.SATURATED_UNIT_FRACTION,
        "fields": [*fields, *reader.SATURATED_UNIT_FIELDS],
        "unit_fields": list(metadata.ACTIVATION_UNIT_FIELDS),
        "names": names,
    }


def _gradient_norms_json(norms: reader.GradientNorms) -> dict[str, Any]:
    return {
        **_group_json(norms.group),
        "timesteps": norms.group.info.timesteps,
        "steps": norms.steps.tolist(),
        "wall_times": _nullable(norms.wall_times),
        "norms": [_nullable(row) for row in norms.norms],
    }


def _activation_maps_body(maps: reader.ActivationMaps) -> bytes:
    """The snapshot route's binary layout (docs/http-api.md), with one block of planes per
    name: float32 LE ``names x planes x rows x cols``."""
    info = maps.group.info
    values = maps.values
    header = {
        **_group_json(maps.group),
        "step": maps.step,
        "steps": list(maps.steps),
        "sample": maps.sample,
        "names": list(maps.names),
        "units": info.units,
        "spatial": list(info.spatial),
        "timesteps": info.timesteps,
        "shape": list(info.map_shape),
        "rows": values.shape[2],
        "cols": values.shape[3],
        "block": list(maps.block),
        "planes": list(metadata.SNAPSHOT_PLANES),
        "valid": None if maps.valid is None else _nullable(maps.valid.astype(np.float64)),
        "nan_count": {
            name: int(np.isnan(values[i, _MAX_ABS_PLANE]).sum())
            for i, name in enumerate(maps.names)
        },
    }
    encoded = json.dumps(header, allow_nan=False).encode("utf-8")
    padding = b"\0" * (-(4 + len(encoded)) % 4)
    data = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return struct.pack("<I", len(encoded)) + encoded + padding + data
