"""The Weight Gates tab in headless Chromium, against a real `tensorboard` process (both of its
loaders) serving runs written by the real callback.

Screenshots go to test-artifacts/ (see docs/screenshots/ for the ones kept).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from browser_helpers import (
    ARTIFACTS,
    ATTENTION_RUN,
    BASELINE_RUN,
    CONV_RUN,
    DIVERGED_RUN,
    DIVERGED_STEPS,
    LAYER_RUNS,
    NAN_CELL,
    NAN_RUN,
    NARROW_RUN,
    REPO,
    RUN_DIRS,
    WIDE_RUN,
    XSS_RUN,
    chromium_browser,
    get,
    get_json,
    plugin_frame,
    run_name,
    snapshot,
    tensorboard,
    write_layer_logs,
    write_logs,
)

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")

RUNS = tuple(run_name(d) for d in RUN_DIRS)
BASELINE, NAN, XSS = run_name(BASELINE_RUN), run_name(NAN_RUN), run_name(XSS_RUN)
GATES = ["input", "forget", "cell", "output"]
VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return write_logs(tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="module", params=[True, False], ids=["load_fast", "python_loader"])
def server(request, logs):
    name = request.param and "load_fast" or "python_loader"
    with tensorboard(
        logs.logdir, request.param, RUNS, ARTIFACTS / f"tensorboard-{name}.log"
    ) as url:
        yield url, name


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


class Tab:
    """One browser page on TensorBoard's #weightgates, its plugin iframe and its dialogs."""

    def __init__(self, browser, url, name):
        self.url = url
        self.name = name
        self.context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        self.page = self.context.new_page()
        self.dialogs = []
        self.errors = []
        self.page.on("dialog", self._on_dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.open()

    def _on_dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self):
        self.page.goto(f"{self.url}/#weightgates")
        self.frame = plugin_frame(self.page)
        self.settle()

    def settle(self):
        """Waits until the tab has loaded and drawn (no view busy)."""
        self.frame.wait_for_selector(".wg-app")
        self.frame.wait_for_function(
            "() => !document.querySelector('[aria-busy]') && !document.querySelector('.wg-loading')"
        )

    def panel_runs(self):
        return self.frame.eval_on_selector_all(
            "article.wg-panel", "els => els.map(e => e.dataset.run)"
        )

    def checkbox(self, run):
        return self.frame.get_by_role("checkbox", name=run, exact=True)

    def screenshot(self, what):
        path = ARTIFACTS / self.name / f"{what}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, server):
    url, name = server
    opened = Tab(browser, url, name)
    yield opened
    assert opened.errors == [], "uncaught errors in the page"
    opened.close()


def non_background_fraction(frame, selector):
    """Share of the canvas's pixels that are neither transparent nor white."""
    return frame.eval_on_selector(
        selector,
        """canvas => {
            const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            let drawn = 0;
            for (let i = 0; i < data.length; i += 4) {
                const white = data[i] >= 250 && data[i + 1] >= 250 && data[i + 2] >= 250;
                if (data[i + 3] > 0 && !white) drawn++;
            }
            return drawn / (data.length / 4);
        }""",
    )


def test_plugin_is_listed_active(server):
    url, _ = server
    listing = get_json(f"{url}/data/plugins_listing")["weightgates"]
    assert listing["enabled"] is True
    assert listing["tab_name"] == "Weight Gates"
    assert listing["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": "/data/plugin/weightgates/static/index.js",
    }
    served = get(f"{url}/data/plugin/weightgates/static/index.js")
    assert served == (REPO / "tensorboard_plugin_weightgates" / "static" / "index.js").read_bytes()


def test_heatmap_draws_every_run_direction_and_gate(tab):
    assert tab.panel_runs() == list(RUNS), "runs in TensorBoard's order, one panel each"
    canvases = tab.frame.eval_on_selector_all(
        "canvas.wg-heatmap-canvas", "els => els.map(e => [e.dataset.run, e.dataset.direction])"
    )
    assert canvases == [[run, d] for run in RUNS for d in ("forward", "backward")]
    for run in RUNS:
        fraction = non_background_fraction(
            tab.frame, f'canvas.wg-heatmap-canvas[data-run="{run}"][data-direction="forward"]'
        )
        assert fraction > 0.5, f"{run}'s heatmap is mostly blank ({fraction:.0%} drawn)"
    labels = tab.frame.eval_on_selector_all(
        "article.wg-panel:first-child .wg-gate-label", "els => els.map(e => e.dataset.gate)"
    )
    assert labels == GATES * 2
    assert tab.frame.locator(".wg-gate-label", has_text="forget").first.is_visible()
    tab.screenshot("heatmap")


