"""`Authorization: Token <key>`, checked against the hashed keys in accounts.ApiToken."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken, User
from accounts.tokens import api_token_authenticate
from classifier.api.throttling import TokenFailureLimit

KEYWORD = "Token"


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """request.user is the token's user and request.auth the ApiToken; no header: anonymous."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        # Checked before the key is even read: an address over its failures learns nothing from
        # its next guess, a right one included.
        failures = TokenFailureLimit(request)
        wait = failures.retry_after()
        if wait is not None:
            raise exceptions.Throttled(
                wait=wait, detail="Too many failed token authentications from this address."
            )
        try:
            return self._authenticate_key(header)
        except exceptions.AuthenticationFailed:
            failures.failed()
            raise

    def _authenticate_key(self, header: list[bytes]) -> tuple[User, ApiToken]:
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the header as 'Authorization: Token <key>'.")
        try:
            key = header[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        token = api_token_authenticate(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed("The token is not valid, or it was revoked.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "classifier.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; create keys on the account page (/accounts/tokens/).",
        }
