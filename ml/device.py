"""TensorFlow device setup, shared by training and inference."""

from __future__ import annotations

import contextlib
import logging
import os
import platform

logger = logging.getLogger(__name__)

_description: str | None = None


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: taskset, a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def configure_tensorflow(threads: int = 0) -> str:
    """Import TensorFlow, enable GPU memory growth, return the device used ("GPU:0 (...)").

    Memory growth keeps one worker from reserving the whole GPU, so several processes can
    share it. ``threads`` > 0 caps TensorFlow's CPU thread pools (intra- and inter-op), so that
    workers sharing a machine do not fight over its cores. Idempotent: later calls return the
    first answer without touching TF again (both can only be set before TF initialises).
    """
    global _description
    if _description is not None:
        return _description
    # Quieten TF's C++ start-up chatter unless the caller asked for it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # here, not at the top: importing ml.device must not load TensorFlow

    if threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as error:
            # TF ran before this call (another import ran an op): its pools are fixed now. That
            # costs only the cap, so the model still loads, rather than failing as "cannot run".
            logger.warning("TensorFlow's thread pools were not capped at %d: %s", threads, error)
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


# CPU features that decide TensorFlow's speed and kernels: vector widths, and the ones for
# which TensorFlow turns oneDNN on by default on Linux (AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX).
_TIMING_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")
_ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")
_ARM_FLAGS = ("asimd", "sve", "sve2", "bf16", "i8mm")


def _cpuinfo() -> tuple[str, set[str]]:
    """The first CPU's model name and flags from /proc/cpuinfo (x86 and ARM spellings)."""
    model, flags = "", set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("model name", "Model") and not model:
                model = value
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    return model or platform.processor() or platform.machine(), flags


def machine_description() -> dict[str, object]:
    """The machine a timing was taken on: CPU model, the flags that matter, cores this process
    may use, and whether TensorFlow's oneDNN kernels were on (``TF_ENABLE_ONEDNN_OPTS``, else
    TensorFlow's own default for this CPU)."""
    model, flags = _cpuinfo()
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if setting in ("0", "1"):
        onednn = f"{'on' if setting == '1' else 'off'} (TF_ENABLE_ONEDNN_OPTS={setting})"
    else:
        default_on = platform.machine() in ("x86_64", "AMD64") and bool(flags & set(_ONEDNN_DEFAULT_FLAGS))
        onednn = f"{'on' if default_on else 'off'} (TensorFlow's default for this CPU)"
    return {
        "cpu": model,
        "arch": platform.machine(),
        "flags": sorted(flags & set(_TIMING_FLAGS + _ARM_FLAGS)),
        "cores": usable_cores(),
        "onednn": onednn,
    }