def test_unticking_a_run_removes_its_panel_and_survives_reload(tab):
    tab.checkbox(BASELINE).uncheck()
    tab.settle()
    assert tab.panel_runs() == [NAN, XSS]
    tab.open()
    assert not tab.checkbox(BASELINE).is_checked(), "the selection is kept in localStorage"
    assert tab.panel_runs() == [NAN, XSS]
    tab.frame.get_by_role("button", name="None", exact=True).click()
    assert "No run selected" in tab.frame.locator(".wg-main-message").inner_text()
    tab.frame.get_by_role("button", name="All", exact=True).click()
    tab.settle()
    assert tab.panel_runs() == list(RUNS)


def test_hovering_a_cell_shows_the_logged_value(tab, logs):
    row, col = 1, 6
    selector = f'canvas.wg-heatmap-canvas[data-run="{BASELINE}"][data-direction="forward"]'
    canvas = tab.frame.locator(selector)
    rows, cols, step = (int(canvas.get_attribute(f"data-{k}")) for k in ("rows", "cols", "step"))
    box = canvas.bounding_box()
    tab.page.mouse.move(
        box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows
    )
    tooltip = tab.frame.locator(".wg-heatmap .wg-tooltip")
    tooltip.wait_for(state="visible")
    shown = float(tooltip.get_attribute("data-value"))

    header, data = snapshot(
        tab.url,
        run=BASELINE,
        layer="encoder",
        direction="forward",
        kernel="kernel",
        kind="weights",
        step=step,
    )
    assert (header["rows"], header["cols"], header["step"]) == (rows, cols, step)
    assert shown == float(data[0, row, col])
    final = logs.final_weights[BASELINE]["encoder/forward_lstm/lstm_cell/kernel"]
    assert step == max(header["steps"]), "the latest snapshot is shown first"
    assert shown == float(np.float32(final[row, col])), "the model's own weight after training"

    text = tooltip.inner_text()
    assert BASELINE in text and "forward" in text, "a Bidirectional layer names its direction"
    assert tooltip.get_attribute("data-row-text") == f"input feature {row}"
    assert tooltip.get_attribute("data-column-text") == "forget gate, unit 2"
    tab.screenshot("heatmap-hover")


def test_nan_run_shows_its_nan_count(tab):
    panel = tab.frame.locator(f'article.wg-panel[data-run="{NAN}"]')
    expected = 0
    for direction in ("forward", "backward"):
        header, data = snapshot(
            tab.url, run=NAN, layer="encoder", direction=direction, kernel="kernel", kind="weights"
        )
        expected += header["nan_count"]
        if direction == "forward":
            assert np.isnan(data[0][NAN_CELL])
    assert expected >= 1
    assert panel.get_attribute("data-nan-count") == str(expected)
    assert panel.locator(".wg-badge-nan").inner_text() == f"{expected} NaN"
    assert tab.frame.locator(f'article.wg-panel[data-run="{BASELINE}"] .wg-badge-nan').count() == 0


def test_html_run_name_is_text(tab):
    assert tab.frame.locator(".wg-run-list").get_by_text(XSS, exact=True).is_visible()
    assert tab.frame.locator(f'article.wg-panel[data-run="{XSS}"] .wg-run-name').inner_text() == XSS
    assert tab.frame.locator("img").count() == 0
    tab.frame.locator(".wg-runs-filter").fill("onerror")
    assert tab.frame.eval_on_selector_all(
        ".wg-run input", "els => els.map(e => e.dataset.run)"
    ) == [XSS]
    tab.frame.locator(".wg-runs-filter").fill("")
    assert tab.dialogs == []


