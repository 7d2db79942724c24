"""Test session set-up shared by every test module.

Two logical CPU devices are configured before TensorFlow runs anything, so that
`tf.distribute.MirroredStrategy` tests have two replicas on a CPU-only machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
