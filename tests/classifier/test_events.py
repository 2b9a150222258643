"""Events to a user's open browsers: a chunk of jobs goes out in order, and one failed send
neither stops the rest nor reaches the caller."""

from __future__ import annotations

import pytest

from classifier import events
from classifier.selectors import jobs_get_with_predictions
from tests.classifier.factories import BatchFactory, JobFactory


class RecordingLayer:
    """A channel layer that records what it is sent and refuses the sends named in ``refuse``."""

    def __init__(self, refuse: set[int] | None = None) -> None:
        self.refuse = refuse or set()
        self.sent: list[tuple[str, str, int]] = []
        self.attempts = 0

    async def group_send(self, group: str, message: dict) -> None:
        self.attempts += 1
        if self.attempts in self.refuse:
            raise ConnectionError("redis blinked")
        self.sent.append((group, message["type"], message["payload"]["id"]))


@pytest.fixture
def jobs(owner, other_user):
    mine = BatchFactory(owner=owner)
    theirs = BatchFactory(owner=other_user)
    made = [JobFactory(batch=mine), JobFactory(batch=theirs), JobFactory(batch=mine)]
    return jobs_get_with_predictions(job_ids=[job.pk for job in made])


def test_a_chunk_of_jobs_goes_to_each_owners_group_in_order(jobs, owner, other_user, monkeypatch):
    layer = RecordingLayer()
    monkeypatch.setattr("classifier.events.get_channel_layer", lambda: layer)

    events.jobs_updated(jobs)

    assert layer.sent == [
        (f"user-{owner.pk}", "job.updated", jobs[0].pk),
        (f"user-{other_user.pk}", "job.updated", jobs[1].pk),
        (f"user-{owner.pk}", "job.updated", jobs[2].pk),
    ]


def test_a_failed_send_is_logged_and_the_next_ones_still_go(jobs, monkeypatch, caplog):
    layer = RecordingLayer(refuse={1})
    monkeypatch.setattr("classifier.events.get_channel_layer", lambda: layer)

    events.jobs_updated(jobs)

    assert [job_id for _, _, job_id in layer.sent] == [jobs[1].pk, jobs[2].pk]
    assert "could not send job.updated" in caplog.text
