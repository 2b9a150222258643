"""Service bench: latency, throughput and worker memory of the real stack, end to end.

Usage::

    python -m bench.service [--single-runs 5] [--batch-size 100] [--out bench-results]
    python -m bench.service --api [--batch-size 100]     # through the REST API instead

Needs MariaDB and Redis answering on 127.0.0.1 (``bash .ci/run --services-only`` starts them;
``make bench`` does both). Starts daphne and ONE Celery worker (solo pool) on their own
database ``ecgsite_bench`` (dropped and created again) and Redis db 6 (flushed), signs a user
up over HTTP, opens a real websocket, and measures:

1. cold: upload of one image to its ``job.updated`` succeeded event on a fresh worker
   (includes importing TensorFlow and loading the default model); this also warms the worker.
2. warm latency: the same for one image on the warm worker, ``--single-runs`` times; median.
3. throughput: one batch of ``--batch-size`` images, from the upload POST to
   ``batch.completed``; images per second (upload and validation included).
4. memory: the worker's peak RSS (itself and any children), sampled every 50 ms with psutil,
   and the kernel's high-water mark (VmHWM) at the end.

Prints a table and writes the figures as JSON to ``<out>/service-<UTC time>.json``.

With ``--api`` it measures the REST API instead (``service-api-<UTC time>.json``): a token from
``manage.py create_api_token``, one image through ``POST /api/v1/jobs/`` to warm the worker, then
one ``POST /api/v1/batches/`` of ``--batch-size`` images with a ``callback_url`` on a local
receiver, polling ``GET /api/v1/batches/{id}/`` until every result is in; it reports the upload
request, the time to the last result by polling, and the time to the signed webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.e2e.client import (
    EventStream,
    Message,
    SiteClient,
    is_batch_completed,
    synthetic_images,
    unique_email,
)
from tests.e2e.livestack import REPO_ROOT, LiveStack, StackError
from tests.realstack.mariadb import MariaDB

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "mysql://root@127.0.0.1:3306/ecgsite_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
COLD_TIMEOUT_S = 180.0
RESULT_TIMEOUT_S = 60.0
BATCH_TIMEOUT_S = 1800.0
SAMPLE_EVERY_S = 0.05


@dataclass
class MemorySampler:
    """Samples the RSS of a process and its children on a thread; keeps the peak."""

    pid: int
    peak_bytes: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        process = psutil.Process(self.pid)
        while not self._stop.is_set():
            try:
                members = [process, *process.children(recursive=True)]
                total = sum(member.memory_info().rss for member in members)
            except psutil.Error:
                return
            self.peak_bytes = max(self.peak_bytes, total)
            self.samples += 1
            self._stop.wait(SAMPLE_EVERY_S)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def high_water_mark_bytes(pid: int) -> int | None:
    """The kernel's peak resident set size of ``pid`` (VmHWM), or None where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


async def time_one_image(
    client: SiteClient, events: EventStream, image: tuple[str, bytes], timeout: float
) -> dict[str, float]:
    """Seconds from the upload POST to the websocket's succeeded event for its one job."""
    start = time.monotonic()
    answer = await asyncio.to_thread(client.upload, [image], "bench: one image")
    uploaded = time.monotonic()
    batch_id = int(answer["batch"])

    def succeeded_in_batch(message: Message) -> bool:
        job = message.get("job") or {}
        return (
            message.get("type") == "job.updated"
            and job.get("batch") == batch_id
            and job["status"]
            in (
                "succeeded",
                "failed",
            )
        )

    arrived, message = await events.wait_for(
        succeeded_in_batch, timeout=timeout, what=f"the result of batch {batch_id}"
    )
    if message["job"]["status"] != "succeeded":
        raise AssertionError(f"the bench image failed: {message['job']['error']}")
    return {
        "seconds": arrived - start,
        "upload_seconds": uploaded - start,
        "inference_ms": float(message["job"]["inference_ms"]),
        "model_version": message["job"]["model_version"],
    }


async def time_batch(
    client: SiteClient, events: EventStream, images: Sequence[tuple[str, bytes]]
) -> dict[str, Any]:
    """Seconds from the upload POST to batch.completed for one batch of ``images``."""
    start = time.monotonic()
    answer = await asyncio.to_thread(client.upload, images, f"bench: {len(images)} images")
    uploaded = time.monotonic()
    batch_id = int(answer["batch"])
    arrived, message = await events.wait_for(
        is_batch_completed(batch_id), timeout=BATCH_TIMEOUT_S, what=f"batch.completed of batch {batch_id}"
    )
    counts = message["batch"]["counts"]
    if counts["succeeded"] != len(images):
        raise AssertionError(f"batch {batch_id} finished with {counts}")
    total = arrived - start
    return {
        "images": len(images),
        "seconds": total,
        "upload_seconds": uploaded - start,
        "images_per_second": len(images) / total,
        "images_per_second_after_upload": len(images) / (arrived - uploaded),
    }


