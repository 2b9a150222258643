"""Which lead and which seconds drove a prediction: a weight map over the page's traces, the lead
and the seconds that carry the most of it, a sentence, and an overlay of the map on the page.

For the hybrid models (the ``leads`` representations) the map has one row per trace row of the
printout (three rows of leads, then the rhythm strip) and one column per 0.31 s of the 10 s
axis (``ROWS`` x ``STEPS``), and it is the mean of two halves, each summing to 1:

- Grad-CAM (Selvaraju et al., 2017) on the image branch: the gradient of the labelled class's
  probability, averaged per channel, weighs the branch's last feature map, which already has one
  stripe per trace row and one column per time step;
- integrated gradients (Sundararajan et al., 2017) on the signal branch: the gradients along a
  straight path from flat traces (0 mV) to the page's own, times the traces, summed per row and
  time step; ``IG_STEPS`` points on the path.

An ensemble's Grad-CAM is the mean of its members'. Models that read the whole page (the
baselines) get no explanation (``explainable``). The map is a pointer for a person reading the
ECG, not a measurement: ``tests/ml/test_explain.py`` checks that it depends on the trained
weights (Adebayo et al., 2018), not that it finds what a cardiologist would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ml import layout
from ml.representations import Inputs

ROWS = len(layout.ROW_BASELINES)  # three rows of leads and the rhythm strip
STEPS = 32  # time steps of the hybrid's feature map: 10 s / 32, about 0.31 s each
STEPS_PER_PANEL = STEPS // len(layout.COLUMN_LEADS)
PANEL_SECONDS = 10.0 / len(layout.COLUMN_LEADS)
IG_STEPS = 16
DASH = "–"  # an en dash: "V2–V3, 5.0–7.5 s"
# The hybrid's image-branch feature map is the input of this layer (``ml.network.build_hybrid``).
FEATURE_LAYER = "time_first"
# A second region is named beside the first when it carries at least this share of the first's.
NEIGHBOUR_SHARE = 0.8
METHOD = (
    "mean of Grad-CAM on the image branch and integrated gradients (16 steps from flat traces) on "
    "the signal branch, each summing to 1, per trace row and 0.31 s"
)


@dataclass(frozen=True)
class Explanation:
    weights: np.ndarray  # (ROWS, STEPS), non-negative, summing to 1
    lead: str  # "V2", "V2–V3" or "II (rhythm strip)"
    start_s: float
    end_s: float
    share: float  # of the whole map's weight, in the named region
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "lead": self.lead,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "share": round(self.share, 4),
            "text": self.text,
            "weights": np.round(self.weights, 5).tolist(),
            "method": METHOD,
        }


def explainable(model: Any) -> bool:
    """Whether ``model`` (or each member of an ensemble) has the hybrid's image-branch feature map."""
    return bool(_feature_models(model))


class Explainer:
    """Explains a hybrid model's predictions; build it once per model (the attribution is one
    compiled TensorFlow function: Grad-CAM's pass, then the integrated-gradients path)."""

    def __init__(self, model: Any) -> None:
        import keras
        import tensorflow as tf  # lazy: importing this module stays cheap

        members = _feature_models(model)
        if not members:
            raise ValueError(
                f"{model.name} has no {FEATURE_LAYER!r} layer: only hybrid models are explained."
            )
        probes = [keras.Model(m.input, [m.get_layer(FEATURE_LAYER).input, m.output]) for m in members]
        names = [list(m.input) for m in members]
        classes = int(model.output.shape[-1])

        @tf.function(reduce_retracing=True)
        def attribute(batch: dict[str, Any], class_indices: Any) -> tuple[Any, Any]:
            targets = tf.one_hot(class_indices, classes, dtype=tf.float32)
            cams = []
            for probe, keys in zip(probes, names, strict=True):
                with tf.GradientTape() as tape:
                    features, probabilities = probe({key: batch[key] for key in keys}, training=False)
                    score = tf.reduce_sum(probabilities * targets, axis=1)
                gradients = tape.gradient(score, features)  # (n, ROWS, STEPS, channels)
                weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
                cams.append(tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)))
            # Integrated gradients: one point of the path at a time for the whole batch (a batch
            # of every point would hold 16 pages' activations per page at once).
            signals = batch["signals"]  # (n, samples, 2 * ROWS): each row's top and bottom ink edge
            total = tf.zeros_like(signals)
            for k in tf.range(1, IG_STEPS + 1):  # the right Riemann sum of the path integral
                point = signals * (tf.cast(k, tf.float32) / IG_STEPS)
                with tf.GradientTape() as tape:
                    tape.watch(point)
                    probabilities = model({**batch, "signals": point}, training=False)
                    score = tf.reduce_sum(probabilities * targets, axis=1)
                total += tape.gradient(score, point)
            integrated = total / IG_STEPS * signals
            return tf.reduce_mean(tf.stack(cams), axis=0), integrated

        self._attribute = attribute

    def explain(self, inputs: Inputs, class_indices: list[int]) -> list[Explanation]:
        """One explanation per page of ``inputs`` (a batch of the ``leads`` representation), of
        the class ``class_indices`` gives for it (the label the model gave)."""
        import tensorflow as tf

        batch = {name: tf.convert_to_tensor(np.asarray(array, np.float32)) for name, array in inputs.items()}
        cams, integrated = self._attribute(batch, tf.constant(class_indices, tf.int32))
        weights = (_normalised(cams.numpy()) + _normalised(_per_row_and_step(integrated.numpy()))) / 2
        return [describe(page) for page in weights]


