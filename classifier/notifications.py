"""Emails to users about their batches."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from classifier.models import Batch, Job

logger = logging.getLogger(__name__)


def batch_completed_email(batch: Batch) -> None:
    """Tell the owner their batch is done, with a count of results and failures."""
    jobs = list(batch.jobs.all().prefetch_related("predictions"))
    context = {
        "batch": batch,
        "succeeded": sum(job.status == Job.Status.SUCCEEDED for job in jobs),
        "failed": sum(job.status == Job.Status.FAILED for job in jobs),
        "site_url": settings.ECGSITE_SITE_URL.rstrip("/"),
    }
    try:
        send_mail(
            subject=f"ecgsite: your batch “{batch.name}” is complete",
            message=render_to_string("classifier/email/batch_completed.txt", context),
            from_email=None,
            recipient_list=[batch.owner.email],
        )
    except Exception:  # the results are safe in the database; the email is a courtesy
        logger.exception("could not email completion of batch %s", batch.pk)
