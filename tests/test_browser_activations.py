"""The Activations view in headless Chromium, against one real `tensorboard` process serving
runs written by the real callback: two LSTM runs (layer ``rnn``) logged with the activations
probe, a third whose weights are set to NaN before a last `log_activations`, a GRU run (layer
``gru``) whose probe has no targets (so no gradients through time), and a run of a custom loop
that logs activations only (`log_activations` without `log_weights`).

What the page shows is checked against what the activation routes serve.
"""

from __future__ import annotations

import json
import os
import struct
import time
import urllib.parse

import numpy as np
import pytest
from browser_helpers import ARTIFACTS, chromium_browser, get, get_json, plugin_frame, tensorboard

pytestmark = pytest.mark.browser

pytest.importorskip("playwright.sync_api")

LSTM, LSTM_B, NAN, GRU = "lstm/train", "lstm_b/train", "nan/train", "gru/train"
RUNS = (LSTM, LSTM_B, NAN, GRU)
RNN_RUNS = (LSTM, LSTM_B, NAN)
"""The runs of the LSTM layer ``rnn``."""
SOLO = "solo"
"""The run with activations only: layer ``solo``, a GRU after a Dense layer."""
UNITS = {LSTM: 4, LSTM_B: 4, NAN: 4, GRU: 3}
TIMESTEPS = 6
SETTLE = "() => !document.querySelector('[aria-busy]') && !document.querySelector('.wg-loading')"