def describe(weights: np.ndarray) -> Explanation:
    """The region of a (ROWS, STEPS) map with the most weight, in words: a printed lead's 2.5 s
    panel, or a 2.5 s stretch of the rhythm strip."""
    weights = _normalised(np.asarray(weights, np.float64)[np.newaxis])[0]
    panels = weights.reshape(ROWS, len(layout.COLUMN_LEADS), STEPS_PER_PANEL).sum(axis=2)
    row, column = np.unravel_index(int(np.argmax(panels)), panels.shape)
    best = float(panels[row, column])
    rows = [int(row)]
    if row < ROWS - 1:  # a printed lead: the one above or below may carry nearly as much
        close = [
            r for r in (row - 1, row + 1) if 0 <= r < ROWS - 1 and panels[r, column] >= NEIGHBOUR_SHARE * best
        ]
        if close:
            rows.append(int(max(close, key=lambda r: panels[r, column])))
    rows.sort()
    names = [_lead_name(r, int(column)) for r in rows]
    lead = DASH.join(names)
    start = column * PANEL_SECONDS
    end = start + PANEL_SECONDS
    share = float(sum(panels[r, column] for r in rows))
    text = f"Most weight on {lead}, {start:.1f}{DASH}{end:.1f} s ({share:.0%} of the total)"
    return Explanation(weights=weights, lead=lead, start_s=start, end_s=end, share=share, text=text)


def overlay(page: Image.Image, weights: np.ndarray) -> Image.Image:
    """``page`` (a decoded full page, any resolution of the layout) with the map laid over its
    traces in red, strongest where the weight is, and the named region outlined."""
    explanation = describe(weights)
    page = page.convert("RGB")
    width, height = page.size
    left = round(layout.scale_x(layout.COLUMN_EDGES[0], width))
    right = round(layout.scale_x(layout.COLUMN_EDGES[-1], width))
    spacing = layout.ROW_BASELINES[1] - layout.ROW_BASELINES[0]
    top = round(layout.scale_y(layout.ROW_BASELINES[0] - spacing / 2, height))
    bottom = round(layout.scale_y(layout.ROW_BASELINES[-1] + spacing / 2, height))
    heat = explanation.weights / max(float(explanation.weights.max()), 1e-12)
    alpha = Image.fromarray(np.uint8(np.clip(heat, 0, 1) * 150)).resize(
        (right - left, bottom - top), Image.Resampling.BILINEAR
    )
    red = Image.new("RGB", alpha.size, (220, 20, 60))
    page.paste(red, (left, top), alpha)
    draw = ImageDraw.Draw(page)
    panel_width = (right - left) / len(layout.COLUMN_LEADS)
    row_height = (bottom - top) / ROWS
    column = round(explanation.start_s / PANEL_SECONDS)
    rows = [_row_of(name) for name in explanation.lead.split(DASH)]
    box = (
        round(left + column * panel_width),
        round(top + min(rows) * row_height),
        round(left + (column + 1) * panel_width),
        round(top + (max(rows) + 1) * row_height),
    )
    draw.rectangle(box, outline=(30, 30, 30), width=max(2, width // 400))
    return page


def _lead_name(row: int, column: int) -> str:
    if row == ROWS - 1:
        return f"{layout.RHYTHM_LEAD} (rhythm strip)"
    return layout.COLUMN_LEADS[column][row]


def _row_of(name: str) -> int:
    if name.endswith("(rhythm strip)"):
        return ROWS - 1
    return next(column.index(name) for column in layout.COLUMN_LEADS if name in column)


def _feature_models(model: Any) -> list[Any]:
    """``model`` itself when it has the feature layer, else its members that do (an ensemble)."""
    names = {layer.name for layer in model.layers}
    if FEATURE_LAYER in names:
        return [model]
    members = [layer for layer in model.layers if hasattr(layer, "layers")]
    found = [member for member in members if FEATURE_LAYER in {layer.name for layer in member.layers}]
    return found if members and len(found) == len(members) else []


def _per_row_and_step(attributions: np.ndarray) -> np.ndarray:
    """(n, samples, 2 * ROWS) signal attributions as (n, ROWS, STEPS) weights."""
    magnitudes = np.abs(attributions)
    n, samples, channels = magnitudes.shape
    per_row = magnitudes.reshape(n, samples, channels // 2, 2).sum(axis=3)
    per_step = per_row.reshape(n, STEPS, samples // STEPS, ROWS).sum(axis=2)
    return np.transpose(per_step, (0, 2, 1))


def _normalised(maps: np.ndarray) -> np.ndarray:
    """Each map of a (n, ROWS, STEPS) stack scaled to sum to 1 (a map with no weight: uniform)."""
    maps = np.clip(np.asarray(maps, np.float64), 0, None)
    sums = maps.sum(axis=(1, 2), keepdims=True)
    uniform = np.full_like(maps, 1.0 / (maps.shape[1] * maps.shape[2]))
    return np.where(sums > 0, maps / np.where(sums > 0, sums, 1), uniform)
