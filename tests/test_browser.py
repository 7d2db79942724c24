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
    BASELINE_RUN,
    NAN_CELL,
    NAN_RUN,
    REPO,
    RUN_DIRS,
    XSS_RUN,
    get,
    get_json,
    launch_chromium,
    plugin_frame,
    run_name,
    snapshot,
    tensorboard,
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
    with playwright_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


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
    assert BASELINE in text and "forget" in text and "unit 2 of forget" in text
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
    assert histograms.count() == 2 * len(GATES)
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
    assert width > 300 and height > 200


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