def test_step_slider_scrubs_with_arrow_keys(tab):
    slider = tab.frame.locator(".wg-heatmap .wg-step-slider")
    label = tab.frame.locator(".wg-heatmap .wg-step-label")
    latest = int(label.inner_text())
    slider.focus()
    tab.page.keyboard.press("ArrowLeft")
    tab.settle()
    previous = int(label.inner_text())
    assert previous < latest
    steps = tab.frame.eval_on_selector_all(
        f'canvas.wg-heatmap-canvas[data-run="{BASELINE}"]',
        "els => els.map(e => Number(e.dataset.step))",
    )
    assert steps == [previous, previous]
    tab.page.keyboard.press("ArrowRight")
    tab.settle()
    assert int(label.inner_text()) == latest


def test_gradients_show_only_runs_that_logged_them(tab):
    tab.frame.get_by_role("button", name="Gradients", exact=True).click()
    tab.settle()
    assert tab.panel_runs() == [BASELINE]
    tab.frame.get_by_label("Colour", exact=True).select_option("magnitude")
    tab.settle()
    assert non_background_fraction(tab.frame, "canvas.wg-heatmap-canvas") > 0.3
    tab.screenshot("heatmap-gradients")


def test_histograms_and_health_views(tab):
    tab.frame.get_by_role("tab", name="Histograms").click()
    tab.settle()
    histograms = tab.frame.locator("canvas.wg-histogram-canvas")
    assert histograms.count() == 2 * len(GATES) * len(RUNS), "a card per direction, gate and run"
    assert tab.frame.locator(f'figure.wg-chart[data-run="{NAN}"] canvas').count() == 2 * len(GATES)
    assert non_background_fraction(tab.frame, "canvas.wg-histogram-canvas") > 0.02
    tab.screenshot("histograms")

    tab.frame.get_by_role("tab", name="Health").click()
    tab.settle()
    assert tab.frame.locator("canvas.wg-line-canvas").count() == 2 * len(GATES) * 6
    rows = tab.frame.locator(".wg-stats-table tbody tr")
    assert rows.count() == len(RUNS) * 2 * len(GATES)
    tab.frame.get_by_role("button", name="NaN", exact=True).click()
    tab.settle()
    first = tab.frame.locator(".wg-stats-table tbody tr").first
    assert first.get_attribute("data-run") == NAN, (
        "sorting by NaN count (descending) puts the NaN run first"
    )
    tab.screenshot("health")

    with tab.page.expect_download() as download:
        tab.frame.get_by_role("button", name="Download CSV").click()
    csv = open(download.value.path(), encoding="utf-8", newline="").read()
    assert csv.startswith("Run,Direction,Gate,Step,Mean")
    assert f"\r\n{XSS}," in csv


