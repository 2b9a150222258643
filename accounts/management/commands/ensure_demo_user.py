"""Create (or reset) the demo account that `make run` prints, so a new user can log in at once."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand, CommandParser

from accounts.models import User


class Command(BaseCommand):
    help = "Create the demo account (or reset its password) and print its login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default="demo@ecgsite.local")
        parser.add_argument("--password", default="demo-ecg-2026")

    def handle(self, *args: Any, email: str, password: str, **options: Any) -> None:
        user, created = User.objects.get_or_create(email=email)
        user.set_password(password)
        user.save()
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        state = "created" if created else "ready"
        self.stdout.write(f"Demo account {state}: email {email}  password {password}")
