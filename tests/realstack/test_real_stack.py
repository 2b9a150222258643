"""The real stack end to end, over HTTP and real websockets: nothing runs in this process.

alice uploads three synthetic pages; the separate Celery worker classifies them and her open
websocket hears each job succeed and then the batch complete. bob, signed in at the same
time, hears none of it. MariaDB holds exactly one prediction per job, also after the worker
gets a duplicate delivery of a finished job's task.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import pytest

from classifier.models import CLASS_KEYS
from ml.decision import DecisionRule
from tests.e2e.client import (
    EventStream,
    Message,
    SiteClient,
    is_batch_completed,
    is_job_update,
    synthetic_images,
)
from tests.e2e.livestack import LiveStack
from tests.realstack.mariadb import MariaDB

pytestmark = [pytest.mark.realstack, pytest.mark.slow]

# The worker's first job imports TensorFlow and loads the model on CPU.
BATCH_TIMEOUT_S = 180.0
EVENT_TIMEOUT_S = 60.0
# How long bob keeps listening after alice's batch completed, for events that should not come.
QUIET_PERIOD_S = 3.0
# Longer than the 5 s that a blocking channel-layer read may last.
IDLE_S = 12.0
STATUS_ORDER = ["queued", "running", "succeeded"]


@dataclass(frozen=True)
class ClassifiedBatch:
    batch_id: int
    job_ids: list[int]
    alice_messages: list[Message]
    bob_messages: list[Message]


async def _upload_and_listen(stack: LiveStack, alice: SiteClient, bob: SiteClient) -> tuple[int, list, list]:
    alice_events = await EventStream.open(
        stack.websocket_url, cookie_header=alice.cookie_header, origin=stack.origin
    )
    bob_events = await EventStream.open(
        stack.websocket_url, cookie_header=bob.cookie_header, origin=stack.origin
    )
    try:
        await alice_events.wait_for(
            lambda m: m["type"] == "state", timeout=EVENT_TIMEOUT_S, what="alice's state"
        )
        await bob_events.wait_for(lambda m: m["type"] == "state", timeout=EVENT_TIMEOUT_S, what="bob's state")
        answer = await asyncio.to_thread(alice.upload, synthetic_images(3, first_seed=100), "real stack")
        batch_id = int(answer["batch"])
        await alice_events.wait_for(
            is_batch_completed(batch_id),
            timeout=BATCH_TIMEOUT_S,
            what=f"batch.completed for batch {batch_id}",
        )
        # bob asks for alice's batch by id, and then listens a while longer.
        await bob_events.send({"type": "batch.subscribe", "batch": batch_id})
        await bob_events.wait_for(lambda m: m["type"] == "error", timeout=EVENT_TIMEOUT_S, what="bob's error")
        await asyncio.sleep(QUIET_PERIOD_S)
        return batch_id, alice_events.messages, bob_events.messages
    finally:
        await alice_events.close()
        await bob_events.close()


@pytest.fixture(scope="module")
def classified_batch(
    real_stack: LiveStack, alice: SiteClient, bob: SiteClient, mariadb: MariaDB
) -> ClassifiedBatch:
    """alice's batch of three, uploaded over HTTP and classified, with what each user heard."""
    batch_id, alice_messages, bob_messages = asyncio.run(_upload_and_listen(real_stack, alice, bob))
    job_ids = [
        row[0]
        for row in mariadb.query("SELECT id FROM classifier_job WHERE batch_id = %s ORDER BY id", (batch_id,))
    ]
    return ClassifiedBatch(batch_id, job_ids, alice_messages, bob_messages)


def test_the_batch_has_one_job_per_uploaded_image(classified_batch: ClassifiedBatch) -> None:
    assert len(classified_batch.job_ids) == 3


def test_the_owner_hears_each_job_succeed_with_four_probabilities_summing_to_one(
    classified_batch: ClassifiedBatch,
) -> None:
    messages = classified_batch.alice_messages
    assert messages[0]["type"] == "state"
    for job_id in classified_batch.job_ids:
        updates = [m["job"] for m in messages if m["type"] == "job.updated" and m["job"]["id"] == job_id]
        statuses = [update["status"] for update in updates]
        assert statuses, f"no job.updated for job {job_id}"
        assert statuses[-1] == "succeeded", f"job {job_id} went {statuses}"
        assert statuses == sorted(statuses, key=STATUS_ORDER.index), f"job {job_id} went back: {statuses}"
        final = updates[-1]
        assert final["batch"] == classified_batch.batch_id
        assert list(final["probabilities"]) == list(CLASS_KEYS)
        assert math.isclose(sum(final["probabilities"].values()), 1.0, abs_tol=1e-6), final["probabilities"]
        assert all(0.0 <= p <= 1.0 for p in final["probabilities"].values()), final["probabilities"]
        # The model's decision rule (an MI threshold) picks the label; one that is not the most
        # probable class comes with a note saying why.
        assert final["label"] == expected_decision_rule().label_of(final["probabilities"]), final
        most_probable = max(final["probabilities"], key=final["probabilities"].get)
        assert bool(final["label_note"]) == (final["label"] != most_probable), final
        assert final["model_version"] == expected_model_name()


