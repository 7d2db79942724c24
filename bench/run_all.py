"""Runs every benchmark in bench/ in turn; each prints ratios against its own baseline."""

import pathlib
import subprocess
import sys

for script in sorted(pathlib.Path(__file__).parent.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    subprocess.run([sys.executable, str(script)], check=False)