def write_logs(logdir) -> None:
    """Trains the three runs (update_freq=2, snapshot_freq=4, 8 training steps)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tensorboard_plugin_weightgates import WeightGatesCallback, log_activations

    keras = tf.keras
    rng = np.random.default_rng(0)
    x = rng.normal(scale=3.0, size=(64, TIMESTEPS, 3)).astype("float32")  # gates saturate
    y = np.cumsum(x[:, :, :2], axis=1).astype("float32")
    for seed, run in enumerate(RUNS):
        name = run.split("/")[0]
        keras.utils.set_random_seed(seed)
        recurrent = keras.layers.GRU if name == "gru" else keras.layers.LSTM
        inputs = keras.Input((TIMESTEPS, 3))
        layer_name = "gru" if name == "gru" else "rnn"
        hidden = recurrent(UNITS[run], return_sequences=True, name=layer_name)(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
        model.compile(optimizer=keras.optimizers.Adam(0.02 * (seed + 1)), loss="mse")
        probe = x[:8] if name == "gru" else (x[:8], y[:8])
        callback = WeightGatesCallback(
            log_dir=str(logdir / name), update_freq=2, snapshot_freq=4, activations=probe
        )
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
        if name == "nan":
            layer = model.get_layer("rnn")
            kernel, recurrent_kernel, bias = layer.get_weights()
            kernel[:] = np.nan
            layer.set_weights([kernel, recurrent_kernel, bias])
            writer = tf.summary.create_file_writer(str(logdir / name / "train"))
            step = int(model.optimizer.iterations.numpy()) + 1
            log_activations(model, x[:8], step, writer, y=y[:8])
            writer.flush()
    keras.utils.set_random_seed(2)
    inputs = keras.Input((TIMESTEPS, 3))
    hidden = keras.layers.GRU(3, return_sequences=True, name="solo")(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile(optimizer="sgd", loss="mse")
    writer = tf.summary.create_file_writer(str(logdir / SOLO))
    for step in (0, 1):
        log_activations(model, x[:8], step, writer, y=y[:8])
    writer.flush()


def route(url, path, **params):
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return f"{url}/data/plugin/weightgates/{path}?{query}"


def stats(url, run, step=None, name=None, layer="rnn"):
    return get_json(
        route(
            url, "activation_stats", run=run, layer=layer, direction="forward", step=step, name=name
        )
    )


def maps(url, run, step=None):
    body = get(route(url, "activation_maps", run=run, layer="rnn", direction="forward", step=step))
    (length,) = struct.unpack_from("<I", body, 0)
    header = json.loads(body[4 : 4 + length].decode("utf-8"))
    offset = 4 + length + (-(4 + length) % 4)
    shape = (len(header["names"]), len(header["planes"]), header["rows"], header["cols"])
    return header, np.frombuffer(body, dtype="<f4", offset=offset).reshape(shape)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("activation_logs")
    write_logs(logdir)
    with tensorboard(logdir, None, RUNS, ARTIFACTS / "tensorboard-activations.log") as url:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = get_json(f"{url}/data/plugin/weightgates/activations")["runs"]
            if all(run in listed for run in (*RUNS, SOLO)):
                nan = listed[NAN]["layers"][0]["directions"][0]["stats_steps"]
                lstm = listed[LSTM]["layers"][0]["directions"][0]["stats_steps"]
                if nan and lstm and nan[-1] > lstm[-1]:
                    break
            time.sleep(0.5)
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


class Tab:
    """TensorBoard's #weightgates on the Activations view."""

    def __init__(self, browser, url):
        self.url = url
        self.context = browser.new_context(
            viewport={"width": 1400, "height": 1600}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(f"{url}/#weightgates")
        self.frame = plugin_frame(self.page)
        self.frame.wait_for_selector(".wg-app")
        self.settle()
        self.frame.get_by_role("tab", name="Activations").click()
        self.settle()
        self.select_layer("rnn (LSTM)")

    def select_layer(self, label):
        """Picks the first of the toolbar's layers whose option text holds `label` ("rnn (LSTM)";
        a name that several layers share is labelled with its shape in some versions)."""
        options = self.frame.eval_on_selector_all(
            ".wg-layer-select option", "els => els.map(e => e.textContent)"
        )
        option = next(text for text in options if label in text)
        self.frame.get_by_label("Layer", exact=True).select_option(label=option)
        self.settle()

    def settle(self):
        self.frame.wait_for_function(SETTLE)

    def plot(self, name):
        return self.frame.locator(f'canvas.wg-saturation-canvas[data-name="{name}"]')

    def hover_fractions(self, name, right, left):
        """Moves the pointer onto the dot at (right, left) of `name`'s plot; returns the tooltip."""
        canvas = self.plot(name)
        canvas.scroll_into_view_if_needed()
        box = json.loads(canvas.get_attribute("data-box"))
        rect = canvas.bounding_box()
        self.page.mouse.move(
            rect["x"] + box["x"] + right * box["width"],
            rect["y"] + box["y"] + (1 - left) * box["height"],
        )
        tooltip = self.frame.locator(".wg-activations .wg-tooltip")
        tooltip.wait_for(state="visible")
        return tooltip

    def screenshot(self, what):
        path = ARTIFACTS / "activations" / f"{what}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, server):
    opened = Tab(browser, server)
    yield opened
    assert opened.errors == [], "uncaught errors in the page"
    opened.close()


def finite_units(entry):
    units = entry["units"]
    return [
        (unit, left, right)
        for unit, (left, right) in enumerate(
            zip(units["left_saturated"][0], units["right_saturated"][0])
        )
        if left is not None and right is not None
    ]


def lone_unit(entries, others=()):
    """A unit of `entries` whose dot no other dot of the plot is near (so hover finds it)."""
    dots = [d for e in [*entries, *others] for d in finite_units(e)]
    for unit, left, right in finite_units(entries[0]):
        near = [d for d in dots if abs(d[1] - left) < 0.04 and abs(d[2] - right) < 0.04]
        if len(near) == 1:
            return unit, left, right
    pytest.skip("every dot of this plot has a neighbour")


def test_one_dot_per_unit_of_every_run_with_finite_values(tab, server):
    for name in ("input", "forget", "output", "hidden_state"):
        expected = 0
        for run in RNN_RUNS:
            entry = next((e for e in stats(server, run)["names"] if e["name"] == name), None)
            expected += len(finite_units(entry)) if entry else 0
        assert int(tab.plot(name).get_attribute("data-dots")) == expected, name
    assert int(tab.plot("forget").get_attribute("data-dots")) == UNITS[LSTM] + UNITS[LSTM_B], (
        "both sane runs, not the NaN run"
    )
    assert tab.plot("cell_state").count() == 0, "the cell state has no saturation"
    legend = tab.frame.locator("section[data-section=saturation] .wg-run-legend").inner_text()
    assert all(run in legend for run in RNN_RUNS) and GRU not in legend
    tab.screenshot("saturation")


def test_hovering_a_dot_names_run_layer_gate_unit_and_fractions(tab, server):
    forget = stats(server, LSTM, name="forget")["names"][0]
    other = stats(server, LSTM_B, name="forget")["names"][0]
    unit, left, right = lone_unit([forget], others=[other])
    tooltip = tab.hover_fractions("forget", right, left)
    assert tooltip.get_attribute("data-run") == LSTM
    assert tooltip.get_attribute("data-unit") == str(unit)
    text = tooltip.inner_text()
    for part in (
        LSTM,
        "rnn",
        "forget",
        f"Unit\n{unit}",
        "Right-saturated (> 0.9)",
        "Left-saturated (< 0.1)",
    ):
        assert part in text, part
    shown = dict(
        line.split("\t") for line in text.replace(")\n", ")\t").split("\n") if "\t" in line
    )
    assert float(shown["Right-saturated (> 0.9)"]) == pytest.approx(right, abs=5e-4)
    assert float(shown["Left-saturated (< 0.1)"]) == pytest.approx(left, abs=5e-4)


def test_the_step_slider_moves_the_dots_to_that_step(tab, server):
    steps = stats(server, LSTM, step="all", name="input")["names"][0]["units"]["steps"]
    slider = tab.frame.locator(".wg-activations .wg-step-slider")
    slider.fill("0")
    tab.settle()
    assert tab.frame.locator(".wg-activations .wg-step-label").inner_text() == str(steps[0])
    header = tab.frame.locator("section[data-section=saturation] .wg-panel-step").inner_text()
    assert header == f"step {steps[0]}"
    entry = stats(server, LSTM_B, step=steps[0], name="input")["names"][0]
    other = stats(server, LSTM, step=steps[0], name="input")["names"][0]
    unit, left, right = lone_unit([entry], others=[other])
    tooltip = tab.hover_fractions("input", right, left)
    assert tooltip.get_attribute("data-run") == LSTM_B
    assert tooltip.get_attribute("data-unit") == str(unit)
    assert f"Step\n{steps[0]}" in tooltip.inner_text()


def test_a_nan_run_is_named_and_left_out_of_the_dots(tab, server):
    alert = tab.frame.locator(f'.wg-nan-run[data-run="{NAN}"]')
    assert alert.is_visible()
    assert "NaN" in alert.inner_text() and "diverged" in alert.inner_text()
    nan_stats = stats(server, NAN)
    assert all(finite_units(e) == [] for e in nan_stats["names"] if e["saturation"])
    assert tab.frame.locator(f'.wg-nan-run[data-run="{LSTM}"]').count() == 0


def test_gradient_flow_is_on_a_log_axis_one_line_per_step_or_per_run(tab, server):
    gradients = get_json(
        route(server, "activation_gradients", run=LSTM, layer="rnn", direction="forward")
    )
    chart = tab.frame.locator("canvas.wg-flow-canvas")
    assert chart.get_attribute("data-scale") == "log"
    assert int(chart.get_attribute("data-series")) == len(gradients["steps"])
    assert int(chart.get_attribute("data-timesteps")) == TIMESTEPS
    tab.frame.get_by_role("button", name="Runs at one step").click()
    tab.settle()
    series = int(tab.frame.locator("canvas.wg-flow-canvas").get_attribute("data-series"))
    assert series == len(RNN_RUNS), "one line per run of the layer"
    tab.screenshot("gradient-flow")


def test_without_targets_the_view_says_how_to_log_gradients(tab):
    tab.select_layer("gru (GRU)")
    tab.frame.wait_for_selector('canvas.wg-saturation-canvas[data-name="update"]')
    text = tab.frame.locator("section[data-section=gradient-flow]").inner_text()
    assert "No gradients through time logged" in text
    assert "activations=(x_probe, y_probe)" in text
    assert tab.frame.locator("canvas.wg-flow-canvas").count() == 0


def test_hovering_a_map_shows_unit_timestep_and_logged_value(tab, server):
    unit, timestep = 2, 3
    canvas = tab.frame.locator(f'canvas.wg-map-canvas[data-run="{LSTM}"][data-name="forget"]')
    rows, cols = int(canvas.get_attribute("data-rows")), int(canvas.get_attribute("data-cols"))
    assert (rows, cols) == (UNITS[LSTM], TIMESTEPS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    tab.page.mouse.move(
        box["x"] + (timestep + 0.5) * box["width"] / cols,
        box["y"] + (unit + 0.5) * box["height"] / rows,
    )
    tooltip = tab.frame.locator(".wg-activations .wg-tooltip")
    tooltip.wait_for(state="visible")
    assert (tooltip.get_attribute("data-unit"), tooltip.get_attribute("data-timestep")) == (
        str(unit),
        str(timestep),
    )
    header, data = maps(server, LSTM)
    expected = data[header["names"].index("forget"), 0, unit, timestep]
    assert float(tooltip.get_attribute("data-value")) == pytest.approx(float(expected), rel=1e-6)
    assert (
        f"step {header['step']}"
        in tab.frame.locator(
            f'article.wg-maps-panel[data-run="{LSTM}"] .wg-panel-step'
        ).inner_text()
    )
    names = tab.frame.eval_on_selector_all(
        f'canvas.wg-map-canvas[data-run="{LSTM}"]', "els => els.map(e => e.dataset.name)"
    )
    assert names == header["names"]
    with tab.page.expect_download() as download:
        tab.frame.locator(
            f'article.wg-maps-panel[data-run="{LSTM}"] button', has_text="PNG"
        ).click()
    assert download.value.suggested_filename.endswith(".png")


def test_the_health_table_has_saturation_columns(tab, server):
    tab.frame.get_by_role("tab", name="Health").click()
    tab.frame.wait_for_selector(".wg-stats-table")
    tab.settle()
    headers = tab.frame.eval_on_selector_all(
        ".wg-stats-table th", "els => els.map(e => e.innerText)"
    )
    assert "Right-saturated" in headers and "Left-sat. units" in headers
    column = headers.index("Right-saturated")
    row = tab.frame.locator(f'.wg-stats-table tr[data-run="{LSTM}"]', has_text="forget").first
    step = int(row.locator("td").nth(headers.index("Step")).inner_text())
    forget = stats(server, LSTM, name="forget")["names"][0]
    i = max(k for k, s in enumerate(forget["steps"]) if s <= step)
    shown = float(row.locator("td").nth(column).inner_text())
    assert shown == pytest.approx(forget["values"]["right_saturated"][i], abs=5e-4)


def test_a_layer_without_activations_offers_the_ones_with(tab):
    tab.select_layer("head (Dense")
    message = tab.frame.locator(".wg-activations .wg-message")
    assert "No activations of head" in message.inner_text()
    assert tab.frame.locator("canvas.wg-saturation-canvas").count() == 0
    message.get_by_role("button", name="rnn (LSTM)").click()
    tab.frame.wait_for_selector("canvas.wg-saturation-canvas")
    chosen = tab.frame.eval_on_selector(
        ".wg-layer-select", "select => select.selectedOptions[0].textContent"
    )
    assert "rnn (LSTM)" in chosen


def test_arrow_keys_step_through_the_logged_steps(tab, server):
    listed = get_json(f"{server}/data/plugin/weightgates/activations")["runs"]
    steps = sorted(
        {
            step
            for run in RNN_RUNS
            for kind in ("stats_steps", "gradient_steps", "map_steps")
            for step in listed[run]["layers"][0]["directions"][0][kind]
        }
    )
    label = tab.frame.locator(".wg-activations .wg-step-label")
    assert int(label.inner_text()) == steps[-1]
    tab.frame.evaluate("() => document.activeElement?.blur()")
    tab.page.keyboard.press("ArrowLeft")
    tab.settle()
    assert int(label.inner_text()) == steps[-2]
    tab.page.keyboard.press("ArrowRight")
    tab.settle()
    assert int(label.inner_text()) == steps[-1]


def test_a_run_with_activations_only_has_its_layer_in_the_activations_view(tab, server):
    assert tab.frame.get_by_role("checkbox", name=SOLO, exact=True).is_checked()
    tab.select_layer("solo (GRU)")
    tab.frame.wait_for_selector('canvas.wg-saturation-canvas[data-name="update"]')
    tab.settle()
    solo = stats(server, SOLO, layer="solo")
    units = next(e for e in solo["names"] if e["name"] == "update")
    assert int(tab.plot("update").get_attribute("data-dots")) == len(finite_units(units))
    assert tab.frame.get_by_role("tab", name="Heatmap").is_disabled()
    assert tab.frame.get_by_role("tab", name="Activations").get_attribute("aria-selected") == "true"
