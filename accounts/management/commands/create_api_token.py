"""Print a new API token for an account: `create_api_token EMAIL [--create-user] [--name NAME]`."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiToken, User
from accounts.signals import api_token_created
from accounts.tokens import api_token_create
from accounts.verification import email_verified


class Command(BaseCommand):
    help = "Create an API token for the account with this email and print it (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--create-user", action="store_true", help="create the account (unusable password) if missing"
        )
        parser.add_argument("--name", default="", help="a name to tell the token apart")

    def handle(self, *args: Any, email: str, create_user: bool, name: str, **options: Any) -> None:
        email = User.objects.normalize_email(email.strip())
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            if not create_user:
                raise CommandError(f"No account has the email {email}; pass --create-user to create one.")
            user = User.objects.create_user(email=email, password=None)  # unusable password
            # The operator vouches for an account made here: nobody can sign in to it to confirm.
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
            self.stderr.write(f"Created the account {email} (no password: it signs in with tokens only).")
        elif not email_verified(user):
            raise CommandError(
                f"{email} has not confirmed its email address, and tokens of such accounts are refused; "
                "its owner must follow the link in the confirmation email first."
            )
        token, key = api_token_create(user=user, name=name or "command line")
        api_token_created.send(
            sender=ApiToken, token_id=token.pk, request=None, via="command", for_email=email
        )
        self.stdout.write(key)
