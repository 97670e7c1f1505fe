from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import health
from apps.core import views as core_views
from apps.jobs import metrics as job_metrics
from digits_site import views as site_views

api_v1 = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.jobs.api.urls")),
    path("", include("apps.cluster.api.urls")),
    path("", include("apps.datasets.api.urls")),
    path("", include("apps.mlmodels.api.urls")),
    path("", include("apps.evaluations.api.urls")),
    path("", include("apps.usage.api.urls")),
]

# Plugin apps' urls.py / api/urls.py are mounted by convention under their name.
api_v1 += [
    path(f"plugins/{name}/", include((module, name), namespace=f"api-{name}"))
    for name, module in settings.PLUGINS.urlconfs("api.urls")
]

urlpatterns = [
    path("", site_views.home, name="home"),
    path("plugins/", core_views.plugin_list, name="plugins"),
    *[
        path(f"plugins/{name}/", include((module, name), namespace=name))
        for name, module in settings.PLUGINS.urlconfs("urls")
    ],
    path("accounts/", include("apps.accounts.urls")),
    path("jobs/", include("apps.jobs.urls")),
    path("cluster/", include("apps.cluster.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("models/", include("apps.mlmodels.urls")),
    path("evaluations/", include("apps.evaluations.urls")),
    path("usage/", include("apps.usage.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's setup as a script file: the CSP allows no inline one.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="core/api_docs.html"
        ),
        name="api-docs",
    ),
    path("healthz/live", health.live, name="health-live"),
    path("healthz/ready", health.ready, name="health-ready"),
    path("metrics", job_metrics.view, name="metrics"),
]

handler404 = "apps.core.api.not_found"
handler500 = "apps.core.api.server_error"

admin.site.site_header = "digits administration"
admin.site.site_title = "digits admin"
