"""Time to the first painted heatmap of the Weight Gates tab, against TensorBoard's own Scalars
tab in the same run.

    .venv/bin/python bench/bench_first_paint.py [--repeats 5] [--load-fast auto|true|false]

Writes temporary logdirs with the real writer (`summary.log_weights`), each run also holding a
100-step `loss` scalar for the baseline:

* ``demo``: three runs of Bidirectional(LSTM(24)) -> GRU(16) -> Dense on 8 features (the model
  of `small_model.py`, the demo's before 0.2; kernel 8 x 96 per direction, six heatmaps on the
  first paint);
* ``lstm1024``: one run of LSTM(1024) on 1024 features (kernel 1024 x 4096), snapshots with
  the default bound of 128 x 128 cells per gate (128 x 512 cells drawn);
* ``lstm1024-whole``: the same kernel stored whole (`snapshot_max_cells=1024*1024`): 1024 x 4096
  cells, a 32 MiB snapshot, rasterised and drawn on one canvas.

For each logdir one `tensorboard` process serves it; for each repeat a fresh headless Chromium
context (cold cache) opens `/#scalars` and `/#weightgates`, in alternating order. Times are
from navigation start of TensorBoard's page to:

* Scalars ready: the `loss` chart's line drawn (a `path.line` with data in `vz-line-chart2`);
* first heatmap: the tab's `weightgates:heatmap-paint` performance mark (set right after the
  heatmaps are drawn on their canvases), converted to the page's clock.

Prints medians, the ratio first heatmap / Scalars ready, and the tab's own rasterisation time
(`weightgates:rasterize` measure). Not part of `make test`'s pass/fail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from browser_helpers import chromium_browser, plugin_frame, tensorboard  # noqa: E402

SCALARS_READY = """() => {
    const find = (root) => {
        for (const chart of root.querySelectorAll('vz-line-chart2')) {
            const lines = chart.shadowRoot ? chart.shadowRoot.querySelectorAll('path.line') : [];
            for (const line of lines) if ((line.getAttribute('d') || '').length > 20) return true;
        }
        for (const el of root.querySelectorAll('*')) {
            if (el.shadowRoot && find(el.shadowRoot)) return true;
        }
        return false;
    };
    return find(document) ? performance.now() : null;
}"""

HEATMAP_PAINTED = """() => {
    const iframe = document.querySelector('iframe[src*="name=weightgates"]');
    const win = iframe && iframe.contentWindow;
    if (!win || !win.performance) return null;
    const [paint] = win.performance.getEntriesByName('weightgates:heatmap-paint');
    if (!paint) return null;
    const [raster] = win.performance.getEntriesByName('weightgates:rasterize');
    return {
        paint: win.performance.timeOrigin + paint.startTime - performance.timeOrigin,
        raster: raster ? raster.duration : null,
    };
}"""


def write_logdirs(root: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """Writes the three logdirs; returns name -> (logdir, run names)."""
    import tensorflow as tf

    from tensorboard_plugin_weightgates.keras_writer.custom_loop import log_weights

    keras = tf.keras

    def demo_model():
        inputs = keras.Input((20, 8))
        hidden = keras.layers.Bidirectional(
            keras.layers.LSTM(24, return_sequences=True), name="encoder"
        )(inputs)
        hidden = keras.layers.GRU(16, name="decoder")(hidden)
        return keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))

    def big_model():
        return keras.Sequential([keras.Input((None, 1024)), keras.layers.LSTM(1024, name="lstm")])

    cases = {
        "demo": (demo_model, ("lr_0.001", "lr_0.01", "lr_0.1"), {}),
        "lstm1024": (big_model, ("lstm1024",), {}),
        "lstm1024-whole": (big_model, ("lstm1024",), {"snapshot_max_cells": 1024 * 1024}),
    }
    result = {}
    for name, (make_model, runs, options) in cases.items():
        logdir = root / name
        for run in runs:
            keras.utils.set_random_seed(len(run))
            model = make_model()
            writer = tf.summary.create_file_writer(str(logdir / run / "train"))
            with writer.as_default():
                for step in range(100):
                    tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
            for step in (0, 50, 100):
                log_weights(model, step, writer, snapshot=True, **options)
            writer.flush()
        result[name] = (logdir, tuple(f"{run}/train" for run in runs))
    return result


def first_paint(browser, url: str) -> tuple[float, float | None]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/#weightgates")
    plugin_frame(page)
    timing = page.wait_for_function(HEATMAP_PAINTED, polling="raf", timeout=120000).json_value()
    context.close()
    return timing["paint"], timing["raster"]


def scalars_ready(browser, url: str) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/#scalars")
    ready = page.wait_for_function(SCALARS_READY, polling="raf", timeout=120000).json_value()
    context.close()
    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--load-fast", default="auto", choices=["auto", "true", "false"])
    args = parser.parse_args()

    load_fast = {"auto": None, "true": True, "false": False}[args.load_fast]
    with tempfile.TemporaryDirectory(prefix="weightgates-bench-") as tmp:
        start = time.perf_counter()
        logdirs = write_logdirs(Path(tmp))
        print(f"wrote logdirs in {time.perf_counter() - start:.1f} s; {args.repeats} repeats each")
        print(
            f"{'case':<16} {'scalars ready':>14} {'first heatmap':>14} {'ratio':>7} "
            f"{'rasterise':>10}"
        )
        with chromium_browser() as browser:
            for name, (logdir, runs) in logdirs.items():
                with tensorboard(logdir, load_fast, runs, Path(tmp) / f"{name}.log") as url:
                    scalars, heatmaps, rasters = [], [], []
                    for repeat in range(args.repeats):
                        order = (0, 1) if repeat % 2 == 0 else (1, 0)
                        for which in order:
                            if which == 0:
                                scalars.append(scalars_ready(browser, url))
                            else:
                                paint, raster = first_paint(browser, url)
                                heatmaps.append(paint)
                                rasters.append(raster or 0.0)
                    base = statistics.median(scalars)
                    ours = statistics.median(heatmaps)
                    print(
                        f"{name:<16} {base:>11.0f} ms {ours:>11.0f} ms {ours / base:>6.2f}x "
                        f"{statistics.median(rasters):>7.1f} ms",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
