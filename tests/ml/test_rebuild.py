"""``ml.rebuild``: a model built before ``ml.network`` refused unequal depthwise strides moves
to the graph of plain kernels with the same weights and the same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ml import network, representations  # noqa: E402
from ml.rebuild import carry_weights, probabilities_in_child, rebuild  # noqa: E402
from ml.train import average_models  # noqa: E402

pytestmark = pytest.mark.slow


def legacy_hybrid(monkeypatch: pytest.MonkeyPatch, seed: int) -> keras.Model:
    """The hybrid as hybrid-v2 to v4 were built: one DepthwiseConv2D with strides (2, 1)."""

    def strided_depthwise(x, *, strides, kernel, name):
        options = {"padding": "same", "use_bias": False, "name": name}
        return keras.layers.DepthwiseConv2D(kernel, strides=strides, **options)(x)

    with monkeypatch.context() as patch:
        patch.setattr(network, "_strided_depthwise", strided_depthwise)
        model = network.build_hybrid(seed=seed)
    assert network.unsupported_operations(model)
    return model


def test_a_legacy_ensemble_gets_the_same_outputs_on_plain_kernels(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The original runs on oneDNN's kernels in a child process (the only ones that can), the
    rebuilt one on the plain kernels in another; their probabilities agree."""
    legacy = average_models([legacy_hybrid(monkeypatch, seed) for seed in (1, 2)], arch="hybrid")
    rebuilt = rebuild(legacy, arch="hybrid", members=2)
    assert network.unsupported_operations(rebuilt) == []

    rng = np.random.default_rng(0)
    inputs = {name: rng.uniform(0, 1, (4, *shape)).astype(np.float32) for name, shape in
              representations.get("leads").shapes.items()}  # fmt: skip
    np.savez(tmp_path / "inputs.npz", **inputs)
    legacy.save(tmp_path / "legacy.keras")
    rebuilt.save(tmp_path / "rebuilt.keras")
    before = probabilities_in_child(tmp_path / "legacy.keras", tmp_path / "inputs.npz", onednn=True)
    after = probabilities_in_child(tmp_path / "rebuilt.keras", tmp_path / "inputs.npz", onednn=False)
    assert before.shape == (4, 4)
    np.testing.assert_allclose(after, before, atol=1e-5)


def _dense_model(units: int, name: str = "dense") -> keras.Model:
    inputs = keras.Input(shape=(3,))
    return keras.Model(inputs, keras.layers.Dense(units, name=name)(inputs))


def test_carry_weights_copies_by_layer_name() -> None:
    source, target = _dense_model(2), _dense_model(2)
    assert carry_weights(source, target) == 1
    for ours, theirs in zip(target.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (lambda: _dense_model(5), r"'dense': weights \[\(3, 2\), \(2,\)\] cannot become"),
        (lambda: _dense_model(2, name="renamed"), "'renamed' of the new graph has no weighted partner"),
    ],
)
def test_carry_weights_refuses_what_does_not_fit(target, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        carry_weights(_dense_model(2), target())
