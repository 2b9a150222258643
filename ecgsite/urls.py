from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as account_views
from classifier import views as classifier_views
from ecgsite.admin_login import admin_login

admin.site.site_header = "ecgsite administration"
admin.site.site_title = "ecgsite admin"
# One sign-in door, with allauth's failed-login limit and its emailed-code way in (admin_login).
admin.site.login = admin_login

# Unknown /api/ addresses answer problem JSON like the API's own 404s.
handler404 = "classifier.api.problems.not_found"
# Requests Django will not parse (too many files) get our message, not a bare 400.
handler400 = "classifier.views.bad_request"

urlpatterns = [
    path("", classifier_views.home, name="home"),
    path("accounts/tokens/", account_views.api_tokens, name="api-tokens"),
    path("accounts/tokens/<int:token_id>/revoke/", account_views.api_token_revoke, name="api-token-revoke"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("classifier.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its init script as a file (`?script`): the CSP runs no inline script.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="drf_spectacular/swagger_ui_split.html"
        ),
        name="api-docs",
    ),
    path("", include("classifier.urls")),
]
