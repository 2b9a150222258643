#!/bin/sh
# Starts one ecgsite process. Every image (docker/Dockerfile) serves every role its code can run,
# so scaling out is running more containers of a role against the same database, Redis and media
# storage. Each role execs its process, so it is PID 1 and gets SIGTERM itself: a Celery worker
# then finishes its running task before it exits (warm shutdown), given the time to.
set -e
case "${1:-web}" in
  # daphne, refusing bodies over ECGSITE_MAX_REQUEST_BYTES before reading them (ecgsite/serve.py).
  # No --proxy-headers: daphne would take X-Forwarded-For from anyone. A proxy named in
  # ECGSITE_TRUSTED_PROXIES is believed by the application instead (ecgsite/proxies.py).
  web) exec python -m ecgsite.serve -b 0.0.0.0 -p 8000 ecgsite.asgi:application ;;
  # Classification only: one process per CPU worker or GPU (WORKER_CONCURRENCY).
  worker) exec celery -A ecgsite worker -Q classify --concurrency "${WORKER_CONCURRENCY:-1}" --loglevel INFO ;;
  # Webhook deliveries, webhook sweeps and the reaper, on their own queue, so that a long
  # classification backlog never delays them (and a slow webhook never holds a model).
  worker-maintenance) exec celery -A ecgsite worker -Q maintenance --concurrency "${MAINTENANCE_CONCURRENCY:-2}" --loglevel INFO ;;
  # Exactly one, ever: two would send every periodic task twice.
  beat) exec celery -A ecgsite beat --loglevel INFO --schedule "${ECGSITE_VAR_DIR:-/var/lib/ecgsite}/celerybeat-schedule" ;;
  # Register the image's shipped models too, so the admin can compare and re-run on them at once.
  migrate) python manage.py migrate --noinput && exec python manage.py register_models ;;
  *) exec "$@" ;;
esac
