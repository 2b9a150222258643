"""allauth's account adapter, with a lockout message that names the door still open."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # The failed-login limit (ACCOUNT_RATE_LIMITS) refuses the right password too, so anyone
        # can close an account's password door for a while; its owner can still come in by an
        # emailed code (the login page's "Send me a sign-in code").
        "too_many_login_attempts": (
            "Too many failed login attempts. Try again later, or sign in with a code sent to your email."
        ),
    }
