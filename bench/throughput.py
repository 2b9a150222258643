"""Throughput four ways on the same images (issue 14): where the service stands beside the seed's
way of classifying and beside its own bare pipeline.

Usage::

    python -m bench.throughput [--images 100] [--data DIR] [--runs abcd] [--doc] [--out bench-results]

In one run, on the same byte strings (the first ``--images`` dev images under ``--data``, default
ECGSITE_DEV_DATA or ../shared/data/khan-ecg, in path order; synthetic pages when there are none):

a. the seed's way: Keras ``model.predict`` on one image per call (the default model's ``.keras``
   file, the inputs its card names), in a child process of its own;
b. the bare pipeline, batched: ``Classifier.read_page`` and ``Classifier.classify`` on chunks of
   16 pages, in a child process of its own;
c. the service end to end with ONE Celery worker (MariaDB, Redis, daphne through
   ``tests.e2e.livestack``; database ``ecgsite_bench`` recreated, Redis db 6 flushed): one
   ``POST /api/v1/batches/`` of all the images, from the moment the POST starts to the last
   result stored (each job's ``finished`` timestamp);
d. the same with TWO workers, each with half the cores (``ECGSITE_TF_THREADS``).

Model loading and worker start-up are not counted; each service worker is warmed with one image
first. For each run it prints images/s, p50 and p95 of the time to each image's result (a, b:
from the start of the run; c, d: from the start of the upload POST) and the peak RSS of each
process that classified (VmHWM), then the ratios c/b, c/a and d/c and the upload request time
beside their targets. The figures go to ``<out>/throughput-<UTC time>.json``; with ``--doc`` they
also rewrite docs/PERFORMANCE.md. ``make bench`` runs it after starting the services.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import mimetypes
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from bench.load import percentile

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC_PATH = REPO_ROOT / "docs" / "PERFORMANCE.md"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "mysql://root@127.0.0.1:3306/ecgsite_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")

RUNS = "abcd"
RUN_TITLES = {
    "a": "seed: Keras model.predict, one image per call",
    "b": "bare pipeline: read_page + classify, 16 per forward pass",
    "c": "service: POST /api/v1/batches/ → results, 1 Celery worker",
    "d": "service: the same, 2 Celery workers",
}
BATCH_CHUNK = 16

# Issue 14's targets.
C_OVER_B = 0.7
C_OVER_A = 5.0
D_OVER_C = 1.7
RSS_LIMIT_BYTES = 10**9
UPLOAD_LIMIT_S = 2.0
UPLOAD_TARGET_IMAGES = 100

CHILD_TIMEOUT_S = 3600.0
WARM_TIMEOUT_S = 180.0
BATCH_TIMEOUT_S = 1800.0
# With sub-second `finished` timestamps polling only says when the batch is done; without them
# each job's result time is when a poll first saw it, so polls come often.
POLL_SLOW_S = 1.0
POLL_FAST_S = 0.1

Image = tuple[str, bytes]


# ---- pure parts: figures, checks, rendering ----


def run_figures(result_seconds: Sequence[float]) -> dict[str, float | int]:
    """Images/s to the last result, and p50/p95 (nearest rank) of the times to each result."""
    if not result_seconds:
        raise ValueError("a run needs at least one result")
    total = max(result_seconds)
    return {
        "images": len(result_seconds),
        "seconds": total,
        "images_per_second": len(result_seconds) / total,
        "p50_seconds": percentile(result_seconds, 50),
        "p95_seconds": percentile(result_seconds, 95),
    }


def seconds_after(timestamps: Iterable[str], start_epoch: float) -> list[float]:
    """Each ISO timestamp (the API's ``finished``) as seconds after ``start_epoch`` (time.time())."""
    return [dt.datetime.fromisoformat(stamp).timestamp() - start_epoch for stamp in timestamps]


def has_subsecond(timestamps: Iterable[str]) -> bool:
    """Whether the database keeps fractions of a second (a whole-second column gives none)."""
    return any(dt.datetime.fromisoformat(stamp).microsecond for stamp in timestamps)


def ratio(runs: Mapping[str, Mapping[str, Any]], top: str, bottom: str) -> float | None:
    """Run ``top``'s images/s over run ``bottom``'s; None when either was not measured."""
    if top not in runs or bottom not in runs:
        return None
    return float(runs[top]["images_per_second"]) / float(runs[bottom]["images_per_second"])


def peak_rss(run: Mapping[str, Any]) -> list[int]:
    """Each classifying process's peak RSS: the larger of VmHWM and the sampled peak."""
    hwm = run.get("peak_rss_bytes") or []
    sampled = run.get("peak_rss_sampled_bytes") or [0] * len(hwm)
    return [max(a or 0, b or 0) for a, b in zip(hwm, sampled, strict=True)]


def checks(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's targets beside the measured figures; ``holds`` is None where one does not apply
    (a run missing, one core, a batch of other than 100 images)."""
    runs = figures["runs"]
    rows = []
    for top, bottom, target in (("c", "b", C_OVER_B), ("c", "a", C_OVER_A), ("d", "c", D_OVER_C)):
        value = ratio(runs, top, bottom)
        shown = "not measured" if value is None else f"{value:.2f}"
        holds = None if value is None else value >= target
        note = ""
        if (top, bottom) == ("d", "c") and int(figures["machine"].get("cores") or 1) < 2:
            holds, note = None, "one core: not expected"
        rows.append(
            {"name": f"{top} / {bottom} (images/s)", "value": value, "shown": shown}
            | {"target": f"≥ {target:g}", "holds": holds, "note": note}
        )
    worker_peaks = [peak for name in ("c", "d") if name in runs for peak in peak_rss(runs[name])]
    rows.append(
        {
            "name": "peak RSS per worker (c, d)",
            "value": max(worker_peaks) if worker_peaks else None,
            "shown": (
                f"{max(worker_peaks) / 2**20:.0f} MiB = {max(worker_peaks) / 10**6:.0f} MB (largest)"
                if worker_peaks
                else "not measured"
            ),
            "target": f"≤ {RSS_LIMIT_BYTES / 10**9:g} GB ({RSS_LIMIT_BYTES / 2**20:.0f} MiB)",
            "holds": all(peak <= RSS_LIMIT_BYTES for peak in worker_peaks) if worker_peaks else None,
            "note": "",
        }
    )
    uploads = {name: runs[name]["upload_seconds"] for name in ("c", "d") if name in runs}
    images = int(figures["images"]["count"])
    applies = images == UPLOAD_TARGET_IMAGES
    rows.append(
        {
            "name": f"upload request, {images} images",
            "value": max(uploads.values()) if uploads else None,
            "shown": ", ".join(f"{name}: {seconds:.2f} s" for name, seconds in uploads.items())
            or "not measured",
            "target": f"< {UPLOAD_LIMIT_S:g} s for {UPLOAD_TARGET_IMAGES} images",
            "holds": all(s < UPLOAD_LIMIT_S for s in uploads.values()) if uploads and applies else None,
            "note": "" if applies else f"target is for {UPLOAD_TARGET_IMAGES} images",
        }
    )
    return rows


def _mib(values: Sequence[int]) -> str:
    return " + ".join(f"{value / 2**20:.0f}" for value in values) + " MiB" if values else "—"


def _holds(row: Mapping[str, Any]) -> str:
    word = {True: "yes", False: "NO", None: "n/a"}[row["holds"]]
    return f"{word} ({row['note']})" if row["note"] else word


def table_rows(figures: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """One row per measured run: name, images/s, p50, p95, peak RSS per classifying process."""
    rows = []
    for name in RUNS:
        run = figures["runs"].get(name)
        if run is None:
            continue
        rows.append(
            (
                f"{name}. {RUN_TITLES[name]}",
                f"{run['images_per_second']:.2f}",
                f"{run['p50_seconds']:.1f}",
                f"{run['p95_seconds']:.1f}",
                _mib(peak_rss(run)),
            )
        )
    return rows


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _service_notes(figures: Mapping[str, Any]) -> list[str]:
    """Where time goes in c and d, from the jobs' own figures."""
    notes = []
    for name in ("c", "d"):
        run = figures["runs"].get(name)
        if run is None:
            continue
        threads = _count(run["tf_threads"], "TensorFlow thread")
        notes.append(
            f"{name}: {_count(run['workers'], 'worker')}, {threads} each; "
            f"upload request {run['upload_seconds']:.2f} s; first result "
            f"{run['first_result_seconds']:.1f} s after the POST started; from the first claim to the "
            f"last result {run['worker_span_seconds']:.1f} s, of which {run['inference_seconds']:.1f} s "
            "is the jobs' own inference_ms (page decoding and forward pass, summed over the workers); "
            f"result times from {run['timing_source']}"
        )
    return notes


HEADERS = ("run", "images/s", "p50 s", "p95 s", "peak RSS per worker")


def format_text(figures: Mapping[str, Any]) -> str:
    """The console table."""
    from ml.cards import machine_text

    rows = table_rows(figures)
    widths = [max(len(row[i]) for row in [HEADERS, *rows]) for i in range(len(HEADERS))]
    line = "-" * (sum(widths) + 2 * (len(widths) - 1))

    def cells(row: Sequence[str]) -> str:
        rest = (f"{cell:>{width}}" for cell, width in zip(row[1:], widths[1:], strict=True))
        return "  ".join([f"{row[0]:<{widths[0]}}", *rest])

    out = [
        f"ecgsite throughput, {figures['when']}: model {figures['model']}, {figures['images']['source']}",
        f"machine: {machine_text(figures['machine'])}",
        line,
        cells(HEADERS),
        line,
        *(cells(row) for row in rows),
        line,
    ]
    for row in checks(figures):
        out.append(f"{row['name']:<34} {row['shown']:<28} target {row['target']:<26} {_holds(row)}")
    out += _service_notes(figures)
    return "\n".join(out)


def render_markdown(figures: Mapping[str, Any]) -> str:
    """docs/PERFORMANCE.md from one run's figures (nothing in it that the run did not measure)."""
    from ml.cards import machine_text

    count = figures["images"]["count"]
    lines = [
        "# Performance",
        "",
        "Generated by `make bench` (`python -m bench.throughput --doc`, after `bash .ci/run "
        "--services-only` starts MariaDB and Redis) from one run; do not edit by hand. Every row "
        f"classifies the same {count} images ({figures['images']['source']}) with model "
        f"`{figures['model']}`:",
        "",
        "- **a**: the seed's way, Keras `model.predict` on one image per call;",
        f"- **b**: the bare pipeline, `Classifier.read_page` and `Classifier.classify` on chunks of "
        f"{BATCH_CHUNK} pages in one process (model load not counted);",
        "- **c**: the service end to end: one `POST /api/v1/batches/` of all the images to daphne, "
        "one Celery worker (solo pool, all cores), MariaDB and Redis on loopback, to the last "
        "result stored;",
        "- **d**: the same with two workers, each with half the cores (`ECGSITE_TF_THREADS`).",
        "",
        "p50 and p95 are of the time to each image's result: from the start of the run (a, b) or "
        "from the start of the upload POST (c, d). Peak RSS is each classifying process's own "
        "(VmHWM, and for the workers the larger of it and a 50 ms psutil sample). Model loading "
        "and worker start-up are not counted; each worker classified one image before the clock "
        "started.",
        "",
        f"Measured {figures['when']} on {machine_text(figures['machine'])}.",
        "",
        "| run | images/s | p50 (s) | p95 (s) | peak RSS per worker |",
        "|---|---:|---:|---:|---:|",
        *(f"| {' | '.join(row)} |" for row in table_rows(figures)),
        "",
        "| check | measured | target | holds |",
        "|---|---|---|---|",
        *(f"| {row['name']} | {row['shown']} | {row['target']} | {_holds(row)} |" for row in checks(figures)),
        "",
    ]
    notes = _service_notes(figures)
    if notes:
        lines += ["Where the service's time goes:", "", *(f"- {note}" for note in notes), ""]
    lines += [f"The figures as JSON: `bench-results/{figures['file_name']}` (not in the repository).", ""]
    return "\n".join(lines)


# ---- the images ----


def content_type(name: str) -> str:
    """What an upload of ``name`` declares: its real type (JPEG → image/jpeg)."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def write_images(stream: BinaryIO, images: Sequence[Image]) -> None:
    """Hand images to a child process: a count, then each name and its bytes, length-prefixed."""
    stream.write(struct.pack("<I", len(images)))
    for name, data in images:
        encoded = name.encode()
        stream.write(struct.pack("<IQ", len(encoded), len(data)) + encoded + data)


def read_images(stream: BinaryIO) -> list[Image]:
    """The images ``write_images`` wrote."""

    def exactly(size: int) -> bytes:
        data = stream.read(size)
        if len(data) != size:
            raise EOFError(f"expected {size} bytes of images, got {len(data)}")
        return data

    (count,) = struct.unpack("<I", exactly(4))
    images = []
    for _ in range(count):
        name_size, data_size = struct.unpack("<IQ", exactly(12))
        images.append((exactly(name_size).decode(), exactly(data_size)))
    return images


def load_images(data_dir: Path, count: int) -> tuple[list[Image], str]:
    """The first ``count`` dev images under ``data_dir`` in path order, else synthetic pages."""
    from ml.digitiser_report import page_files

    files = page_files(data_dir, count)
    if files:
        return [(path.name, path.read_bytes()) for path in files], f"the first {len(files)} dev images"
    from tests.e2e.client import synthetic_images

    return synthetic_images(count, first_seed=6000), f"{count} synthetic pages (no images in {data_dir})"


# ---- a and b: one child process each ----


def bare_seed(images: Sequence[Image], model_path: Path) -> dict[str, Any]:
    """Run a: Keras ``model.predict`` on one image per call, as the seed classified."""
    from ml import representations
    from ml.device import configure_tensorflow
    from ml.models import read_card

    configure_tensorflow()
    import keras

    representation = read_card(model_path).get("input", {}).get("representation", "page")
    model = keras.models.load_model(model_path, compile=False)

    def predict(inputs: dict[str, Any]) -> Any:
        return model.predict(next(iter(inputs.values())) if len(inputs) == 1 else inputs, verbose=0)

    predict(representations.zeros(representation, 1))  # builds predict's function: start-up
    start = time.perf_counter()
    seconds = []
    for _, data in images:
        predict(representations.stack([representations.inputs_from_bytes(data, representation)]))
        seconds.append(time.perf_counter() - start)
    return {"result_seconds": seconds, "representation": representation}


def bare_pipeline(images: Sequence[Image], model_path: Path) -> dict[str, Any]:
    """Run b: the worker's reading and forward pass, batched, without the service around it."""
    from ml.inference import Classifier

    classifier = Classifier.load(model_path)  # loads, self-tests and so warms the model
    start = time.perf_counter()
    seconds: list[float] = []
    for first in range(0, len(images), BATCH_CHUNK):
        chunk = images[first : first + BATCH_CHUNK]
        classifier.classify([classifier.read_page(data) for _, data in chunk])
        seconds += [time.perf_counter() - start] * len(chunk)
    return {"result_seconds": seconds, "representation": classifier.representation}


BARE_RUNS: dict[str, Callable[[Sequence[Image], Path], dict[str, Any]]] = {"a": bare_seed, "b": bare_pipeline}


def bare_main(kind: str, model_path: Path) -> int:
    """The child's side: images on stdin, one line of JSON on stdout with its own VmHWM."""
    from bench.service import high_water_mark_bytes

    images = read_images(sys.stdin.buffer)
    result = BARE_RUNS[kind](images, model_path)
    result["peak_rss_bytes"] = [high_water_mark_bytes(os.getpid())]
    print(json.dumps(result))
    return 0


def run_bare(kind: str, images: Sequence[Image], model_path: Path) -> dict[str, Any]:
    """Run a or b in a child process of its own, so its memory is its own."""
    command = [sys.executable, "-m", "bench.throughput", "--bare", kind, "--model", str(model_path)]
    child = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None
    write_images(child.stdin, images)
    child.stdin.close()
    stdout = child.stdout.read() if child.stdout else b""
    if child.wait(timeout=CHILD_TIMEOUT_S) != 0:
        raise RuntimeError(f"run {kind} exited {child.returncode}")
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return run_figures(result.pop("result_seconds")) | result


# ---- c and d: the service ----


def _finished_jobs(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [job for job in body["jobs"] if job["status"] in ("succeeded", "failed")]


def _succeeded_tasks(worker: Any) -> int:
    # Celery logs "Task <name>[<id>] succeeded in <s>s" for each task it ran.
    return int(worker.log(2_000_000).count("] succeeded in "))


def _wait_job(session: Any, url: str) -> Mapping[str, Any]:
    deadline = time.monotonic() + WARM_TIMEOUT_S
    while time.monotonic() < deadline:
        body: Mapping[str, Any] = session.get(url, timeout=60).json()
        if body["status"] in ("succeeded", "failed"):
            if body["status"] != "succeeded":
                raise AssertionError(f"the warm-up image failed: {body['error']}")
            return body
        time.sleep(POLL_FAST_S)
    raise AssertionError(f"no result from {url} within {WARM_TIMEOUT_S:.0f} s")


def warm_workers(session: Any, api: str, images: Sequence[Image], workers: Sequence[Any]) -> list[str]:
    """One image at a time through POST /api/v1/jobs/ until every worker has classified one;
    the warm-up jobs' ``finished`` timestamps (to learn the database's resolution)."""
    finished = []
    for attempt in range(6 * len(workers)):
        if all(_succeeded_tasks(worker) >= 1 for worker in workers):
            return finished
        name, data = images[attempt % len(images)]
        answer = session.post(f"{api}/jobs/", files={"image": (name, data, content_type(name))}, timeout=600)
        answer.raise_for_status()
        finished.append(_wait_job(session, f"{api}/jobs/{answer.json()['id']}/")["finished"])
        time.sleep(0.5)  # Celery logs the task's success just after the job is stored
    if not all(_succeeded_tasks(worker) >= 1 for worker in workers):
        raise AssertionError(f"{len(finished)} warm-up images did not reach every worker")
    return finished


def time_batch(session: Any, api: str, images: Sequence[Image], subsecond: bool) -> dict[str, Any]:
    """One POST /api/v1/batches/ of every image; each result's time after the POST started."""
    files = [("images", (name, data, content_type(name))) for name, data in images]
    start_epoch, start = time.time(), time.monotonic()
    answer = session.post(
        f"{api}/batches/",
        files=files,
        data={"name": f"bench throughput: {len(images)} images"},
        headers={"Idempotency-Key": f"bench-throughput-{time.time_ns()}"},
        timeout=600,
    )
    upload_seconds = time.monotonic() - start
    if answer.status_code != 201:
        raise AssertionError(f"POST /api/v1/batches/ answered {answer.status_code}: {answer.text[:500]}")
    url = f"{api}/batches/{answer.json()['id']}/"
    seen: dict[int, float] = {}  # job id → when a poll first saw its result
    deadline = start + BATCH_TIMEOUT_S
    while True:
        body = session.get(url, timeout=60).json()
        now = time.monotonic()
        for job in _finished_jobs(body):
            seen.setdefault(job["id"], now - start)
        if body["status"] == "completed":
            break
        if now > deadline:
            raise AssertionError(f"batch not completed within {BATCH_TIMEOUT_S:.0f} s: {body['counts']}")
        time.sleep(POLL_SLOW_S if subsecond else POLL_FAST_S)
    jobs = body["jobs"]
    if subsecond:
        result_seconds = seconds_after((job["finished"] for job in jobs), start_epoch)
        source = "the jobs' finished timestamps in the database"
    else:
        result_seconds = [seen[job["id"]] for job in jobs]
        source = f"when a poll every {POLL_FAST_S} s first saw each result (whole-second timestamps)"
    started = seconds_after((job["started"] for job in jobs if job["started"]), start_epoch)
    return run_figures(result_seconds) | {
        "upload_seconds": upload_seconds,
        "first_result_seconds": min(result_seconds),
        "worker_span_seconds": max(result_seconds) - min(started),
        "job_ids": [job["id"] for job in jobs],
        "counts": body["counts"],
        "timing_source": source,
        "model_version": next((job["model_version"] for job in jobs if job["model_version"]), None),
    }


def inference_seconds(database: Any, job_ids: Sequence[int]) -> float:
    """The jobs' own inference_ms (page reading and their share of the forward pass), summed;
    the API does not show it, the database has it."""
    marks = ", ".join(["%s"] * len(job_ids))
    rows = database.query(
        f"SELECT COALESCE(SUM(inference_ms), 0) FROM classifier_prediction WHERE job_id IN ({marks})",
        tuple(job_ids),
    )
    return float(rows[0][0]) / 1000


def service_run(
    stack: Any, session: Any, api: str, images: Sequence[Image], workers: int, threads: int, database: Any
) -> dict[str, Any]:
    """Start ``workers`` workers with ``threads`` TensorFlow threads each, warm them, time the
    batch, read each worker's peak RSS, and stop them."""
    from bench.service import MemorySampler, high_water_mark_bytes

    env = {"ECGSITE_TF_THREADS": str(threads)}
    started = []
    samplers = []
    try:
        for _ in range(workers):
            print(f"  starting a worker ({threads} TensorFlow threads)…", flush=True)
            started.append(stack.start_worker(env=env))
            samplers.append(MemorySampler(started[-1].pid).start())
        print("  warming every worker with one image…", flush=True)
        warm = warm_workers(session, api, images, started)
        print(f"  timing one POST of {len(images)} images…", flush=True)
        result = time_batch(session, api, images, has_subsecond(warm))
        hwm = [high_water_mark_bytes(worker.pid) for worker in started]
    finally:
        for sampler in samplers:
            sampler.stop()
        for worker in started:
            worker.stop()
    if result["counts"]["succeeded"] != len(images):
        raise AssertionError(f"the batch finished with {result['counts']}")
    return result | {
        "inference_seconds": inference_seconds(database, result.pop("job_ids")),
        "workers": workers,
        "tf_threads": threads,
        "peak_rss_bytes": hwm,
        "peak_rss_sampled_bytes": [sampler.peak_bytes for sampler in samplers],
        "warm_up_images": len(warm),
    }


def service_runs(images: Sequence[Image], runs: str, cores: int) -> dict[str, dict[str, Any]]:
    """Runs c and d on one daphne, MariaDB database ``ecgsite_bench`` and Redis db 6."""
    import redis
    import requests

    from tests.e2e.client import unique_email
    from tests.e2e.livestack import LiveStack
    from tests.realstack.mariadb import MariaDB

    database = MariaDB.from_url(DATABASE_URL)
    try:
        database.connect().close()
        redis.Redis.from_url(REDIS_URL, socket_timeout=5).ping()
    except Exception as error:
        raise RuntimeError(
            f"MariaDB ({database.host}:{database.port}) and Redis ({REDIS_URL}) must answer ({error}); "
            "start them with `bash .ci/run --services-only` (or run `make bench`)"
        ) from error
    database.recreate()
    redis.Redis.from_url(REDIS_URL).flushdb()
    stack = LiveStack(
        label="ecgsite-bench",
        with_worker=False,
        extra_env={
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "SECRET_KEY": os.urandom(32).hex(),
            # The bench's own client only: whole-second timestamps make it poll every 0.1 s.
            "ECGSITE_API_RATE": "100000/min",
        },
    )
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy
    results = {}
    try:
        print("starting daphne on MariaDB and Redis…", flush=True)
        stack.start()
        output = stack.manage("create_api_token", unique_email("bench-throughput"), "--create-user")
        session.headers["Authorization"] = f"Token {output.strip().splitlines()[-1]}"
        api = f"{stack.base_url}/api/v1"
        if "c" in runs:
            print(f"run c: {RUN_TITLES['c']}", flush=True)
            results["c"] = service_run(stack, session, api, images, 1, cores, database)
        if "d" in runs:
            print(f"run d: {RUN_TITLES['d']}", flush=True)
            results["d"] = service_run(stack, session, api, images, 2, max(1, cores // 2), database)
    except Exception:
        for name, log in stack.logs(6000).items():
            print(f"----- {name} log -----\n{log}", file=sys.stderr)
        raise
    finally:
        session.close()
        stack.stop()
    return results


def measure(images: Sequence[Image], source: str, runs: str, model_path: Path) -> dict[str, Any]:
    """Every run asked for, on the same images; the figures as one dict."""
    from ml.device import machine_description, usable_cores
    from ml.models import read_card

    when = dt.datetime.now(dt.UTC)
    figures: dict[str, Any] = {
        "when": when.isoformat(timespec="seconds"),
        "file_name": f"throughput-{when:%Y%m%dT%H%M%SZ}.json",
        "machine": machine_description(),
        "model": str(read_card(model_path).get("name", model_path.stem)),
        "images": {"count": len(images), "source": source, "bytes": sum(len(data) for _, data in images)},
        "runs": {},
    }
    for kind in "ab":
        if kind in runs:
            print(f"run {kind}: {RUN_TITLES[kind]} ({len(images)} images)…", flush=True)
            figures["runs"][kind] = run_bare(kind, images, model_path)
    if "c" in runs or "d" in runs:
        figures["runs"] |= service_runs(images, runs, usable_cores())
    figures["checks"] = checks(figures)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    from ml.digitiser_report import default_data_dir
    from ml.models import default_model_path

    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100, help="how many images (default 100)")
    parser.add_argument("--data", type=Path, default=None, help="folder of dev images")
    parser.add_argument("--runs", default=RUNS, help="which of a, b, c, d to run (default: all)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results", help="folder for the JSON")
    parser.add_argument("--doc", action="store_true", help=f"rewrite {DOC_PATH.relative_to(REPO_ROOT)}")
    parser.add_argument("--model", type=Path, default=None, help="a .keras file (default: the default model)")
    parser.add_argument("--bare", choices=sorted(BARE_RUNS), help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args(argv)
    model_path = args.model or default_model_path()
    if args.bare:
        return bare_main(args.bare, model_path)
    if args.images < 1 or not set(args.runs) <= set(RUNS) or not args.runs:
        parser.error("--images must be at least 1 and --runs letters from 'abcd'")
    if args.doc and args.runs != RUNS:
        parser.error("--doc needs all four runs")

    images, source = load_images(args.data or default_data_dir(), args.images)
    try:
        figures = measure(images, source, args.runs, model_path)
    except Exception as error:
        print(f"bench failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print()
    print(format_text(figures))
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / figures["file_name"]
    out_file.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_file}")
    if args.doc:
        DOC_PATH.write_text(render_markdown(figures), encoding="utf-8")
        print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
