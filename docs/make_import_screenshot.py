"""Makes docs/screenshots/imported-models.png (and imported-models-table.png): the Weight Gates
tab comparing two saved Keras models imported with `weightgates import`.

Two models of one architecture, Input((20, 8)) -> Bidirectional(LSTM(16)) "encoder" -> Dense(2)
"head", start from the same weights; one is trained briefly with a small learning rate
(model_a.keras), the other longer with a large one (model_b.h5). Both are imported into a
temporary log directory, served by a real `tensorboard` and photographed in headless Chromium.

    .venv/bin/python docs/make_import_screenshot.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from browser_helpers import chromium_browser, plugin_frame, tensorboard  # noqa: E402

OUT = REPO / "docs" / "screenshots"
WEIGHTGATES = Path(sys.executable).with_name("weightgates")
RUNS = ("model_a/train", "model_b/train")


def save_models(directory: Path) -> list[Path]:
    """Saves the two trained models; returns their files."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 20, 8)).astype("float32")
    y = np.stack([x[:, :, 0].sum(axis=1), x[:, :, 1:3].max(axis=(1, 2))], axis=1)
    files = []
    for name, learning_rate, epochs in (("model_a.keras", 1e-4, 2), ("model_b.h5", 2e-2, 20)):
        keras.utils.set_random_seed(0)  # the same initial weights for both
        inputs = keras.Input((20, 8))
        hidden = keras.layers.Bidirectional(keras.layers.LSTM(16), name="encoder")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
        model.save(directory / name)
        files.append(directory / name)
    return files


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = save_models(tmp)
        logdir = tmp / "logs"
        subprocess.run(
            [str(WEIGHTGATES), "import", *map(str, files), "--logdir", str(logdir)], check=True
        )
        with (
            tensorboard(logdir, None, RUNS, tmp / "tensorboard.log") as url,
            chromium_browser() as browser,
        ):
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{url}/#weightgates")
            frame = plugin_frame(page)
            settle = (
                "() => !document.querySelector('[aria-busy]') "
                "&& !document.querySelector('.wg-loading')"
            )
            frame.wait_for_selector(".wg-app")
            frame.wait_for_function(settle)
            # The encoder's kernel (the default layer and kernel), forward + backward, of both runs.
            frame.wait_for_function(
                "() => document.querySelectorAll('canvas.wg-heatmap-canvas').length === 4"
            )
            # One colour range for both runs, so that their magnitudes compare.
            frame.get_by_label("Normalisation", exact=True).select_option("runs")
            frame.wait_for_function(settle)
            page.screenshot(path=str(OUT / "imported-models.png"), full_page=True)

            frame.get_by_role("tab", name="Health").click()
            frame.wait_for_function(settle)
            frame.locator(".wg-stats-table").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "imported-models-table.png"), full_page=True)
    print(f"wrote {OUT / 'imported-models.png'} and {OUT / 'imported-models-table.png'}")


if __name__ == "__main__":
    main()
