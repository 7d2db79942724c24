"""Makes the README's screenshots of the layouts of issue 11: docs/screenshots/attention-heads.png
(a MultiHeadAttention query kernel, a band per head), convlstm-kernel.png (a ConvLSTM2D kernel,
rows in window-offset blocks, the hover naming offset, channel, gate and unit) and
histograms.png (per-gate histograms of two runs, one card per run).

Small models are trained briefly with the real `WeightGatesCallback` into a temporary log
directory, served by a real `tensorboard` and photographed in headless Chromium:

    .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from browser_helpers import chromium_browser, plugin_frame, tensorboard  # noqa: E402

OUT = REPO / "docs" / "screenshots"
RUNS = ("attention/train", "convlstm/train", "lstm_lr0.003/train", "lstm_lr0.03/train")
VIEWPORT = {"width": 1280, "height": 1400}


def train(logdir: Path) -> None:
    """Trains the four runs: attention and ConvLSTM2D on toy regressions, and one LSTM at two
    learning rates (histograms move more at the larger one)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from tensorboard_plugin_weightgates import WeightGatesCallback

    rng = np.random.default_rng(0)

    def fit(run, inputs, output, x, y, learning_rate, epochs, update_freq):
        model = keras.Model(inputs, output)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        callback = WeightGatesCallback(log_dir=str(logdir / run), update_freq=update_freq)
        model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[callback])

    keras.utils.set_random_seed(0)
    x = rng.normal(size=(256, 12, 16)).astype("float32")
    y = (x[:, :, :4].mean(axis=(1, 2)) * x[:, :, 4].max(axis=1))[:, None].astype("float32")
    inputs = keras.Input((12, 16))
    hidden = keras.layers.MultiHeadAttention(4, 8, name="attention")(inputs, inputs)
    output = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(hidden))
    fit("attention", inputs, output, x, y, 3e-3, 8, 16)

    keras.utils.set_random_seed(0)
    x = rng.normal(size=(128, 4, 8, 8, 2)).astype("float32")
    y = x[:, :, 2:6, 2:6, 0].mean(axis=(1, 2, 3))[:, None].astype("float32")
    inputs = keras.Input((4, 8, 8, 2))
    hidden = keras.layers.ConvLSTM2D(4, 3, padding="same", name="convlstm")(inputs)
    output = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(hidden))
    fit("convlstm", inputs, output, x, y, 3e-3, 4, 8)

    x = rng.normal(size=(512, 20, 8)).astype("float32")
    y = np.stack([x[:, :, 0].sum(axis=1), x[:, :, 1].max(axis=1)], axis=1).astype("float32")
    for run, learning_rate in (("lstm_lr0.003", 3e-3), ("lstm_lr0.03", 3e-2)):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((20, 8))
        output = keras.layers.Dense(2)(keras.layers.LSTM(32, name="lstm")(inputs))
        fit(run, inputs, output, x, y, learning_rate, 8, 8)


def settle(frame) -> None:
    frame.wait_for_function(
        "() => !document.querySelector('[aria-busy]') && !document.querySelector('.wg-loading')"
    )


def open_tab(browser, url):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.goto(f"{url}/#weightgates")
    frame = plugin_frame(page)
    frame.wait_for_selector(".wg-app")
    settle(frame)
    return context, page, frame


def choose(frame, layer, runs):
    """Shows `layer` (its picker label) for `runs` only, through the run filter."""
    frame.locator(".wg-runs-filter").fill("|".join(f"^{run}$" for run in runs))
    frame.get_by_label("Layer", exact=True).select_option(label=layer)
    settle(frame)


def hover(page, frame, row, col):
    canvas = frame.locator("canvas.wg-heatmap-canvas").first
    rows, cols = (int(canvas.get_attribute(f"data-{k}")) for k in ("rows", "cols"))
    box = canvas.bounding_box()
    page.mouse.move(
        box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows
    )
    frame.locator(".wg-heatmap .wg-tooltip").wait_for(state="visible")


def shoot(page, frame, selector, name, pad=8):
    """A screenshot of the tab's iframe clipped to `selector` (tooltip included)."""
    frame_box = page.locator('iframe[src*="name=weightgates"]').bounding_box()
    box = frame.locator(selector).bounding_box()
    clip = {
        "x": max(frame_box["x"], box["x"] - pad),
        "y": max(frame_box["y"], box["y"] - pad),
        "width": box["width"] + 2 * pad,
        "height": box["height"] + 2 * pad,
    }
    page.screenshot(path=str(OUT / name), clip=clip)
    print("wrote", OUT / name)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp) / "logs"
        train(logdir)
        log = Path(tmp) / "tensorboard.log"
        with tensorboard(logdir, False, RUNS, log) as url, chromium_browser() as browser:
            context, page, frame = open_tab(browser, url)

            choose(frame, "1. attention (MultiHeadAttention)", ["attention/train"])
            hover(page, frame, 9, 2 * 8 + 5)
            shoot(page, frame, ".wg-heatmap", "attention-heads.png")

            choose(frame, "1. convlstm (ConvLSTM2D)", ["convlstm/train"])
            hover(page, frame, 13, 4 + 2)
            shoot(page, frame, ".wg-heatmap", "convlstm-kernel.png")

            page.mouse.move(0, 0)
            choose(frame, "1. lstm (LSTM)", ["lstm_lr0.003/train", "lstm_lr0.03/train"])
            frame.get_by_role("tab", name="Histograms").click()
            settle(frame)
            frame.get_by_role("button", name="recurrent_kernel", exact=True).click()
            settle(frame)
            shoot(page, frame, ".wg-section", "histograms.png")
            context.close()


if __name__ == "__main__":
    main()
