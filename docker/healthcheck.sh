#!/bin/sh
# The health check of an ecgsite container: docker/healthcheck.sh [web | web-ready | worker | beat]
# Each image's HEALTHCHECK runs it without an argument: the role is then told from the command
# line of PID 1, the process docker/entrypoint.sh exec'd (so the worker-cpu image checks beat
# when it runs beat). Kubernetes' exec probes (docker/k8s/) name the role. Exit 0: healthy.
#
# web        GET /health/live/ answers 200: the process serves requests; no dependency touched,
#            so a database outage does not get every web container restarted.
# web-ready  GET /health/?check=database,broker,cache answers 200: it can take work now (the
#            workers are left out, so that none running does not take the site out of service).
# worker     `python -m worker.alive`: a process of this worker wrote its heartbeat file
#            (ECGSITE_WORKER_HEARTBEAT_FILE) within 30 s, and its model is loaded and proven.
#            Classify and maintenance workers alike.
# beat       beat's schedule file was written within ECGSITE_BEAT_MAX_AGE_S (600 s). Beat has no
#            heartbeat of its own; Celery's persistent scheduler writes this file after sending a
#            due task, at most every 3 minutes (its sync_every), and our schedule has a task due
#            every few seconds (the reaper), so a fresh file says beat's loop is turning: it was
#            not stuck, nor blocked on a send, for 10 minutes. It does not say the broker took the
#            tasks (a failed send is logged and written too); the workers' health and
#            `ecgsite_queue_depth` show that.
# The web checks use Python's urllib: the slim images have no curl. /health/ and /health/live/
# answer before Django's host check and https redirect (ecgsite.middleware), so plain HTTP to
# 127.0.0.1 is enough.
# For tests/deploy: ECGSITE_HEALTHCHECK_PORT (8000, where the entrypoint's daphne listens) and
# ECGSITE_HEALTHCHECK_CMDLINE (/proc/1/cmdline, the command line the role is told from).
set -eu

role="${1:-}"
if [ -z "$role" ]; then
  process="$(tr '\0' ' ' <"${ECGSITE_HEALTHCHECK_CMDLINE:-/proc/1/cmdline}" 2>/dev/null || true)"
  case " $process " in
    *" ecgsite.serve "*) role=web ;;
    *" celery "*" beat "* | *"/celery "*" beat "*) role=beat ;;
    *" celery "*" worker "* | *"/celery "*" worker "*) role=worker ;;
    # migrate, a shell, a one-off command: nothing long-running to check.
    *) exit 0 ;;
  esac
fi

case "$role" in
  web | web-ready)
    if [ "$role" = web ]; then path=/health/live/; else path='/health/?check=database,broker,cache'; fi
    exec python - "http://127.0.0.1:${ECGSITE_HEALTHCHECK_PORT:-8000}$path" <<'PYTHON'
import sys
import urllib.error
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is reported as the answer it is, not followed


url = sys.argv[1]
try:
    with urllib.request.build_opener(NoRedirect).open(url, timeout=5) as response:
        status = response.status
except urllib.error.HTTPError as error:
    status = error.code
except OSError as error:
    sys.exit(f"web not healthy: {url} did not answer: {error}")
if status != 200:
    sys.exit(f"web not healthy: {url} answered {status}")
PYTHON
    ;;
  worker)
    cd "$(dirname "$0")/.."  # the application's root, where the worker package is
    exec python -m worker.alive
    ;;
  beat)
    max_age="${ECGSITE_BEAT_MAX_AGE_S:-600}"
    newest=0
    # One file or several, by the dbm module Python has (celerybeat-schedule, .db, .dat/.dir).
    for file in "${ECGSITE_VAR_DIR:-/var/lib/ecgsite}"/celerybeat-schedule*; do
      [ -e "$file" ] || continue
      written="$(stat -c %Y "$file")"
      if [ "$written" -gt "$newest" ]; then newest="$written"; fi
    done
    if [ "$newest" -eq 0 ]; then
      echo "beat not healthy: no schedule file in ${ECGSITE_VAR_DIR:-/var/lib/ecgsite}" >&2
      exit 1
    fi
    age=$(($(date +%s) - newest))
    if [ "$age" -gt "$max_age" ]; then
      echo "beat not healthy: its schedule was last written ${age} s ago (more than ${max_age} s)" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 [web | web-ready | worker | beat]" >&2
    exit 2
    ;;
esac
