#!/bin/sh
# Starts one ecgsite process. The same image serves every role, so scaling out is
# running more containers of a role against the same database, Redis and media volume.
set -e
case "${1:-web}" in
  web) exec daphne -b 0.0.0.0 -p 8000 --proxy-headers ecgsite.asgi:application ;;
  worker) exec celery -A ecgsite worker -Q classify --concurrency "${WORKER_CONCURRENCY:-1}" --loglevel INFO ;;
  beat) exec celery -A ecgsite beat --loglevel INFO --schedule /var/lib/ecgsite/celerybeat-schedule ;;
  # Register the image's shipped models too, so the admin can compare and re-run on them at once.
  migrate) python manage.py migrate --noinput && exec python manage.py register_models ;;
  *) exec "$@" ;;
esac
