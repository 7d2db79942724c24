"""Makes the screenshots of the Activations view in docs/screenshots/ from the demo's logs, of
its `lstm` run: activations-saturation.png (the saturation plots), activations-maps.png (the
unit x timestep maps of the probe sample) and activations-gradient-flow.png (dL/dh_t through
time, one line per logged step).

The demo (demo/train.py) is trained into a temporary directory unless --logdir names logs it
wrote; they are served by a real `tensorboard` and photographed in headless Chromium.

    .venv/bin/python docs/make_activation_screenshots.py [--logdir demo/logs]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from browser_helpers import chromium_browser, plugin_frame, tensorboard  # noqa: E402

OUT = REPO / "docs" / "screenshots"
RUNS = ("lstm/train", "gru/train", "lstm_relu_sgd_diverges/train")
SETTLE = "() => !document.querySelector('[aria-busy]') && !document.querySelector('.wg-loading')"


def photograph(logdir: Path, log_path: Path) -> list[Path]:
    written = []
    with tensorboard(logdir, None, RUNS, log_path) as url, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 2400})
        page.goto(f"{url}/#weightgates")
        frame = plugin_frame(page)
        frame.wait_for_selector(".wg-app")
        frame.wait_for_function(SETTLE)
        frame.get_by_role("tab", name="Activations").click()
        frame.wait_for_function(SETTLE)
        frame.get_by_role("button", name="rnn (LSTM)").click()
        frame.wait_for_selector("canvas.wg-saturation-canvas")
        for run in RUNS[1:]:
            frame.get_by_role("checkbox", name=run, exact=True).uncheck()
        frame.wait_for_function(SETTLE)
        shots = {
            "activations-saturation.png": "saturation",
            "activations-gradient-flow.png": "gradient-flow",
            "activations-maps.png": "maps",
        }
        for name, section in shots.items():
            frame.locator(f"section[data-section={section}]").screenshot(path=str(OUT / name))
            written.append(OUT / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logdir", type=Path, help="demo logs to photograph (default: train them)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        logdir = args.logdir
        if logdir is None:
            logdir = Path(tmp) / "logs"
            subprocess.run(
                [sys.executable, str(REPO / "demo" / "train.py"), "--logdir", str(logdir)],
                check=True,
            )
        written = photograph(logdir, Path(tmp) / "tensorboard.log")
    print("wrote", ", ".join(str(path.relative_to(REPO)) for path in written))


if __name__ == "__main__":
    main()
