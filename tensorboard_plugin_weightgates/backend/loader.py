"""TensorBoard's entry point to weightgates (`tensorboard_plugins` in setup.py).

TensorBoard imports this module in processes that may not have TensorFlow; neither this
module nor the plugin it loads imports it.
"""

from __future__ import annotations

import argparse

from tensorboard.plugins import base_plugin

from tensorboard_plugin_weightgates.backend import routes
from tensorboard_plugin_weightgates.format import metadata


class WeightGatesLoader(base_plugin.TBLoader):
    """Loads `routes.WeightGatesPlugin`, and asks TensorBoard to keep enough of its data.

    TensorBoard keeps only a sample of each time series in memory: for plugins it does not
    know, 10 points per tag (or 100 with `--load_fast=true`), far too few for training
    curves. `fix_flags` raises the number kept for both weightgates plugin names to
    `metadata.SAMPLES_PER_PLUGIN`. TensorBoard calls it right after parsing the flags and
    before it starts reading the logdir, and hands the same `samples_per_plugin` mapping to
    its event multiplexer and to the data server (`--samples-per-plugin`).
    """

    def fix_flags(self, flags: argparse.Namespace) -> None:
        """Adds weightgates' sampling to `flags.samples_per_plugin`; a number the user gave
        with `--samples_per_plugin` for either plugin name is kept."""
        given = dict(getattr(flags, "samples_per_plugin", None) or {})
        flags.samples_per_plugin = {**metadata.SAMPLES_PER_PLUGIN, **given}

    def load(self, context: base_plugin.TBContext) -> routes.WeightGatesPlugin:
        return routes.WeightGatesPlugin(context)
