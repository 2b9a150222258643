"""ASGI entry point: pages, API and websockets in one daphne process."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecgsite.settings")
# Build the Django app first: it sets up the app registry the consumers' imports need.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from classifier.routing import websocket_urlpatterns  # noqa: E402
from ecgsite.origins import SameOriginValidator  # noqa: E402
from ecgsite.proxies import TrustedProxyAsgiMiddleware  # noqa: E402
from ecgsite.request_limits import RequestSizeLimitMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Oversized bodies are refused before Django reads them; proxies are handled in Django's
        # own middleware (ecgsite.middleware.TrustedProxyMiddleware).
        "http": RequestSizeLimitMiddleware(django_asgi_app),
        # The client address and scheme from a trusted proxy first: the origin check compares
        # the scheme and the consumer audits the address.
        "websocket": TrustedProxyAsgiMiddleware(
            AllowedHostsOriginValidator(
                SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)

if settings.ECGSITE_TASK_RUNNER == "embedded":
    from worker import heartbeat
    from worker.embedded import runner

    # This process is the only worker: pick up what a previous run left unfinished, and beat
    # (job leases, the health endpoint's worker) as a worker of every queue.
    runner.recover_unfinished()
    heartbeat.start((settings.CELERY_TASK_DEFAULT_QUEUE, settings.MAINTENANCE_QUEUE))
