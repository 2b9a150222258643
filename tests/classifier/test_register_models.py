"""manage.py register_models: every shipped model becomes a ModelVersion, once; changes are reported."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

import ml.models
from classifier import services
from classifier.models import ModelVersion
from ml.models import ModelIdentity
from tests.model_cards import crossval_card, validation_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped(monkeypatch) -> list[dict]:
    """The cards ml.models.list_model_cards() returns; tests change them in place."""
    cards = [validation_card("hybrid-v1"), crossval_card("hybrid-v4")]
    monkeypatch.setattr(ml.models, "list_model_cards", lambda: cards)
    return cards


def _register() -> str:
    out = StringIO()
    call_command("register_models", stdout=out)
    return out.getvalue()


def test_it_registers_every_shipped_model_with_its_card_and_metrics(shipped, settings, monkeypatch):
    settings.ECGSITE_MODEL = ""
    monkeypatch.setattr(ml.models, "DEFAULT_MODEL_NAME", "hybrid-v4")  # whichever ships as the default

    output = _register()

    versions = {version.name: version for version in ModelVersion.objects.all()}
    assert sorted(versions) == ["hybrid-v1", "hybrid-v4"]
    assert versions["hybrid-v4"].card == shipped[1]
    assert versions["hybrid-v4"].file_sha256 == shipped[1]["file_sha256"]
    assert versions["hybrid-v4"].metrics["source"] == "cross-validation"
    assert versions["hybrid-v4"].metrics["ece_calibrated"] is not None
    assert versions["hybrid-v1"].metrics["macro_f1"] == 0.5925
    assert "hybrid-v4 (hybrid, sha256 000000000000): created [default]" in output
    assert "hybrid-v1 (hybrid, sha256 eeeeeeeeeeee): created\n" in output


def test_a_second_run_changes_nothing(shipped):
    _register()
    created = {version.name: version.created for version in ModelVersion.objects.all()}

    output = _register()

    assert output.count("unchanged") == 2
    assert {version.name: version.created for version in ModelVersion.objects.all()} == created


def test_a_changed_file_sha256_is_updated_and_reported(shipped):
    _register()
    shipped[1]["file_sha256"] = "9" * 64

    output = _register()

    assert ModelVersion.objects.get(name="hybrid-v4").file_sha256 == "9" * 64
    assert "hybrid-v4 (hybrid, sha256 999999999999): sha256 changed (was 000000000000)" in output


def test_a_changed_card_with_the_same_file_is_updated(shipped):
    _register()
    shipped[0]["training_seconds"] = 5.0

    output = _register()

    assert ModelVersion.objects.get(name="hybrid-v1").card["training_seconds"] == 5.0
    assert "hybrid-v1 (hybrid, sha256 eeeeeeeeeeee): card updated" in output


def test_a_card_without_a_file_sha256_stops_the_command_before_anything_is_stored(shipped):
    del shipped[1]["file_sha256"]

    with pytest.raises(CommandError, match="lacks file_sha256"):
        _register()
    assert not ModelVersion.objects.exists()


def test_a_worker_still_refuses_a_file_that_differs_from_the_registered_one(shipped):
    _register()
    identity = ModelIdentity(name="hybrid-v4", architecture="hybrid", file_sha256="8" * 64, card={})

    with pytest.raises(ValueError, match="give a retrained model a new name"):
        services.model_version_register(identity=identity)


def test_the_real_shipped_models_register():
    if not ml.models.list_model_cards():
        pytest.skip("no shipped models in this checkout")

    _register()

    assert ModelVersion.objects.filter(name=ml.models.DEFAULT_MODEL_NAME).exists()


@pytest.mark.parametrize(
    ("configured", "expected"),
    [("", ml.models.DEFAULT_MODEL_NAME), ("cnn-v2", "cnn-v2"), ("/srv/models/retrained.keras", "retrained")],
)
def test_the_default_model_name_follows_ecgsite_model(settings, configured, expected):
    settings.ECGSITE_MODEL = configured

    assert services.default_model_name() == expected
