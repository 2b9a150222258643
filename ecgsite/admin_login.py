"""The admin has no sign-in form of its own: its login sends visitors to allauth's.

One door means one failed-login limit (allauth's "login_failed", per address and per account)
and the same way in by an emailed code when that limit has closed the password door. Django's
own admin form would check passwords with no limit at all.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def _next_url(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if safe else reverse("admin:index")


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponseRedirect:
    """Installed as `admin.site.login` (ecgsite/urls.py). Credentials posted here are ignored."""
    next_url = _next_url(request)
    if admin.site.has_permission(request):
        return HttpResponseRedirect(next_url)
    if request.user.is_authenticated:
        # Signed in, but not as staff: sending them to the sign-in page would send them back here.
        raise PermissionDenied("This account may not use the admin.")
    return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")
