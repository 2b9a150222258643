"""`manage.py register_models`: record every shipped model as a ModelVersion.

Run after `migrate` (make run, the docker entrypoint's migrate step), so the admin can offer
every shipped model for re-runs and compare them before any worker has loaded one. Safe to
repeat: unchanged models stay as they are; a model whose file sha256 changed is updated and
named in the output.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from classifier.services import default_model_name, model_versions_register_shipped


class Command(BaseCommand):
    help = "Register every shipped model (ml/models/*.keras with its card) as a model version."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            registrations = model_versions_register_shipped()
        except ValueError as error:
            raise CommandError(str(error)) from error
        default = default_model_name()
        for registration in registrations:
            version = registration.version
            line = f"{version.name} ({version.architecture}, sha256 {version.file_sha256[:12]}): "
            line += registration.outcome
            if registration.previous_sha256:
                line += f" (was {registration.previous_sha256[:12]})"
            if version.name == default:
                line += " [default]"
            self.stdout.write(line)
        if not registrations:
            self.stdout.write("no shipped models found")
