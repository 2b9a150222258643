"""`manage.py reap_stale_jobs`: one run of the reaper, for cron or a Kubernetes CronJob.

The same work as the beat task worker.reap_stale_jobs, through the same service
(services.jobs_reap_and_enqueue; see classifier/reaper.py): jobs left queued or running past
their timeout are enqueued again under a fresh task id, and jobs that used up their attempts are
failed with a message their owner sees.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from classifier.services import jobs_reap_and_enqueue


class Command(BaseCommand):
    help = "Re-queue jobs stuck in queued or running past their timeout; fail those out of attempts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="at most this many jobs (default: ECGSITE_REAPER_BATCH_SIZE)",
        )

    def handle(self, *args: Any, limit: int | None, **options: Any) -> None:
        result = jobs_reap_and_enqueue(limit=limit)
        self.stdout.write(f"requeued {len(result.requeued)} failed {len(result.failed)}")
