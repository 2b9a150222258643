"""/models/<name>/: a model's page for the people who read its results, linked from each result."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from classifier.presenters import job_as_dict
from ml.models import DEFAULT_MODEL_NAME, model_path, read_card
from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory, PredictionFactory

pytestmark = pytest.mark.django_db


def _page(client, name: str) -> str:
    response = client.get(reverse("classifier:model-detail", args=[name]))
    assert response.status_code == 200
    text = html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))
    return re.sub(r"\s+", " ", text)


def test_the_default_models_page_gives_its_data_figures_limits_and_credit(owner_client):
    card = read_card(model_path(DEFAULT_MODEL_NAME))
    ModelVersionFactory(name=DEFAULT_MODEL_NAME, architecture=card["architecture"], card=card)

    page = _page(owner_client, DEFAULT_MODEL_NAME)

    assert f"Model {DEFAULT_MODEL_NAME} the default" in page
    images = card["training_data"]["images_per_class"]
    trained_on = f"It was trained on {sum(images.values())} scanned 12-lead ECG printouts"
    photos = card["hyperparameters"].get("photo_augment")
    assert trained_on + (f" and on {_photos_per_page(photos)} of each of them" if photos else ";") in page
    assert f"Acute myocardial infarction {images['mi']} " in page
    # The cross-validated figures with their interval, as the card states them (its decision rule's).
    decided = card["decision"]["crossval"]["pooled"]["macro_f1"]
    assert f"macro-F1 {decided['value']:.3f} [{decided['low']:.3f}, {decided['high']:.3f}]" in page
    assert "5-fold cross-validation" in page and card["decision"]["description"] in page
    # What it cannot do: classes it does not know, rare MI with its measured recall, photos.
    assert "It knows four classes only" in page
    recall = card["decision"]["crossval"]["pooled"]["per_class"]["mi"]["recall"]
    found = f"({images['mi']} of {sum(images.values())} images): in cross-validation it found {recall:.0%}"
    assert found in page
    classification = card["photos"]["classification"]
    how_well = (
        "less well than" if min(classification["ratio_to_scans"].values()) < 0.95 else "about as well as"
    )
    desk = classification["desk"]["macro_f1"]["value"]
    assert f"It reads phone photos of printouts {how_well} scans: macro-F1 {desk:.3f} on photos" in page
    assert "research software, not a medical device" in page
    assert "Khan & Hussain 2021" in page and "CC BY 4.0" in page


def _photos_per_page(count: int) -> str:
    return "a phone photo" if count == 1 else f"{count} phone photos"


@pytest.mark.parametrize(
    ("augment", "ratios", "trained", "reads"),
    [
        (1, {"desk": 0.90, "screen": 0.97}, "and on a phone photo of each of them", "less well than scans"),
        (
            3,
            {"desk": 0.95, "screen": 1.05},
            "and on 3 phone photos of each of them",
            "about as well as scans",
        ),
    ],
)
def test_the_page_says_how_many_photos_it_trained_on_and_how_well_it_reads_them(
    owner_client, augment, ratios, trained, reads
):
    def scored(value: float) -> dict:
        return {"macro_f1": {"value": value}}

    photos = {"scans": scored(0.8), **{kind: scored(0.8 * ratio) for kind, ratio in ratios.items()}}
    card = {
        "name": "photos-v1",
        "hyperparameters": {"photo_augment": augment},
        "training_data": {"images_per_class": {"normal": 3, "mi": 1}},
        "photos": {"classification": {**photos, "ratio_to_scans": ratios}},
    }
    ModelVersionFactory(name="photos-v1", architecture="hybrid", card=card)

    page = _page(owner_client, "photos-v1")

    assert f"It was trained on 4 scanned 12-lead ECG printouts {trained}" in page
    assert (
        f"It reads phone photos of printouts {reads}: macro-F1 {0.8 * ratios['desk']:.3f} on photos" in page
    )


def test_a_card_without_figures_says_what_is_unknown_instead_of_guessing(owner_client):
    ModelVersionFactory(name="bare-v1", architecture="cnn", card={"name": "bare-v1", "architecture": "cnn"})

    page = _page(owner_client, "bare-v1")

    assert "the default" not in page
    assert "was not cross-validated (not cross-validated; no metrics)" in page
    assert "It has not been measured on phone photos of printouts: send scans." in page
    assert "rare in its training data" not in page  # no counts to say it with
    assert "trained on — scanned" in page and "its card is dated not recorded" in page


def test_a_model_with_a_photo_rule_says_how_a_photo_is_labelled(owner_client):
    description = (
        "for a page straightened from a photo: label mi when its calibrated probability reaches 0.250, "
        "else the most probable class; the probabilities are reported unchanged"
    )
    card = {"name": "photo-v1", "decision_photos": {"rule": "threshold", "class": "mi", "threshold": 0.25}}
    card["decision_photos"]["description"] = description
    ModelVersionFactory(name="photo-v1", architecture="hybrid", card=card)

    assert f"And {description}." in _page(owner_client, "photo-v1")
    assert "And for a page straightened" not in _page(owner_client, ModelVersionFactory(name="scan-v1").name)


def test_an_unknown_model_is_404_and_a_visitor_must_sign_in(owner_client, client):
    assert owner_client.get(reverse("classifier:model-detail", args=["nope"])).status_code == 404
    ModelVersionFactory(name="m-v1")
    response = client.get(reverse("classifier:model-detail", args=["m-v1"]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


def test_every_result_links_to_its_models_page(owner_client, owner_api, owner):
    batch = BatchFactory(owner=owner)
    done, waiting = JobFactory(batch=batch, status="succeeded"), JobFactory(batch=batch)
    PredictionFactory(job=done, model_version=ModelVersionFactory(name="hybrid-v9"), label="mi")

    assert job_as_dict(done)["model_url"] == "/models/hybrid-v9/"
    assert job_as_dict(waiting)["model_url"] is None
    # The API gives the same link; the page it names opens.
    assert owner_api.get(f"/api/v1/jobs/{done.pk}/").json()["model_url"] == "/models/hybrid-v9/"
    assert owner_client.get("/models/hybrid-v9/").status_code == 200
