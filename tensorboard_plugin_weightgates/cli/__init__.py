"""The `weightgates` command: `import` (saved models and checkpoints through the Keras writer)
and `report` (per-gate tables through the backend's reader). `main` imports TensorFlow only
for the subcommand that needs it."""
