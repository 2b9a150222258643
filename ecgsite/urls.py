from django.contrib import admin
from django.urls import include, path

from classifier import views as classifier_views

admin.site.site_header = "ecgsite administration"
admin.site.site_title = "ecgsite admin"

urlpatterns = [
    path("", classifier_views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("classifier.urls")),
]
