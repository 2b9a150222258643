"""The account page for API access: tokens (created, listed, revoked) and the webhook secret."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import tokens
from accounts.models import ApiToken
from accounts.signals import api_token_created, api_token_revoked


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """GET: the user's tokens and webhook secret. POST: a new token (its key shown once), or
    `action=rotate-secret` for a new webhook secret."""
    new_key = None
    if request.method == "POST":
        if request.POST.get("action") == "rotate-secret":
            tokens.webhook_secret_rotate(user=request.user)
            messages.success(request, "A new webhook secret is in use; update your receivers.")
            return redirect("api-tokens")
        token, new_key = tokens.api_token_create(user=request.user, name=request.POST.get("name", ""))
        api_token_created.send(sender=ApiToken, token_id=token.pk, request=request)
    context = {
        "tokens": tokens.api_tokens_for_user(user=request.user),
        "new_key": new_key,
        "webhook_secret": tokens.webhook_secret_for_user(user=request.user),
    }
    response = render(request, "accounts/api_tokens.html", context, status=201 if new_key else 200)
    response["Cache-Control"] = "no-store"  # the page may show a key once
    return response


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    revoked = tokens.api_token_revoke(user=request.user, token_id=token_id)
    api_token_revoked.send(sender=ApiToken, token_id=token_id, request=request, revoked=revoked)
    if revoked:
        messages.success(request, "The token was revoked.")
    else:
        messages.error(request, "No such active token.")
    return redirect("api-tokens")
