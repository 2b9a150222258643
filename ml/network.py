"""Network architectures, built by name through ``build_model``.

``hybrid`` is MobileNetV2 (spatial features) followed by an LSTM that reads the feature
map's columns left to right, because the ECG's time axis runs along the page width.
New architectures are added by writing a ``build_<name>`` function and registering it in
``ARCHITECTURES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from ml.labels import CLASSES
from ml.preprocess import INPUT_SIZE

# MobileNetV2 halves the resolution five times; smaller inputs leave no feature map.
MIN_INPUT_SIZE = 32


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


def build_hybrid(
    *,
    input_size: int = INPUT_SIZE,
    num_classes: int = len(CLASSES),
    width: float = 0.35,
    lstm_units: int = 64,
    column_features: int = 32,
    dropout: float = 0.3,
    batchnorm_momentum: float = 0.9,
    seed: int | None = None,
) -> keras.Model:
    """Build the MobileNetV2 + LSTM classifier (untrained, no downloaded weights).

    1. MobileNetV2 (``alpha=width``, ``weights=None``) maps the (S, S, 3) input to an
       (h, w, 1280) feature map (h = w = S / 32).
    2. A 1x1 convolution reduces the channels to ``column_features`` so the next step stays
       small while keeping the vertical position (which lead row a feature came from).
    3. The map is transposed to (w, h, c) and reshaped to (w, h * c): one time step per
       column, left to right, like the ECG's time axis.
    4. An LSTM (``lstm_units``, unrolled so the graph converts to LiteRT later) reads the
       columns; dropout; a dense softmax over ``num_classes``.

    ``batchnorm_momentum`` replaces MobileNetV2's 0.999: trained from scratch on a few
    hundred images (a few hundred steps), 0.999 leaves the inference-time statistics
    mostly at their initial values and the model predicts one class.

    ``seed``, when given, seeds Keras globally before building, so weights are reproducible.
    """
    _check_common(input_size, num_classes, dropout)
    if isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width <= 1.4:
        raise ValueError(f"'width' must be a number in (0, 1.4]. Received: width={width!r}")
    _check_int("lstm_units", lstm_units, 1)
    _check_int("column_features", column_features, 1)
    _check_fraction("batchnorm_momentum", batchnorm_momentum)
    if seed is not None:
        keras.utils.set_random_seed(_check_int("seed", seed, 0))

    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    backbone = keras.applications.MobileNetV2(
        input_shape=(input_size, input_size, 3),
        alpha=float(width),
        include_top=False,
        weights=None,
    )
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = float(batchnorm_momentum)
    features = backbone(inputs)
    features = layers.Conv2D(column_features, 1, activation="relu", name="column_projection")(features)
    height, columns, channels = features.shape[1], features.shape[2], features.shape[3]
    # (batch, h, w, c) -> (batch, w, h, c) -> (batch, w, h * c): columns become time steps.
    sequence = layers.Permute((2, 1, 3), name="columns_first")(features)
    sequence = layers.Reshape((columns, height * channels), name="columns_as_time")(sequence)
    sequence = layers.LSTM(lstm_units, unroll=True, name="lstm")(sequence)
    sequence = layers.Dropout(dropout, name="dropout")(sequence)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(sequence)
    return keras.Model(inputs, outputs, name="hybrid_mobilenetv2_lstm")


def build_cnn(
    *,
    input_size: int = INPUT_SIZE,
    num_classes: int = len(CLASSES),
    filters: int = 16,
    dropout: float = 0.3,
    seed: int | None = None,
) -> keras.Model:
    """Build a small plain CNN baseline: four conv/pool blocks, global pooling, softmax."""
    _check_common(input_size, num_classes, dropout)
    _check_int("filters", filters, 1)
    if seed is not None:
        keras.utils.set_random_seed(_check_int("seed", seed, 0))
    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = inputs
    for block in range(4):
        x = layers.Conv2D(filters * 2**block, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "hybrid": build_hybrid,
    "cnn": build_cnn,
}


def build_model(arch: str, **kwargs: Any) -> keras.Model:
    """Build the architecture registered as ``arch`` with keyword arguments ``kwargs``."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(
            f"'arch' must be one of {', '.join(sorted(ARCHITECTURES))}. Received: arch={arch!r}"
        ) from None
    return builder(**kwargs)
