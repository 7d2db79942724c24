"""What weightgates writes and how it is named, shared by every writer and reader.

Framework-free (NumPy and TensorBoard's protos only): the on-disk format (`metadata`), the
gate vocabulary (`gate_names`), the names of a slice's axes (`axes`), the logging options and
their defaults (`options`) and the reduction of a slice to a bounded heatmap snapshot
(`snapshot`). A writer for another framework reuses all of it; the TensorBoard backend and the
command line read through it.
"""