def test_the_owner_hears_the_batch_complete_after_its_last_job(classified_batch: ClassifiedBatch) -> None:
    messages = classified_batch.alice_messages
    completions = [i for i, m in enumerate(messages) if m["type"] == "batch.completed"]
    assert len(completions) == 1, f"{len(completions)} batch.completed messages"
    completed = messages[completions[0]]["batch"]
    assert completed["id"] == classified_batch.batch_id
    assert completed["counts"]["succeeded"] == 3 and completed["counts"]["failed"] == 0, completed["counts"]
    last_success = max(
        i for i, m in enumerate(messages) if m["type"] == "job.updated" and m["job"]["status"] == "succeeded"
    )
    assert completions[0] > last_success, "batch.completed came before the last job succeeded"


def test_another_user_hears_none_of_the_owners_events(classified_batch: ClassifiedBatch) -> None:
    kinds = [m["type"] for m in classified_batch.bob_messages]
    assert kinds == ["state", "error"], f"bob received {kinds}"
    assert classified_batch.bob_messages[0]["batches"] == []
    assert classified_batch.bob_messages[1]["message"] == "No such batch."


def test_mariadb_holds_exactly_one_prediction_per_job(
    classified_batch: ClassifiedBatch, mariadb: MariaDB
) -> None:
    rows = mariadb.query(
        "SELECT j.id, j.status, j.attempts, COUNT(p.id) FROM classifier_job j "
        "LEFT JOIN classifier_prediction p ON p.job_id = j.id "
        "WHERE j.batch_id = %s GROUP BY j.id ORDER BY j.id",
        (classified_batch.batch_id,),
    )
    assert rows == [(job_id, "succeeded", 1, 1) for job_id in classified_batch.job_ids]


def test_a_duplicate_delivery_of_a_finished_job_creates_no_second_prediction(
    real_stack: LiveStack, alice: SiteClient, classified_batch: ClassifiedBatch, mariadb: MariaDB
) -> None:
    job_id = classified_batch.job_ids[0]
    [(task_id,)] = mariadb.query("SELECT task_id FROM classifier_job WHERE id = %s", (job_id,))

    async def redeliver() -> Message:
        events = await EventStream.open(
            real_stack.websocket_url, cookie_header=alice.cookie_header, origin=real_stack.origin
        )
        try:
            await events.wait_for(lambda m: m["type"] == "state", timeout=EVENT_TIMEOUT_S, what="state")
            # Publish the same task again, with the same task id, through the site's Celery app.
            await asyncio.to_thread(
                real_stack.manage,
                "shell",
                "-c",
                "from worker.tasks import classify; "
                f"classify.apply_async(args=[{job_id}], task_id={task_id!r})",
            )
            # The worker reports the job's state even when it declines to run it again.
            _, message = await events.wait_for(
                is_job_update(job_id),
                timeout=EVENT_TIMEOUT_S,
                what=f"job.updated for redelivered job {job_id}",
            )
            return message
        finally:
            await events.close()

    message = asyncio.run(redeliver())

    assert message["job"]["status"] == "succeeded"
    assert f"job {job_id}: not claimable" in real_stack.worker.log(200_000)
    assert mariadb.query(
        "SELECT j.status, j.attempts, COUNT(p.id) FROM classifier_job j "
        "LEFT JOIN classifier_prediction p ON p.job_id = j.id WHERE j.id = %s GROUP BY j.id",
        (job_id,),
    ) == [("succeeded", 1, 1)]


def expected_model_name() -> str:
    """The name the worker reports for the shipped default model (from its card)."""
    from ml.models import DEFAULT_MODEL_NAME, default_model_path, read_card

    return str(read_card(default_model_path()).get("name", DEFAULT_MODEL_NAME))


def expected_decision_rule() -> DecisionRule:
    """How the shipped default model turns its probabilities into a label (from its card)."""
    from ml.decision import rule_from_card
    from ml.models import default_model_path, read_card

    return rule_from_card(read_card(default_model_path()))


def test_an_idle_websocket_stays_open_and_still_answers(real_stack: LiveStack, bob: SiteClient) -> None:
    # Idle for longer than the channel layer's 5 s blocking read and the Redis client's timeout.
    async def idle_then_ask() -> tuple[list[Message], str | None]:
        events = await EventStream.open(
            real_stack.websocket_url, cookie_header=bob.cookie_header, origin=real_stack.origin
        )
        try:
            await events.wait_for(lambda m: m["type"] == "state", timeout=EVENT_TIMEOUT_S, what="state")
            await asyncio.sleep(IDLE_S)
            closed_while_idle = events.closed_reason
            await events.send({"type": "batch.subscribe", "batch": 0})
            await events.wait_for(lambda m: m["type"] == "error", timeout=EVENT_TIMEOUT_S, what="an answer")
            return events.messages, closed_while_idle
        finally:
            await events.close()

    messages, closed_while_idle = asyncio.run(idle_then_ask())

    assert closed_while_idle is None, f"the websocket closed while idle: {closed_while_idle}"
    assert [m["type"] for m in messages] == ["state", "error"]
