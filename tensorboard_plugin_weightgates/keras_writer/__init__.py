"""The writing side for Keras: a Keras layer to gate slices to statistics to event files.

Needs TensorFlow, and reads Keras 3 or tf-keras through `tf.keras`. Modules, lower to higher:
`compat` (every private Keras/TensorFlow access), `gates` (splitting layers), `stats` (per-gate
statistics on the device), `summary` (`GateLogger`, the writer), `custom_loop` (functions for
custom training loops), `probe` and `train_gradients` (the two gradient sources), `callback`
(`WeightGatesCallback`). Nothing here imports the backend or the command line.
"""
