"""Test settings: the real settings with fast hashing, inline tasks and throwaway media."""

import tempfile
from pathlib import Path

from ecgsite.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tasks run in the thread that commits, so a test sees the whole classification path.
ECGSITE_TASK_RUNNER = "inline"
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="ecgsite-test-media-"))
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Rate-limit counters stay in this process, even when the environment names a Redis: tests clear them.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# A lone job's wait for company (worker.tasks._company) would only slow the suite down; the
# batching tests set it where they measure it.
ECGSITE_CLASSIFY_BATCH_WAIT_MS = 0
