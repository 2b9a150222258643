"""Building, validating and saving the network architectures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import time  # noqa: E402

from ml import network  # noqa: E402
from ml.network import (  # noqa: E402
    ARCHITECTURES,
    PretrainedWeightsUnavailableError,
    build_densenet,
    build_hybrid,
    build_model,
)

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
    with pytest.raises(
        ValueError, match=r"'arch' must be one of cnn, densenet, hybrid, mobilenet\. Received: arch='vit'"
    ):
        build_model("vit")


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_registry_builds_each_architecture_to_softmax_outputs(arch: str) -> None:
    model = build_model(arch, input_size=64, seed=0)
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    outputs = np.asarray(model(batch, training=False))
    assert model.output_shape == (None, 4)
    assert outputs.shape == (2, 4) and (outputs >= 0).all()
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)


def test_the_four_issue_architectures_are_registered() -> None:
    from ml.train import ARCHITECTURE_NAMES

    assert set(ARCHITECTURES) == set(ARCHITECTURE_NAMES) == {"cnn", "mobilenet", "densenet", "hybrid"}


@pytest.mark.parametrize("arch", ["hybrid", "mobilenet"])
def test_imagenet_weights_fail_fast_and_clearly_offline(
    arch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing cached

    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("Network is unreachable")

    monkeypatch.setattr(network.socket, "create_connection", unreachable)
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsUnavailableError, match=r"cannot be reached.*weights=None"):
        build_model(arch, input_size=96, weights="imagenet")
    assert time.perf_counter() - start < 5


def test_cached_imagenet_weights_skip_the_network_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(network.socket, "create_connection", lambda *a, **k: pytest.fail("probed"))
    network.ensure_imagenet_weights_reachable("densenet121_weights_tf_dim_ordering_tf_kernels_notop")


@pytest.mark.parametrize(
    ("arch", "kwargs", "message"),
    [
        ("cnn", {"weights": "imagenet"}, "cnn has no pretrained weights"),
        ("densenet", {"weights": "imagenet"}, r"densenet \(variant 'small'\) has no pretrained weights"),
        ("mobilenet", {"weights": "places365"}, "'weights' must be None or 'imagenet'"),
        ("mobilenet", {"weights": "imagenet", "input_size": 64}, "ImageNet weights of MobileNetV2 exist"),
        ("densenet", {"variant": "201"}, "'variant' must be one of small, 121"),
        ("densenet", {"block_layers": ()}, "'block_layers' must be a non-empty tuple"),
        ("densenet", {"input_size": 32, "block_layers": (1, 1, 1, 1, 1)}, "too small for 5 dense blocks"),
    ],
)
def test_builders_validate_weights_and_variants(arch: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(arch, **kwargs)


def test_small_densenet_is_small_and_densely_connected() -> None:
    model = build_densenet(input_size=64, growth_rate=4, block_layers=(2, 2), seed=0)
    # Stem 8 channels + 2 layers x 4 = 16, halved to 8 by the transition, + 2 x 4 = 16.
    assert model.get_layer("block1_layer2_concat").output.shape[-1] == 16
    assert model.get_layer("block2_layer2_concat").output.shape[-1] == 16
    assert build_densenet(seed=0).count_params() < 1_000_000


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_saved_model_loads_with_the_same_outputs(arch: str, tmp_path: Path) -> None:
    model = build_model(arch, input_size=64, seed=1)
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
    expected = np.asarray(model(batch, training=False))
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(np.asarray(loaded(batch, training=False)), expected, atol=1e-6)
