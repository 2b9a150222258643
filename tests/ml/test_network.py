"""Building, validating and saving the network architectures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ml.network import ARCHITECTURES, build_hybrid, build_model  # noqa: E402

# Building MobileNetV2 graphs takes a few seconds each.
pytestmark = pytest.mark.slow


def test_hybrid_maps_a_batch_to_class_probabilities() -> None:
    model = build_hybrid(input_size=64, lstm_units=8, column_features=4, seed=0)
    outputs = np.asarray(model(np.zeros((2, 64, 64, 3), np.float32), training=False))
    assert model.output_shape == (None, 4)
    assert outputs.shape == (2, 4)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)


def test_hybrid_reads_feature_map_columns_as_time_steps() -> None:
    model = build_hybrid(input_size=128, lstm_units=8, column_features=4, seed=0)
    # 128 / 32 = 4 columns of 4 rows x 4 features each.
    assert model.get_layer("columns_as_time").output.shape == (None, 4, 16)
    assert model.get_layer("lstm").output.shape == (None, 8)


def test_hybrid_uses_a_fast_batchnorm_momentum() -> None:
    model = build_hybrid(input_size=64, seed=0, batchnorm_momentum=0.8)
    momenta = {
        layer.momentum
        for layer in model.get_layer(index=1).layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {0.8}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": 16}, "'input_size' must be an integer >= 32"),
        ({"num_classes": 1}, "'num_classes'"),
        ({"width": 0}, "'width'"),
        ({"lstm_units": 0}, "'lstm_units'"),
        ({"dropout": 1.0}, "'dropout'"),
        ({"dropout": "high"}, "Received: dropout='high'"),
    ],
)
def test_hybrid_validates_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_hybrid(**kwargs)  # type: ignore[arg-type]


def test_registry_rejects_unknown_architectures_by_listing_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'arch' must be one of cnn, hybrid\. Received: arch='vit'"):
        build_model("vit")


def test_registry_builds_each_architecture() -> None:
    for arch in ARCHITECTURES:
        model = build_model(arch, input_size=64, seed=0)
        assert model.output_shape == (None, 4), arch


def test_saved_model_loads_with_the_same_outputs(tmp_path: Path) -> None:
    model = build_hybrid(input_size=64, lstm_units=8, column_features=4, seed=1)
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
    expected = np.asarray(model(batch, training=False))
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(np.asarray(loaded(batch, training=False)), expected, atol=1e-6)
