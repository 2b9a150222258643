"""Building, validating and saving the network architectures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import time  # noqa: E402

from ml import network, representations  # noqa: E402
from ml.network import (  # noqa: E402
    ARCHITECTURES,
    TIME_STEPS,
    PretrainedWeightsUnavailableError,
    build_densenet,
    build_hybrid,
    build_model,
    training_model,
)
from ml.representations import ARCHITECTURE_REPRESENTATION  # noqa: E402

# Building MobileNetV2 graphs takes a few seconds each.
pytestmark = pytest.mark.slow


def leads_batch(n: int, representation: str = "leads") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        name: rng.uniform(-1, 1, (n, *shape)).astype(np.float32)
        for name, shape in representations.get(representation).shapes.items()
    }


def batch_for(arch: str, n: int) -> dict[str, np.ndarray] | np.ndarray:
    """``n`` random inputs for ``arch``: trace inputs, or 64x64 page images."""
    if ARCHITECTURE_REPRESENTATION[arch] != "page":
        return leads_batch(n, ARCHITECTURE_REPRESENTATION[arch])
    return np.random.default_rng(0).uniform(-1, 1, (n, 64, 64, 3)).astype(np.float32)


def test_hybrid_maps_trace_inputs_to_class_probabilities() -> None:
    model = build_hybrid(lstm_units=8, seed=0)
    outputs = np.asarray(model(leads_batch(2), training=False))
    assert model.output_shape == (None, 4)
    assert outputs.shape == (2, 4)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)


def test_hybrid_lstm_reads_both_branches_in_the_same_time_steps() -> None:
    model = build_hybrid(lstm_units=8, seed=0)
    spatial = model.get_layer("time_steps").output.shape
    signal = model.get_layer("signal5_relu").output.shape
    # 32 steps of 0.31 s; the image branch keeps one stripe per trace row in its features.
    assert spatial[1] == signal[1] == TIME_STEPS == 32
    assert model.get_layer("fuse").output.shape == (None, 32, spatial[2] + signal[2])
    assert model.get_layer("bilstm").output.shape == (None, 16)


def test_hybrid_output_is_the_average_of_its_three_supervised_heads() -> None:
    model = build_hybrid(lstm_units=8, seed=0)
    trainable = training_model(model)
    assert len(trainable.outputs) == 3
    batch = leads_batch(3)
    heads = [np.asarray(h) for h in trainable(batch, training=False)]
    np.testing.assert_allclose(np.asarray(model(batch, training=False)), np.mean(heads, axis=0), rtol=1e-5)
    # A one-head model trains as it is.
    cnn = build_model("cnn", input_size=64, seed=0)
    assert training_model(cnn) is cnn


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "'num_classes'"),
        ({"lstm_units": 0}, "'lstm_units'"),
        ({"dropout": 1.0}, "'dropout'"),
        ({"dropout": "high"}, "Received: dropout='high'"),
        ({"weights": "imagenet"}, "hybrid has no pretrained weights"),
    ],
)
def test_hybrid_validates_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_hybrid(**kwargs)  # type: ignore[arg-type]


def test_registry_rejects_unknown_architectures_by_listing_known_ones() -> None:
    known = "cnn, densenet, hybrid, hybrid_measured, mobilenet"
    with pytest.raises(ValueError, match=rf"'arch' must be one of {known}\. Received: arch='vit'"):
        build_model("vit")


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_registry_builds_each_architecture_to_softmax_outputs(arch: str) -> None:
    model = build_model(arch, input_size=64, seed=0)
    batch = batch_for(arch, 2)
    outputs = np.asarray(model(batch, training=False))
    assert model.output_shape == (None, 4)
    assert outputs.shape == (2, 4) and (outputs >= 0).all()
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)


def test_the_four_issue_architectures_and_the_measured_hybrid_are_registered() -> None:
    from ml.train import ARCHITECTURE_NAMES

    issue = {"cnn", "mobilenet", "densenet", "hybrid"}
    assert set(ARCHITECTURES) == set(ARCHITECTURE_NAMES) == issue | {"hybrid_measured"}
    assert set(ARCHITECTURE_REPRESENTATION) == set(ARCHITECTURES)


@pytest.mark.parametrize("arch", ["mobilenet"])
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
    batch = batch_for(arch, 3)
    expected = np.asarray(model(batch, training=False))
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(np.asarray(loaded(batch, training=False)), expected, atol=1e-6)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_from_scratch_networks_use_a_fast_batchnorm_momentum(arch: str) -> None:
    """0.99 or 0.999 leave inference statistics behind after a few hundred steps (a fold
    of the small DenseNet predicted one class for every image)."""
    model = build_model(arch, input_size=64, seed=0)
    layers = [
        layer
        for sub in [model, *[m for m in model.layers if isinstance(m, keras.Model)]]
        for layer in sub.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert layers and {layer.momentum for layer in layers} == {0.9}


def _depthwise_model(height: int, width: int, strides: tuple[int, int]) -> keras.Model:
    inputs = keras.Input(shape=(height, width, 2))
    return keras.Model(inputs, network._strided_depthwise(inputs, strides=strides, kernel=3, name="dw"))


@pytest.mark.parametrize("height", [8, 7])
@pytest.mark.parametrize("width", [6, 5])
def test_unequal_strides_give_exactly_what_a_strided_kernel_computes(height: int, width: int) -> None:
    """Strides (2, 1) from plain kernels: the stride-1 depthwise, kept at the rows TensorFlow's
    strided kernel centres on. Checked against the (2, 2) kernel every device runs: its output
    is ours (2, 1) at the columns that kernel keeps, for odd and even sizes."""
    uneven, square = _depthwise_model(height, width, (2, 1)), _depthwise_model(height, width, (2, 2))
    square.get_layer("dw").set_weights(uneven.get_layer("dw").get_weights())
    x = np.random.default_rng(0).normal(size=(2, height, width, 2)).astype(np.float32)
    ours, reference = np.asarray(uneven(x)), np.asarray(square(x))
    assert ours.shape == (2, -(-height // 2), width, 2)
    first = network._same_padding_offset(width, 2, 3)  # the first column a stride-2 kernel keeps
    np.testing.assert_allclose(ours[:, :, first::2, :], reference, atol=1e-6)
    assert network.unsupported_operations(uneven) == []


def test_the_builder_refuses_a_network_only_onednn_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def build_uneven(**_kwargs: object) -> keras.Model:
        inputs = keras.Input(shape=(16, 16, 3))
        x = keras.layers.DepthwiseConv2D(3, strides=(1, 2), name="sideways")(inputs)
        return keras.Model(inputs, x, name="uneven")

    monkeypatch.setitem(ARCHITECTURES, "uneven", build_uneven)
    with pytest.raises(network.UnsupportedOperationError, match=r"'sideways' .*unequal strides \(1, 2\)"):
        build_model("uneven")


def test_nested_models_are_checked_too() -> None:
    inputs = keras.Input(shape=(16, 16, 3))
    member = keras.Model(inputs, keras.layers.SeparableConv2D(4, 3, strides=(2, 1), name="inner")(inputs))
    outer_inputs = keras.Input(shape=(16, 16, 3))
    outer = keras.Model(outer_inputs, member(outer_inputs))
    assert [problem.split(" (")[0] for problem in network.unsupported_operations(outer)] == ["layer 'inner'"]


def test_every_shipped_model_is_built_from_plain_kernels() -> None:
    from ml.models import MODELS_DIR

    files = sorted(MODELS_DIR.glob("*.keras"))
    assert len(files) >= 4
    for path in files:
        model = keras.models.load_model(path, compile=False)
        assert network.unsupported_operations(model) == [], path.name