def test_panel_downloads_as_png(tab):
    with tab.page.expect_download() as download:
        tab.frame.locator(f'article.wg-panel[data-run="{BASELINE}"]').get_by_role(
            "button", name="PNG"
        ).click()
    path = ARTIFACTS / tab.name / "panel-download.png"
    download.value.save_as(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    canvas_width = tab.frame.eval_on_selector(
        f'canvas.wg-heatmap-canvas[data-run="{BASELINE}"]', "c => c.clientWidth"
    )
    assert width >= 2 * canvas_width and height > 200, "at least 2 pixels per CSS pixel"


def test_tensorboard_reload_refetches_the_index(tab):
    for _ in range(3):
        try:
            with tab.page.expect_request(
                lambda r: r.url.endswith("/data/plugin/weightgates/index"), timeout=5000
            ):
                tab.page.locator("button.reload-button").click()
            break
        except playwright_api.TimeoutError:
            continue
    else:
        pytest.fail("TensorBoard's reload did not reach the tab (experimental.DataReloaded)")
    tab.settle()
    assert tab.panel_runs() == list(RUNS)


def test_api_errors_are_shown_in_the_tab(browser, server):
    url, _ = server
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    failure = '{"error": "snapshot of step 12 is unreadable"}'
    page.route(
        lambda u: "/data/plugin/weightgates/snapshot" in u and "run=baseline" in u,
        lambda route: route.fulfill(status=404, body=failure, content_type="application/json"),
    )
    page.goto(f"{url}/#weightgates")
    frame = plugin_frame(page)
    error = frame.locator(f'article.wg-panel[data-run="{BASELINE}"] .wg-panel-error').first
    error.wait_for()
    assert error.inner_text() == "snapshot of step 12 is unreadable"
    assert frame.locator(f'canvas.wg-heatmap-canvas[data-run="{NAN}"]').count() == 2

    page.route(
        "**/data/plugin/weightgates/index",
        lambda route: route.fulfill(status=500, body="<html>Internal Server Error</html>"),
    )
    page.reload()
    frame = plugin_frame(page)
    message = frame.locator(".wg-message-error")
    message.wait_for()
    assert "index failed: HTTP 500" in message.inner_text()
    assert frame.get_by_role("button", name="Retry").is_visible()
    context.close()


def test_empty_log_directory_says_what_to_do(browser, tmp_path):
    (tmp_path / "empty").mkdir()
    with tensorboard(tmp_path / "empty", False, (), ARTIFACTS / "tensorboard-empty.log") as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(f"{url}/#weightgates")
        frame = plugin_frame(page)
        message = frame.locator(".wg-message")
        message.wait_for()
        text = message.inner_text()
        assert "from tensorboard_plugin_weightgates import WeightGatesCallback" in text
        assert 'callbacks=[WeightGatesCallback(log_dir="logs/run1")]' in text
        assert "tensorboard --logdir logs" in text
        path = ARTIFACTS / "empty.png"
        page.screenshot(path=str(path), full_page=True)
        context.close()


# Layers the tab lays out in their own way (attention heads, ConvLSTM2D, same-named layers,
# a diverged run), written without training and served by one loader: what is tested here
# is the layout, which does not depend on the loader.


@pytest.fixture(scope="module")
def layer_server(tmp_path_factory):
    logdir = write_layer_logs(tmp_path_factory.mktemp("layers"))
    with tensorboard(logdir, False, LAYER_RUNS, ARTIFACTS / "tensorboard-layers.log") as url:
        yield url


@pytest.fixture
def layer_tab(browser, layer_server):
    opened = Tab(browser, layer_server, "layers")
    yield opened
    assert opened.errors == [], "uncaught errors in the page"
    opened.close()


def choose_layer(tab, label):
    tab.frame.get_by_label("Layer", exact=True).select_option(label=label)
    tab.settle()


def hover_cell(tab, selector, row, col):
    """Moves the mouse over stored cell (row, col) of a heatmap; returns the tooltip."""
    canvas = tab.frame.locator(selector)
    rows, cols = (int(canvas.get_attribute(f"data-{k}")) for k in ("rows", "cols"))
    box = canvas.bounding_box()
    tab.page.mouse.move(
        box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows
    )
    tooltip = tab.frame.locator(".wg-heatmap .wg-tooltip")
    tooltip.wait_for(state="visible")
    return tooltip


def kernel_buttons(tab):
    return tab.frame.eval_on_selector_all(
        '[aria-label="Kernel"] button', "els => els.map(e => e.textContent)"
    )


def test_attention_kernel_has_a_band_per_head_and_names_head_and_dim(layer_tab):
    tab = layer_tab
    choose_layer(tab, "1. attention (MultiHeadAttention)")
    assert kernel_buttons(tab) == [
        "query/kernel",
        "query/bias",
        "key/kernel",
        "key/bias",
        "value/kernel",
        "value/bias",
        "attention_output/kernel",
        "attention_output/bias",
    ], "storage order"
    assert tab.frame.locator(".wg-layer-facts").inner_text().strip() == "1 run", "no direction"
    heads = [f"head_{h}" for h in range(4)]
    bands = tab.frame.locator(".wg-heads .wg-gate-label")
    assert bands.evaluate_all("els => els.map(e => e.dataset.gate)") == heads
    widths = bands.evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert max(widths) - min(widths) < 1.5, "four equal bands, one per head"

    row, head, dim = 5, 2, 3
    selector = f'canvas.wg-heatmap-canvas[data-run="{ATTENTION_RUN}"]'
    tooltip = hover_cell(tab, selector, row, head * 8 + dim)
    assert tooltip.get_attribute("data-row-text") == f"input feature {row}"
    assert tooltip.get_attribute("data-column-text") == f"head {head}, head dim {dim}"
    assert tooltip.get_attribute("data-gate") == f"head_{head}"
    assert "Direction" not in tooltip.inner_text()
    step = int(tab.frame.locator(selector).get_attribute("data-step"))
    header, data = snapshot(
        tab.url,
        run=ATTENTION_RUN,
        layer="attention",
        direction="forward",
        kernel="query/kernel",
        kind="weights",
        step=step,
    )
    assert float(tooltip.get_attribute("data-value")) == float(data[0, row, head * 8 + dim])
    assert (
        "rows: input feature · columns: head, head dim"
        in tab.frame.locator(".wg-axes-caption").inner_text()
    )
    tab.screenshot("attention-heads")

    tab.frame.get_by_role("button", name="attention_output/kernel", exact=True).click()
    tab.settle()
    tooltip = hover_cell(tab, selector, 7, 1)
    assert tooltip.get_attribute("data-row-text") == "output unit 7", "shown transposed"
    assert tooltip.get_attribute("data-column-text") == "head 0, head dim 1"


def test_convlstm_kernel_hover_names_offset_channel_gate_and_unit(layer_tab):
    tab = layer_tab
    choose_layer(tab, "1. convlstm (ConvLSTM2D)")
    selector = f'canvas.wg-heatmap-canvas[data-run="{CONV_RUN}"]'
    # Kernel [3, 3, 2, 16]: row r is offset (r // 6, r // 2 % 3), input channel r % 2.
    row, col = 13, 4 + 2
    tooltip = hover_cell(tab, selector, row, col)
    assert tooltip.get_attribute("data-row-text") == "window offset (2, 0), input channel 1"
    assert tooltip.get_attribute("data-column-text") == "forget gate, unit 2"
    header, data = snapshot(
        tab.url,
        run=CONV_RUN,
        layer="convlstm",
        direction="forward",
        kernel="kernel",
        kind="weights",
    )
    assert header["axes"] == ["offset_0", "offset_1", "input_channel", "unit"]
    assert float(tooltip.get_attribute("data-value")) == float(data[0, row, col])
    ticks = tab.frame.eval_on_selector_all(
        ".wg-row-ticks .wg-tick", "els => els.map(e => e.textContent)"
    )
    assert ticks == [f"({i}, {j})" for i in range(3) for j in range(3)], "a tick per offset block"
    tab.page.mouse.move(0, 0)
    tab.screenshot("convlstm-kernel")


def test_same_named_layers_of_other_shapes_are_listed_apart(layer_tab):
    tab = layer_tab
    options = tab.frame.eval_on_selector_all(
        ".wg-layer-select option", "els => els.map(e => e.textContent)"
    )
    narrow, wide = "1. lstm (LSTM, kernel 3×16)", "1. lstm (LSTM, kernel 8×64)"
    assert narrow in options and wide in options
    choose_layer(tab, narrow)
    assert sorted(tab.panel_runs()) == [DIVERGED_RUN, NARROW_RUN]
    choose_layer(tab, wide)
    assert tab.panel_runs() == [WIDE_RUN]
    assert "forward" not in tab.frame.locator(".wg-toolbar").inner_text()


def test_a_run_first_logged_later_says_so_at_an_earlier_step(layer_tab):
    tab = layer_tab
    choose_layer(tab, "1. lstm (LSTM, kernel 3×16)")
    tab.frame.locator(".wg-heatmap .wg-step-slider").fill("0")
    tab.settle()
    assert tab.frame.locator(".wg-heatmap .wg-step-label").inner_text() == "0"
    note = tab.frame.locator(f'article.wg-panel[data-run="{DIVERGED_RUN}"] .wg-first-record')
    assert note.inner_text() == (
        f"No record at or before step 0: first record at step {DIVERGED_STEPS[0]}"
    )
    assert tab.frame.locator(f'canvas.wg-heatmap-canvas[data-run="{DIVERGED_RUN}"]').count() == 0


def test_histograms_card_per_run_and_the_nan_run_says_what_it_holds(layer_tab):
    tab = layer_tab
    choose_layer(tab, "1. lstm (LSTM, kernel 3×16)")
    tab.frame.get_by_role("tab", name="Histograms").click()
    tab.settle()
    stats = get_json(
        f"{tab.url}/data/plugin/weightgates/stats?run={DIVERGED_RUN}&layer=lstm"
        "&direction=forward&kernel=kernel&kind=weights"
    )
    expected = {
        gate["gate"]: (
            f"No finite values: {gate['values']['nan_count'][-1]:.0f} NaN, "
            f"{gate['values']['inf_count'][-1]:.0f} Inf "
            f"at every step (last: step {DIVERGED_STEPS[-1]})"
        )
        for gate in stats["gates"]
    }
    assert expected["input"].startswith("No finite values: 12 NaN, 0 Inf"), "3 x 4 NaN weights"
    cards = tab.frame.eval_on_selector_all(
        "figure.wg-chart", "els => els.map(e => [e.dataset.gate, e.dataset.run])"
    )
    runs = [run for _, run in cards[:2]]  # in the order of TensorBoard's run list
    assert sorted(runs) == [DIVERGED_RUN, NARROW_RUN]
    assert cards == [[g, r] for g in GATES for r in runs], "a card per gate and run"
    for gate in GATES:
        card = tab.frame.locator(f'figure.wg-chart[data-gate="{gate}"][data-run="{DIVERGED_RUN}"]')
        assert card.locator(".wg-no-finite").inner_text() == expected[gate]
        assert card.locator("canvas").is_hidden()
    assert (
        non_background_fraction(
            tab.frame, f'figure.wg-chart[data-run="{NARROW_RUN}"] canvas.wg-histogram-canvas'
        )
        > 0.02
    )
    tab.screenshot("histograms-cards")

    tab.frame.get_by_role("button", name="Overlaid", exact=True).click()
    tab.settle()
    assert tab.frame.locator("figure.wg-chart").count() == len(GATES)
    notes = tab.frame.locator(f'.wg-no-finite[data-run="{DIVERGED_RUN}"]')
    assert notes.count() == len(GATES), "the diverged run is never silently missing"

    tab.checkbox(NARROW_RUN).uncheck()
    tab.settle()
    assert notes.count() == len(GATES)
    assert DIVERGED_RUN in notes.first.inner_text() and "12 NaN" in notes.first.inner_text()


def test_run_filter_hides_the_panels_of_the_runs_it_hides(layer_tab):
    tab = layer_tab
    choose_layer(tab, "1. lstm (LSTM, kernel 3×16)")
    assert sorted(tab.panel_runs()) == [DIVERGED_RUN, NARROW_RUN]
    count = tab.frame.locator(".wg-runs-count")
    assert count.inner_text() == f"{len(LAYER_RUNS)} of {len(LAYER_RUNS)} shown"
    tab.frame.locator(".wg-runs-filter").fill("narrow")
    tab.settle()
    assert tab.panel_runs() == [NARROW_RUN]
    assert count.inner_text() == f"1 of {len(LAYER_RUNS)} shown"
    tab.frame.locator(".wg-runs-filter").fill("lstm_(")
    error = tab.frame.locator(".wg-runs-filter-error")
    assert error.inner_text() == "Not a valid regex: unterminated group"
    assert tab.frame.locator("article.wg-panel:visible").count() == 0
    assert "No run matches the filter" in tab.frame.locator(".wg-main-message").inner_text()
    tab.frame.locator(".wg-runs-filter").fill("")
    tab.settle()
    assert sorted(tab.panel_runs()) == [DIVERGED_RUN, NARROW_RUN]


def test_tab_follows_tensorboards_dark_mode(layer_tab):
    tab = layer_tab
    background = "() => getComputedStyle(document.body).backgroundColor"
    light = tab.frame.evaluate(background)
    tab.page.evaluate("document.body.classList.add('dark-mode')")
    tab.frame.wait_for_function("document.documentElement.classList.contains('wg-dark')")
    dark = tab.frame.evaluate(background)
    assert (light, dark) == ("rgb(245, 246, 247)", "rgb(48, 48, 48)")
    tab.settle()
    # Canvases take the theme's colours too: the legend's labels are light grey on dark.
    label = tab.frame.evaluate(
        """() => {
            const canvas = document.querySelector('.wg-legend-bar');
            const half = canvas.height / 2;
            const {data} = canvas.getContext('2d').getImageData(0, half, canvas.width, half);
            let brightest = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] > 200) brightest = Math.max(brightest, data[i]);
            }
            return brightest;
        }"""
    )
    assert label > 150
    tab.screenshot("dark-mode")
    tab.page.evaluate("document.body.classList.remove('dark-mode')")
    tab.frame.wait_for_function("!document.documentElement.classList.contains('wg-dark')")
    assert tab.frame.evaluate(background) == light
