#!/bin/sh
# Starts one ecgsite process. The same image serves every role, so scaling out is
# running more containers of a role against the same database, Redis and media volume.
set -e
case "${1:-web}" in
  # daphne, refusing bodies over ECGSITE_MAX_REQUEST_BYTES before reading them (ecgsite/serve.py).
  # No --proxy-headers: daphne would take X-Forwarded-For from anyone. A proxy named in
  # ECGSITE_TRUSTED_PROXIES is believed by the application instead (ecgsite/proxies.py).
  web) exec python -m ecgsite.serve -b 0.0.0.0 -p 8000 ecgsite.asgi:application ;;
  worker) exec celery -A ecgsite worker -Q classify --concurrency "${WORKER_CONCURRENCY:-1}" --loglevel INFO ;;
  beat) exec celery -A ecgsite beat --loglevel INFO --schedule /var/lib/ecgsite/celerybeat-schedule ;;
  # Register the image's shipped models too, so the admin can compare and re-run on them at once.
  migrate) python manage.py migrate --noinput && exec python manage.py register_models ;;
  *) exec "$@" ;;
esac
