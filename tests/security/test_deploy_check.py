"""Production settings pass `manage.py check --deploy` with no warning at all.

Run in a subprocess, because the settings module reads the environment once, at import. The
values the production block sets (secure cookies, HSTS, SSL redirect) are asserted one by one in
tests/ecgsite/test_settings.py; this is Django's own list of what a deployment must not miss.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def check_deploy(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "ecgsite.settings",
        "ECGSITE_PRODUCTION": "1",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "ecg.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://ecg.example.org",
        "ECGSITE_VAR_DIR": str(tmp_path / "var"),
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_with_no_warning(tmp_path):
    result = check_deploy(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    ("overrides", "warning"),
    [
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SECURE_SSL_REDIRECT": "0"}, "security.W008"),
        ({"SECRET_KEY": "short"}, "security.W009"),
        ({"DJANGO_DEBUG": "1"}, "security.W018"),
    ],
    ids=["no HSTS", "no SSL redirect", "weak secret key", "debug on"],
)
def test_the_check_would_catch_a_weakened_setting(tmp_path, overrides, warning):
    result = check_deploy(tmp_path, **overrides)

    assert result.returncode != 0
    assert warning in result.stdout + result.stderr