async def measure(stack: LiveStack, single_runs: int, batch_size: int) -> dict[str, Any]:
    client = SiteClient(stack.base_url, timeout=600)
    client.sign_up(unique_email("bench"), stack.mail_dir)
    print("rendering synthetic images…", flush=True)
    cold_image, *single_images = synthetic_images(1 + single_runs, first_seed=5000)
    batch_images = synthetic_images(batch_size, first_seed=6000)

    sampler = MemorySampler(stack.worker.pid).start()
    events = await EventStream.open(
        stack.websocket_url, cookie_header=client.cookie_header, origin=stack.origin
    )
    try:
        await events.wait_for(lambda m: m["type"] == "state", timeout=RESULT_TIMEOUT_S, what="state")
        print("cold start: first image on a fresh worker…", flush=True)
        cold = await time_one_image(client, events, cold_image, COLD_TIMEOUT_S)
        warm = []
        for index, image in enumerate(single_images, start=1):
            warm.append(await time_one_image(client, events, image, RESULT_TIMEOUT_S))
            print(f"warm single image {index}/{single_runs}: {warm[-1]['seconds']:.3f} s", flush=True)
        print(f"batch of {batch_size}…", flush=True)
        batch = await time_batch(client, events, batch_images)
    finally:
        await events.close()
        sampler.stop()
        stack.assert_running()
    warm_seconds = [run["seconds"] for run in warm]
    return {
        "model_version": cold["model_version"],
        "cold_first_result_seconds": cold["seconds"],
        "warm_single_image": {
            "median_seconds": statistics.median(warm_seconds),
            "min_seconds": min(warm_seconds),
            "max_seconds": max(warm_seconds),
            "runs_seconds": warm_seconds,
            "median_upload_seconds": statistics.median(run["upload_seconds"] for run in warm),
            "median_inference_ms": statistics.median(run["inference_ms"] for run in warm),
        },
        "batch": batch,
        "worker_memory": {
            "peak_rss_sampled_bytes": sampler.peak_bytes,
            "samples": sampler.samples,
            "vm_hwm_bytes": high_water_mark_bytes(stack.worker.pid),
        },
    }


API_POLL_EVERY_S = 0.25


