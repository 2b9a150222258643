"""TensorFlow's set-up: a thread cap asked for too late costs the cap, not the model."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# In a fresh interpreter: TensorFlow has already run an op (as a test helper, or an import
# that builds a tensor, would) before the worker asks for its thread cap.
_LATE_CAP = """
import logging
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
import tensorflow as tf
tf.constant(1.0) + 1.0
from ml.device import configure_tensorflow
print("device:", configure_tensorflow(threads=1))
"""


@pytest.mark.slow
def test_a_thread_cap_asked_for_after_tensorflow_started_is_logged_and_the_device_still_answers():
    environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", _LATE_CAP], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "device: CPU" in result.stdout
    assert "WARNING ml.device TensorFlow's thread pools were not capped at 1" in result.stderr
