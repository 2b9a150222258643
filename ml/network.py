"""Network architectures, built by name through ``build_model``.

- ``hybrid``: a small MobileNetV2 over the image of the four trace rows and depthwise-separable
  1-D convolutions over the digitised traces, fused per time step and read by a bidirectional
  LSTM, because the ECG's time axis runs along the page width (``ml.traces``).
- ``hybrid_measured``: the hybrid that also reads the page's measurements (an experiment).
- ``cnn``: a small plain CNN baseline.
- ``mobilenet``: MobileNetV2 with global pooling and a softmax head.
- ``densenet``: a compact DenseNet-BC (default) or Keras' DenseNet121 (``variant="121"``).

Every builder takes ``input_size``, ``num_classes``, ``dropout`` and ``seed``; the
MobileNet-based ones and DenseNet121 also take ``weights`` (``None`` or ``"imagenet"``).
ImageNet weights come from Keras' cache (``~/.keras/models``) or a download; offline and
uncached, ``PretrainedWeightsUnavailableError`` is raised at once instead of hanging.
New architectures are added by writing a ``build_<name>`` function and registering it in
``ARCHITECTURES``.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
from keras import layers

from ml.labels import CLASSES
from ml.measurements import FEATURE_NAMES
from ml.preprocess import INPUT_SIZE
from ml.traces import SIGNAL_CHANNELS, SIGNAL_SAMPLES, TRACE_IMAGE_SHAPE

# MobileNetV2 halves the resolution five times; smaller inputs leave no feature map.
MIN_INPUT_SIZE = 32


# Keras downloads application weights from here (keras.applications.*.BASE_WEIGHTS_PATH).
WEIGHTS_HOST = "storage.googleapis.com"
WEIGHTS_PROBE_TIMEOUT_S = 3.0
WEIGHT_OPTIONS: tuple[str | None, ...] = (None, "imagenet")
# Input sizes with ImageNet weights for MobileNetV2 (Keras refuses others).
MOBILENET_IMAGENET_SIZES: tuple[int, ...] = (96, 128, 160, 192, 224)


class PretrainedWeightsUnavailableError(RuntimeError):
    """ImageNet weights were asked for but are neither cached nor downloadable here."""


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"'{name}' must be an integer >= {minimum}. Received: {name}={value!r}")
    return value


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"'{name}' must be a number in [0, 1). Received: {name}={value!r}")
    return float(value)


def _check_common(input_size: object, num_classes: object, dropout: object) -> None:
    _check_int("input_size", input_size, MIN_INPUT_SIZE)
    _check_int("num_classes", num_classes, 2)
    _check_fraction("dropout", dropout)


def _check_weights(weights: object, arch: str, supported: bool = True) -> str | None:
    if weights not in WEIGHT_OPTIONS:
        raise ValueError(f"'weights' must be None or 'imagenet'. Received: weights={weights!r}")
    if weights is not None and not supported:
        raise ValueError(f"{arch} has no pretrained weights; use weights=None. Received: weights={weights!r}")
    return weights  # type: ignore[return-value]


def _weights_cached(file_prefix: str) -> bool:
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    return cache.is_dir() and any(cache.glob(f"{file_prefix}*"))


def ensure_imagenet_weights_reachable(file_prefix: str, *, host: str = WEIGHTS_HOST) -> None:
    """Raise ``PretrainedWeightsUnavailableError`` unless weights named ``file_prefix*`` are
    in Keras' cache or ``host`` accepts a connection within a few seconds (Keras' own download
    has no timeout and would hang on a machine without network)."""
    if _weights_cached(file_prefix):
        return
    try:
        with socket.create_connection((host, 443), timeout=WEIGHTS_PROBE_TIMEOUT_S):
            return
    except OSError as error:
        raise PretrainedWeightsUnavailableError(
            f"ImageNet weights ({file_prefix}*) are not in the Keras cache (~/.keras/models) and "
            f"{host} cannot be reached ({error}). Train from scratch with weights=None "
            "(--weights none), or copy the weights file into ~/.keras/models first."
        ) from None


def _mobilenet_backbone(input_size: int, width: float, weights: str | None) -> keras.Model:
    if weights == "imagenet":
        if input_size not in MOBILENET_IMAGENET_SIZES or width not in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
            raise ValueError(
                "ImageNet weights of MobileNetV2 exist for input_size in "
                f"{MOBILENET_IMAGENET_SIZES} and width in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4). "
                f"Received: input_size={input_size}, width={width}"
            )
        ensure_imagenet_weights_reachable(f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(width)}")
    return keras.applications.MobileNetV2(
        input_shape=(input_size, input_size, 3), alpha=float(width), include_top=False, weights=weights
    )


def _check_width(width: object) -> float:
    if isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width <= 1.4:
        raise ValueError(f"'width' must be a number in (0, 1.4]. Received: width={width!r}")
    return float(width)


def _set_batchnorm_momentum(model: keras.Model, momentum: float) -> None:
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = momentum


class UnsupportedOperationError(ValueError):
    """A layer configuration that TensorFlow's plain kernels (any CPU without oneDNN, ARM,
    CUDA) refuse to run, found before the model is built or used."""


# Layers whose TensorFlow kernel is DepthwiseConv2dNative, which on CPU and CUDA accepts only
# equal row and column strides; only oneDNN's kernel (on by default just on recent x86) runs others.
_DEPTHWISE_LAYERS = (layers.DepthwiseConv2D, layers.SeparableConv2D)


def unsupported_operations(model: keras.Model) -> list[str]:
    """One sentence for each layer of ``model`` (nested models included) that TensorFlow's
    plain kernels cannot run; empty when the model runs on every CPU and GPU."""
    problems = []
    for layer in _all_layers(model):
        strides = getattr(layer, "strides", None)
        if isinstance(layer, _DEPTHWISE_LAYERS) and len(set(strides)) > 1:
            problems.append(
                f"layer {layer.name!r} ({type(layer).__name__}) has unequal strides {tuple(strides)}, "
                "which only oneDNN's kernel runs: not a CPU without oneDNN, not ARM, not a GPU"
            )
    return problems


def check_supported(model: keras.Model) -> None:
    """Raise ``UnsupportedOperationError`` naming every layer that cannot run everywhere."""
    problems = unsupported_operations(model)
    if problems:
        raise UnsupportedOperationError(
            f"{model.name} cannot run on TensorFlow's plain kernels: " + "; ".join(problems) + "."
        )


def _all_layers(model: keras.Model) -> list[Any]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def _same_padding_offset(size: int, stride: int, kernel: int) -> int:
    """Where a stride-``stride`` 'same' convolution centres its first output, relative to a
    stride-1 'same' convolution's outputs (TensorFlow pads ``total // 2`` before)."""
    outputs = -(-size // stride)
    pad_before = max((outputs - 1) * stride + kernel - size, 0) // 2
    return (kernel - 1) // 2 - pad_before


def _strided_depthwise(x: Any, *, strides: tuple[int, int], kernel: int, name: str) -> Any:
    """A 'same' depthwise convolution with ``strides``, built from kernels every device runs.

    Equal strides go to ``DepthwiseConv2D`` as they are. Otherwise it convolves at the smaller
    stride on both axes and keeps, along the other axis, only the outputs a strided kernel
    would have computed (``Cropping2D`` to the first one, then a 1x1 ``MaxPooling2D`` with the
    remaining stride): the same numbers as the strided kernel, without needing oneDNN.
    """
    square = min(strides)
    y = layers.DepthwiseConv2D(kernel, strides=square, padding="same", use_bias=False, name=name)(x)
    if strides[0] == strides[1]:
        return y
    remaining = (strides[0] // square, strides[1] // square)
    if any(r * square != s for r, s in zip(remaining, strides, strict=True)):
        raise UnsupportedOperationError(
            f"strides {strides} are not multiples of their smaller one; use equal strides."
        )
    crop = tuple(
        (_same_padding_offset(size, r, kernel) if r > 1 else 0, 0)
        for size, r in zip(y.shape[1:3], remaining, strict=True)
    )
    if any(before for before, _ in crop):
        y = layers.Cropping2D(crop, name=f"{name}_align")(y)
    return layers.MaxPooling2D(pool_size=1, strides=remaining, name=f"{name}_subsample")(y)


def _inverted_residual(
    x: Any, *, expansion: int, filters: int, strides: int | tuple[int, int], name: str
) -> Any:
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, linear 1x1 project, residual if shapes match."""
    strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
    channels = x.shape[-1]
    y = layers.Conv2D(channels * expansion, 1, use_bias=False, name=f"{name}_expand")(x)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_expand_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_expand_relu")(y)
    y = _strided_depthwise(y, strides=strides, kernel=3, name=f"{name}_depthwise")
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_depthwise_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_depthwise_relu")(y)
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_project_bn")(y)
    if strides == (1, 1) and channels == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _separable_block_1d(x: Any, *, filters: int, strides: int, name: str) -> Any:
    """Depthwise-separable 1-D convolution (MobileNet's factorisation along time) with BN-ReLU."""
    y = layers.SeparableConv1D(
        filters, 7, strides=strides, padding="same", use_bias=False, name=f"{name}_sep"
    )(x)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(y)
    return layers.ReLU(name=f"{name}_relu")(y)


# The hybrid reads the 10 s in this many steps (about 0.31 s each), four trace rows per step.
TIME_STEPS = 32
TRACE_ROWS = 4


def build_hybrid(
    *,
    input_size: int = INPUT_SIZE,
    num_classes: int = len(CLASSES),
    lstm_units: int = 48,
    dropout: float = 0.3,
    seed: int | None = None,
    weights: str | None = None,
    measurement_features: int = 0,
) -> keras.Model:
    """Build the MobileNet + LSTM classifier over the page's 10 s time axis (untrained).

    Inputs (``ml.traces.leads_inputs``): ``trace_image`` (128 x 512 x 1, the four trace rows)
    and ``signals`` (1024 x 8, the rows digitised to mV). Both have time along their width.

    1. Spatial branch: a small MobileNetV2 (stem and inverted-residual blocks) turns the
       trace image into a (4, 32, c) map: 4 stripes, one per trace row, and 32 time steps.
    2. Signal branch: depthwise-separable 1-D convolutions downsample the digitised traces
       to the same 32 time steps.
    3. The two are concatenated per time step, and a bidirectional LSTM reads the 32 steps
       (about 0.31 s each) in time order: rhythm and the sequence of beats across leads.
    4. Three softmax heads: the LSTM's, and one per branch (pooled over time). Training
       supervises all three; the model's output is their average, an ensemble inside one
       network (each branch must stand on its own, so neither starves the other).

    With ``measurement_features`` (``hybrid_measured``), a third input ``measurements`` (the
    page's heart rate, intervals, ST levels and Q waves, ``ml.measurements.features``) passes
    through a small dense layer and joins the LSTM's output before its head.

    ``input_size`` is accepted for a uniform builder signature and ignored (the trace inputs
    have fixed shapes); only ``weights=None`` is valid (no pretrained weights exist).
    """
    _check_fraction("dropout", dropout)
    _check_int("num_classes", num_classes, 2)
    _check_weights(weights, "hybrid", supported=False)
    _check_int("lstm_units", lstm_units, 1)
    if seed is not None:
        keras.utils.set_random_seed(_check_int("seed", seed, 0))

    image = keras.Input(shape=(*TRACE_IMAGE_SHAPE, 1), name="trace_image")
    signals = keras.Input(shape=(SIGNAL_SAMPLES, SIGNAL_CHANNELS), name="signals")

    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(image)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    # Halve both axes until 32 time steps remain, then only the height until one stripe per
    # trace row remains; each stage is a strided block and a residual block.
    stage_filters = iter((24, 32, 48, 64, 80, 96))
    number = 0
    while x.shape[2] > TIME_STEPS or x.shape[1] > TRACE_ROWS:
        strides = (2 if x.shape[1] > TRACE_ROWS else 1, 2 if x.shape[2] > TIME_STEPS else 1)
        filters = next(stage_filters)
        for block_strides in (strides, 1):
            number += 1
            x = _inverted_residual(
                x, expansion=4, filters=filters, strides=block_strides, name=f"block{number}"
            )
    # (4, 32, c): one stripe per trace row; columns become time steps with the rows' features.
    rows, steps, channels = x.shape[1], x.shape[2], x.shape[3]
    spatial = layers.Permute((2, 1, 3), name="time_first")(x)
    spatial = layers.Reshape((steps, rows * channels), name="time_steps")(spatial)

    y = signals
    for number, filters in enumerate((32, 48, 64, 64, 96)):  # 1024 -> 32 steps
        y = _separable_block_1d(y, filters=filters, strides=2, name=f"signal{number + 1}")
    if y.shape[1] != TIME_STEPS:
        raise ValueError(f"signals of {SIGNAL_SAMPLES} samples do not reduce to {TIME_STEPS} steps.")
    sequence = layers.Concatenate(name="fuse")([spatial, y])
    sequence = layers.Bidirectional(layers.LSTM(lstm_units, name="lstm"), name="bilstm")(sequence)
    inputs = {"trace_image": image, "signals": signals}
    if measurement_features:
        measured = keras.Input(shape=(measurement_features,), name="measurements")
        inputs["measurements"] = measured
        summary = layers.Dense(32, activation="relu", name="measurements_dense")(measured)
        sequence = layers.Concatenate(name="with_measurements")([sequence, summary])

    def head(features: Any, name: str) -> Any:
        features = layers.Dropout(dropout, name=f"{name}_dropout")(features)
        return layers.Dense(num_classes, activation="softmax", name=f"{name}_probabilities")(features)

    fused = head(sequence, "lstm")
    spatial_only = head(layers.GlobalAveragePooling1D(name="spatial_pool")(spatial), "spatial")
    signal_only = head(layers.GlobalAveragePooling1D(name="signal_pool")(y), "signal")
    outputs = layers.Average(name="probabilities")([fused, spatial_only, signal_only])
    name = "hybrid_mobilenet_lstm_measured" if measurement_features else "hybrid_mobilenet_lstm"
    model = keras.Model(inputs, outputs, name=name)
    # The heads stay reachable for training with deep supervision (``training_model``).
    model.heads = (fused, spatial_only, signal_only)  # type: ignore[attr-defined]
    return model


def training_model(model: keras.Model) -> keras.Model:
    """The model to fit: ``model`` itself, or for a multi-head model one that outputs every head
    (the loss supervises each) and shares all its layers."""
    heads = getattr(model, "heads", None)
    if not heads:
        return model
    return keras.Model(model.inputs, list(heads), name=f"{model.name}_training")


def build_cnn(
    *,
    input_size: int = INPUT_SIZE,
    num_classes: int = len(CLASSES),
    filters: int = 16,
    dropout: float = 0.3,
    batchnorm_momentum: float = 0.9,
    seed: int | None = None,
    weights: str | None = None,
) -> keras.Model:
    """Build a small plain CNN baseline: four conv/pool blocks, global pooling, softmax.

    ``weights`` exists so every architecture takes it; only ``None`` is valid here.
    ``batchnorm_momentum`` as in ``build_mobilenet`` (with 0.99, a model trained on all dev
    images scored 0.58 accuracy on them in inference mode against 0.81 while training).
    """
    _check_common(input_size, num_classes, dropout)
    _check_weights(weights, "cnn", supported=False)
    _check_int("filters", filters, 1)
    _check_fraction("batchnorm_momentum", batchnorm_momentum)
    if seed is not None:
        keras.utils.set_random_seed(_check_int("seed", seed, 0))
    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = inputs
    for block in range(4):
        x = layers.Conv2D(filters * 2**block, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=batchnorm_momentum)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_mobilenet(
    *,
    input_size: int = INPUT_SIZE,
    num_classes: int = len(CLASSES),
    width: float = 0.35,
    dropout: float = 0.3,
    batchnorm_momentum: float = 0.9,
    seed: int | None = None,
    weights: str | None = None,
) -> keras.Model:
    """Build MobileNetV2 (``alpha=width``) -> global average pooling -> dropout -> softmax.

    The published baseline: Keras' MobileNetV2 on the whole (squeezed) trace area.
    ``batchnorm_momentum`` replaces its 0.999: trained from scratch for a few hundred steps,
    0.999 leaves the inference-time statistics near their initial values and the model
    predicts one class.
    """
    _check_common(input_size, num_classes, dropout)
    _check_width(width)
    _check_weights(weights, "mobilenet")
    _check_fraction("batchnorm_momentum", batchnorm_momentum)
    if seed is not None:
        keras.utils.set_random_seed(_check_int("seed", seed, 0))
    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    backbone = _mobilenet_backbone(input_size, float(width), weights)
    _set_batchnorm_momentum(backbone, float(batchnorm_momentum))
    x = layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mobilenetv2")


DENSENET_VARIANTS: tuple[str, ...] = ("small", "121")


def build_densenet(
    *,
    input_size: int = INPUT_SIZE,
    num_classes: int = len(CLASSES),
    variant: str = "small",
    growth_rate: int = 12,
    block_layers: tuple[int, ...] = (4, 8, 12, 8),
    dropout: float = 0.3,
    batchnorm_momentum: float = 0.9,
    seed: int | None = None,
    weights: str | None = None,
) -> keras.Model:
    """Build a DenseNet classifier: ``variant="small"`` (default) or ``"121"``.

    ``small`` is a compact DenseNet-BC (about 0.3 M parameters at the defaults):
    1. a 3x3 stride-2 stem with ``2 * growth_rate`` filters and 2x2 max pooling;
    2. dense blocks of ``block_layers`` bottleneck layers (BN-ReLU-1x1 conv to
       ``4 * growth_rate``, BN-ReLU-3x3 conv to ``growth_rate``, concatenated onto the input);
    3. between blocks a transition halving channels (compression 0.5) and resolution;
    4. BN-ReLU, global average pooling, dropout, softmax.
    Its batch normalisation uses ``batchnorm_momentum`` (0.9) for the reason given in
    ``build_mobilenet``: with Keras' 0.99, a few hundred steps from scratch leave the
    inference statistics behind and a fold predicted one class for every image.
    ``121`` is ``keras.applications.DenseNet121`` (7 M parameters, about 28 MB as float32:
    near the 30 MB limit), the only variant with ``weights="imagenet"``; note that its
    ImageNet weights expect torch-style input normalisation, not our ``x / 127.5 - 1``.
    """
    _check_common(input_size, num_classes, dropout)
    if variant not in DENSENET_VARIANTS:
        raise ValueError(f"'variant' must be one of {', '.join(DENSENET_VARIANTS)}. Received: {variant!r}")
    _check_weights(weights, "densenet (variant 'small')", supported=variant == "121")
    _check_int("growth_rate", growth_rate, 1)
    _check_fraction("batchnorm_momentum", batchnorm_momentum)
    if not block_layers or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in block_layers):
        raise ValueError(
            "'block_layers' must be a non-empty tuple of integers >= 1. "
            f"Received: block_layers={block_layers!r}"
        )
    # Each transition halves the resolution after the stem's 4x: keep at least 1x1.
    if input_size // 4 // 2 ** (len(block_layers) - 1) < 1:
        raise ValueError(f"'input_size' {input_size} is too small for {len(block_layers)} dense blocks.")
    if seed is not None:
        keras.utils.set_random_seed(_check_int("seed", seed, 0))
    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    if variant == "121":
        if weights == "imagenet":
            ensure_imagenet_weights_reachable("densenet121_weights_tf_dim_ordering_tf_kernels_notop")
        backbone = keras.applications.DenseNet121(
            input_shape=(input_size, input_size, 3), include_top=False, weights=weights
        )
        x = layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
        name = "densenet121"
    else:
        x = layers.Conv2D(2 * growth_rate, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
        x = layers.MaxPooling2D(2, name="stem_pool")(x)
        for block, count in enumerate(block_layers):
            for number in range(count):
                prefix = f"block{block + 1}_layer{number + 1}"
                y = layers.BatchNormalization(momentum=batchnorm_momentum, name=f"{prefix}_bn1")(x)
                y = layers.ReLU(name=f"{prefix}_relu1")(y)
                y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{prefix}_conv1")(y)
                y = layers.BatchNormalization(momentum=batchnorm_momentum, name=f"{prefix}_bn2")(y)
                y = layers.ReLU(name=f"{prefix}_relu2")(y)
                y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{prefix}_conv2")(y)
                x = layers.Concatenate(name=f"{prefix}_concat")([x, y])
            if block < len(block_layers) - 1:
                prefix = f"transition{block + 1}"
                x = layers.BatchNormalization(momentum=batchnorm_momentum, name=f"{prefix}_bn")(x)
                x = layers.ReLU(name=f"{prefix}_relu")(x)
                x = layers.Conv2D(x.shape[-1] // 2, 1, use_bias=False, name=f"{prefix}_conv")(x)
                x = layers.AveragePooling2D(2, name=f"{prefix}_pool")(x)
        x = layers.BatchNormalization(momentum=batchnorm_momentum, name="final_bn")(x)
        x = layers.ReLU(name="final_relu")(x)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        name = "densenet_small"
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "cnn": build_cnn,
    "densenet": build_densenet,
    "hybrid": build_hybrid,
    "hybrid_measured": functools.partial(build_hybrid, measurement_features=len(FEATURE_NAMES)),
    "mobilenet": build_mobilenet,
}


def build_model(arch: str, **kwargs: Any) -> keras.Model:
    """Build the architecture registered as ``arch`` with keyword arguments ``kwargs``."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(
            f"'arch' must be one of {', '.join(sorted(ARCHITECTURES))}. Received: arch={arch!r}"
        ) from None
    model = builder(**kwargs)
    check_supported(model)
    return model