class _WebhookReceiver:
    """Records when the first POST arrives on 127.0.0.1 (the batch.completed webhook)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.arrived = threading.Event()
        self.arrived_at = 0.0
        self.body = b""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.arrived_at = time.monotonic()
                receiver.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bench-hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _api_wait(session: Any, url: str, done: Any, timeout: float) -> tuple[float, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = session.get(url, timeout=60).json()
        if done(body):
            return time.monotonic(), body
        time.sleep(API_POLL_EVERY_S)
    raise AssertionError(f"no result from {url} within {timeout:.0f} s")


def measure_api(stack: LiveStack, batch_size: int) -> dict[str, Any]:
    """Seconds to submit ``batch_size`` images through the REST API and have every result."""
    import requests

    key = (
        stack.manage("create_api_token", unique_email("bench-api"), "--create-user").strip().splitlines()[-1]
    )
    session = requests.Session()
    session.headers["Authorization"] = f"Token {key}"
    api = f"{stack.base_url}/api/v1"
    print("rendering synthetic images…", flush=True)
    cold_image, *_ = synthetic_images(1, first_seed=5000)
    batch_images = synthetic_images(batch_size, first_seed=6000)

    print("cold start: one image through POST /api/v1/jobs/…", flush=True)
    start = time.monotonic()
    job = session.post(
        f"{api}/jobs/", files={"image": (cold_image[0], cold_image[1], "image/png")}, timeout=600
    )
    job.raise_for_status()
    arrived, body = _api_wait(
        session,
        f"{api}/jobs/{job.json()['id']}/",
        lambda b: b["status"] in ("succeeded", "failed"),
        COLD_TIMEOUT_S,
    )
    if body["status"] != "succeeded":
        raise AssertionError(f"the warm-up image failed: {body['error']}")
    cold_seconds = arrived - start

    receiver = _WebhookReceiver()
    try:
        print(f"batch of {batch_size} through POST /api/v1/batches/…", flush=True)
        files = [("images", (name, content, "image/png")) for name, content in batch_images]
        start = time.monotonic()
        answer = session.post(
            f"{api}/batches/",
            files=files,
            data={"name": f"bench api: {batch_size} images", "callback_url": receiver.url},
            headers={"Idempotency-Key": f"bench-{time.time_ns()}"},
            timeout=600,
        )
        uploaded = time.monotonic()
        if answer.status_code != 201:
            raise AssertionError(f"POST /api/v1/batches/ answered {answer.status_code}: {answer.text[:500]}")
        batch_id = answer.json()["id"]
        arrived, body = _api_wait(
            session, f"{api}/batches/{batch_id}/", lambda b: b["status"] == "completed", BATCH_TIMEOUT_S
        )
        receiver.arrived.wait(timeout=60)
    finally:
        receiver.close()
        session.close()
    if body["counts"]["succeeded"] != batch_size:
        raise AssertionError(f"batch {batch_id} finished with {body['counts']}")
    total = arrived - start
    return {
        "model_version": body["jobs"][0]["model_version"],
        "cold_first_result_seconds": cold_seconds,
        "batch": {
            "images": batch_size,
            "seconds": total,
            "upload_seconds": uploaded - start,
            "images_per_second": batch_size / total,
            "webhook_seconds": (receiver.arrived_at - start) if receiver.arrived.is_set() else None,
            "poll_interval_seconds": API_POLL_EVERY_S,
        },
    }


def print_api_table(results: dict[str, Any]) -> None:
    batch = results["batch"]
    webhook = batch["webhook_seconds"]
    rows = [
        (
            "cold: one image via POST /api/v1/jobs/ on a fresh worker",
            f"{results['cold_first_result_seconds']:.2f} s",
        ),
        (f"{batch['images']} images: POST /api/v1/batches/ request", f"{batch['upload_seconds']:.2f} s"),
        (
            f"{batch['images']} images: POST → all results (poll {batch['poll_interval_seconds']} s)",
            f"{batch['seconds']:.1f} s ({batch['images_per_second']:.2f} images/s)",
        ),
        (
            "  POST → signed batch.completed webhook received",
            f"{webhook:.1f} s" if webhook else "not received",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    info = results["machine"]
    print(
        f"\necgsite API bench, {results['when']}: model {results['model_version']}, one worker "
        f"(solo pool), {info['logical_cpus']} CPUs ({info['cpu']})"
    )
    print("-" * (width + 30))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 30))


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def print_table(results: dict[str, Any]) -> None:
    warm = results["warm_single_image"]
    batch = results["batch"]
    memory = results["worker_memory"]
    hwm = memory["vm_hwm_bytes"]
    rows = [
        ("cold: first image on a fresh worker", f"{results['cold_first_result_seconds']:.2f} s"),
        (
            f"warm: one image, upload → result (median of {len(warm['runs_seconds'])})",
            f"{warm['median_seconds']:.3f} s (min {warm['min_seconds']:.3f}, max {warm['max_seconds']:.3f})",
        ),
        ("  of which the upload request", f"{warm['median_upload_seconds']:.3f} s"),
        ("  of which inference (model's own figure)", f"{warm['median_inference_ms']:.0f} ms"),
        (
            f"throughput: {batch['images']} images, upload → batch.completed",
            f"{batch['images_per_second']:.2f} images/s ({batch['seconds']:.1f} s)",
        ),
        ("  upload request of the batch", f"{batch['upload_seconds']:.2f} s"),
        ("  after the upload returned", f"{batch['images_per_second_after_upload']:.2f} images/s"),
        (
            "worker peak RSS (sampled / VmHWM)",
            f"{memory['peak_rss_sampled_bytes'] / 2**20:.0f} MiB / "
            + (f"{hwm / 2**20:.0f} MiB" if hwm else "n/a"),
        ),
    ]
    width = max(len(name) for name, _ in rows)
    info = results["machine"]
    print(
        f"\necgsite service bench, {results['when']}: model {results['model_version']}, one worker "
        f"(solo pool), {info['logical_cpus']} CPUs ({info['cpu']})"
    )
    print("-" * (width + 40))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 40))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.split("\n")[0])
    parser.add_argument("--single-runs", type=int, default=5, help="warm one-image runs (median)")
    parser.add_argument("--batch-size", type=int, default=100, help="images in the throughput batch")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results", help="folder for the JSON")
    parser.add_argument("--api", action="store_true", help="measure the REST API (see the module docstring)")
    args = parser.parse_args(argv)
    if args.single_runs < 1 or args.batch_size < 1:
        parser.error("--single-runs and --batch-size must be at least 1")

    import redis

    database = MariaDB.from_url(DATABASE_URL)
    try:
        database.connect().close()
        redis.Redis.from_url(REDIS_URL, socket_timeout=5).ping()
    except Exception as error:
        print(
            f"MariaDB ({database.host}:{database.port}) and Redis ({REDIS_URL}) must answer: {error}\n"
            "Start them with `bash .ci/run --services-only` (or run `make bench`).",
            file=sys.stderr,
        )
        return 2
    database.recreate()
    redis.Redis.from_url(REDIS_URL).flushdb()

    when = dt.datetime.now(dt.UTC)
    stack = LiveStack(
        label="ecgsite-bench",
        with_worker=True,
        extra_env={
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "SECRET_KEY": os.urandom(32).hex(),
            # The bench's webhook receiver listens on 127.0.0.1.
            "ECGSITE_WEBHOOK_ALLOW_PRIVATE": "1",
        },
    )
    try:
        print("starting MariaDB-backed daphne and one Celery worker…", flush=True)
        stack.start()
        if args.api:
            results = measure_api(stack, args.batch_size)
        else:
            results = asyncio.run(measure(stack, args.single_runs, args.batch_size))
    except (StackError, AssertionError) as error:
        print(f"bench failed: {error}", file=sys.stderr)
        for name, log in stack.logs(6000).items():
            print(f"----- {name} log -----\n{log}", file=sys.stderr)
        return 1
    finally:
        stack.stop()

    results = {"when": when.isoformat(timespec="seconds"), "machine": machine(), **results}
    (print_api_table if args.api else print_table)(results)
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / f"service{'-api' if args.api else ''}-{when:%Y%m%dT%H%M%SZ}.json"
    out_file.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
