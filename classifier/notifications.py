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
    statuses = list(batch.jobs.values_list("status", flat=True))
    context = {
        "batch": batch,
        "succeeded": statuses.count(Job.Status.SUCCEEDED),
        "failed": statuses.count(Job.Status.FAILED),
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
