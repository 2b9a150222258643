"""The Celery application: `celery -A ecgsite worker` on the real stack."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecgsite.settings")

app = Celery("ecgsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
