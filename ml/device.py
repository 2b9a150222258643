"""TensorFlow device setup, shared by training and inference."""

from __future__ import annotations

import contextlib
import os

_description: str | None = None


def configure_tensorflow() -> str:
    """Import TensorFlow, enable GPU memory growth, return the device used ("GPU:0 (...)").

    Memory growth keeps one worker from reserving the whole GPU, so several processes can
    share it. Idempotent: later calls return the first answer without touching TF again
    (memory growth can only be set before the GPU is initialised).
    """
    global _description
    if _description is not None:
        return _description
    # Quieten TF's C++ start-up chatter unless the caller asked for it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # RuntimeError: already initialised by someone else in this process; growth is fixed.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", "unknown GPU")
        _description = f"GPU:0 ({name})" + (f" +{len(gpus) - 1} more" if len(gpus) > 1 else "")
    else:
        _description = "CPU"
    return _description
