"""The digitised leads' baseline-shift augmentation (``--lead-offset-mv``): what it does, how it is
described, and that a report names it so a card takes figures only from its own configuration."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from ml.crossval_card import DEFAULT_LEAD_OFFSET_MV, report_configuration
from ml.models import resolve_model
from ml.train import (
    TrainingConfig,
    add_fit_arguments,
    augmentation_description,
    build_augmentation,
    check_fit_arguments,
)


def test_the_default_description_is_the_one_the_shipped_cards_record():
    card = json.loads(resolve_model("hybrid-v5").with_suffix(".json").read_text())
    assert card["hyperparameters"]["augmentation"] == augmentation_description("leads")
    assert "offset U(-0.05, 0.05) mV" in augmentation_description("leads")
    assert "offset U(-0.2, 0.2) mV" in augmentation_description("leads", 0.2)


@pytest.mark.parametrize("offset_mv", [0.05, 0.2])
def test_each_lead_is_shifted_by_at_most_the_offset(offset_mv):
    augment = build_augmentation(seed=3, representation="leads", lead_offset_mv=offset_mv)
    flat = {
        "signals": np.zeros((64, 500, 12), np.float32),
        "trace_image": np.zeros((64, 8, 8, 1), np.float32),
    }
    shifted = np.asarray(augment(flat)["signals"])
    # Flat traces come back as their shift plus 0.02 mV noise: the mean over time is the shift.
    shifts = shifted.mean(axis=1)
    assert np.abs(shifts).max() <= offset_mv + 0.01
    assert np.abs(shifts).max() >= 0.8 * offset_mv


def _parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="hybrid")
    for name, default in (("--epochs", 1), ("--seed", 0), ("--batch-size", 16), ("--synthetic-per-class", 0)):
        parser.add_argument(name, type=int, default=default)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--synthetic-epochs", type=int, default=4)
    parser.add_argument("--weights", default=None)
    add_fit_arguments(parser)
    args = parser.parse_args(argv)
    check_fit_arguments(parser, args)
    return args


def test_the_option_reaches_the_training_configuration_and_is_bounded():
    assert TrainingConfig.from_args(_parsed()).lead_offset_mv == DEFAULT_LEAD_OFFSET_MV
    assert TrainingConfig.from_args(_parsed("--lead-offset-mv", "0.2")).lead_offset_mv == 0.2
    with pytest.raises(SystemExit):
        _parsed("--lead-offset-mv", "2")


def test_a_report_from_before_the_option_reads_as_the_default_offset():
    assert report_configuration({"training": {}})["lead_offset_mv"] == DEFAULT_LEAD_OFFSET_MV
    assert report_configuration({"training": {"lead_offset_mv": 0.2}})["lead_offset_mv"] == 0.2
