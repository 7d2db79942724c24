"""The reading side: TensorBoard's data provider to the Weight Gates tab's HTTP routes.

Never imports TensorFlow, which TensorBoard may run without: `reader` turns the data provider's
tensors into records through `format.metadata`, `routes` serves them (docs/http-api.md) and the
tab's ES modules in ``static/``, `loader` is TensorBoard's entry point.
"""
