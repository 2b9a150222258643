from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.credentials import credentials_changed
from accounts.models import ApiToken, User, WebhookSecret
from accounts.signals import api_token_created, api_token_revoked
from accounts.tokens import api_token_create


class PasswordChangeRevokingTokens(AdminPasswordChangeForm):
    """A password an administrator sets closes the same doors as one the user changes."""

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=commit)
        if commit:
            credentials_changed(user=user, how="set by an administrator")
        return user


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    change_password_form = PasswordChangeRevokingTokens
    ordering = ("email",)
    list_display = ("email", "is_staff", "is_active", "date_joined", "last_login")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made here (the key is shown once, in a message) and revoked, never edited."""

    list_display = ("prefix", "name", "user", "created", "last_used", "revoked")
    list_filter = ("revoked", "created")
    search_fields = ("user__email", "name", "prefix")
    list_select_related = ("user",)
    actions = ("revoke",)
    autocomplete_fields = ("user",)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("user", "name")
        return ("user", "name", "prefix", "created", "last_used", "revoked")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("user", "name", "prefix", "created", "last_used", "revoked")

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            return
        token, key = api_token_create(user=obj.user, name=obj.name)
        api_token_created.send(
            sender=ApiToken, token_id=token.pk, request=request, via="admin", for_email=obj.user.email
        )
        obj.pk = token.pk
        obj.refresh_from_db()
        messages.warning(request, f"The new token's key (shown only this once): {key}")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        active = list(queryset.filter(revoked__isnull=True).values_list("pk", flat=True))
        count = ApiToken.objects.filter(pk__in=active, revoked__isnull=True).update(revoked=timezone.now())
        for token_id in active:
            api_token_revoked.send(sender=ApiToken, token_id=token_id, request=request, via="admin")
        messages.success(request, f"Revoked {count} token(s).")


@admin.register(WebhookSecret)
class WebhookSecretAdmin(admin.ModelAdmin):
    list_display = ("user", "created")
    search_fields = ("user__email",)
    fields = ("user", "created")
    readonly_fields = ("user", "created")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
