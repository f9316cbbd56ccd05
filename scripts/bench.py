"""End-to-end and model-only timings of PneumoWeb, from one run.

Starts a live web server (gunicorn) and one Celery worker against PostgreSQL and Redis, submits the full-resolution
chest X-rays of PNEUMO_SAMPLE_DATA through the REST API, and measures upload → completed (p50, p95) and studies per
minute with one worker. Then it measures recovery from a broker that lost every message: with the worker frozen,
it queues --flush-count more studies, FLUSHDB's the broker, lets the worker go on, and times FLUSHDB → all completed
(the reconciler re-sends queued studies after PNEUMO_REQUEUE_QUEUED_SECONDS, default delays). Then the PACS round
trip (scripts/bench_pacs.py): a real Orthanc sends --pacs-count single-image studies to the DICOM listener and the
clock runs until the SR and the Grad-CAM image are back in Orthanc. Finally, in this
process, it loads the same model artifact and times the bare model forward pass + Grad-CAM on the same images, and
prints the ratio between the two.

Usage: make bench  (or: python scripts/bench.py --count 40 --image-size 384 --model-dir PATH)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

import redis
import requests
from bench_pacs import run_pacs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = (len(ordered) - 1) * q
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urllib.parse.urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def sample_images(count: int) -> list[Path]:
    root = os.environ.get("PNEUMO_SAMPLE_DATA")
    if not root:
        raise SystemExit("Set PNEUMO_SAMPLE_DATA (for example ../shared/data): the bench uses real full-res X-rays.")
    files = sorted((Path(root) / "chest_xray_fullres" / "train").glob("*/*.jpeg"))
    if not files:
        raise SystemExit(f"No full-resolution images under {root}/chest_xray_fullres/train")
    # Alternate classes so a short run still sees both.
    normal = [f for f in files if f.parent.name == "NORMAL"]
    pneumonia = [f for f in files if f.parent.name == "PNEUMONIA"]
    mixed = [f for pair in zip(normal, pneumonia, strict=False) for f in pair]
    return mixed[:count]


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Api:
    """The REST API of the live server, as an integrator uses it."""

    def __init__(self, token: str, port: int, log_dir: Path) -> None:
        self.base, self.log_dir = f"http://127.0.0.1:{port}", log_dir
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def submit(self, path: Path) -> str:
        with path.open("rb") as handle:
            files = {"file": (path.name, handle)}
            response = self.session.post(f"{self.base}/api/v1/studies/", files=files, timeout=60)
        response.raise_for_status()
        return str(response.json()["id"])

    def wait_all(self, ids: list[str], timeout: float) -> list[dict]:
        deadline, done = time.monotonic() + timeout, {}
        while time.monotonic() < deadline and len(done) < len(ids):
            for study_id in ids:
                if study_id in done:
                    continue
                body = self.session.get(f"{self.base}/api/v1/studies/{study_id}/", timeout=30).json()
                if body["status"] in ("completed", "failed"):
                    done[study_id] = body
            time.sleep(0.5)
        if len(done) < len(ids):
            raise SystemExit(f"only {len(done)}/{len(ids)} studies finished; see logs in {self.log_dir}")
        return [done[i] for i in ids]


def run_live(api: Api, warm_up: Path, images: list[Path]) -> dict[str, float]:
    print("warm-up: first study loads TensorFlow and the model in the worker...", flush=True)
    api.wait_all([api.submit(warm_up)], timeout=600)
    print(f"submitting {len(images)} full-resolution studies...", flush=True)
    started = time.time()
    ids = [api.submit(path) for path in images]
    submitted = time.time()
    results = api.wait_all(ids, timeout=60 * 60)
    failed = [r for r in results if r["status"] != "completed"]
    completed = [r for r in results if r["status"] == "completed"]
    latencies = [parse_time(r["completed_at"]) - parse_time(r["created_at"]) for r in completed]
    span = max(parse_time(r["completed_at"]) for r in completed) - min(parse_time(r["created_at"]) for r in results)
    server_ms = [r["prediction"]["inference_ms"] for r in completed if r.get("prediction")]
    return {
        "n": len(results),
        "failed": len(failed),
        "upload_s": submitted - started,
        "p50_s": percentile(latencies, 0.5),
        "p95_s": percentile(latencies, 0.95),
        "per_minute": len(completed) / span * 60,
        "worker_inference_ms_p50": percentile(server_ms, 0.5),
    }


def run_flush(api: Api, worker: subprocess.Popen[bytes], redis_url: str, images: list[Path]) -> dict[str, float]:
    """Queue studies while the worker is frozen, FLUSHDB the broker, thaw the worker: seconds until all completed."""
    print(f"broker loss: queueing {len(images)} studies, then FLUSHDB...", flush=True)
    os.killpg(worker.pid, signal.SIGSTOP)  # its beat too: nothing is consumed or re-sent before the flush
    try:
        ids = [api.submit(path) for path in images]
        redis.Redis.from_url(redis_url).flushdb()
        flushed = time.time()
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    results = api.wait_all(ids, timeout=30 * 60)
    last = max(parse_time(r["completed_at"]) for r in results)
    return {
        "n": len(results),
        "failed": sum(r["status"] != "completed" for r in results),
        "flush_to_all_completed_s": last - flushed,
    }


def run_bare(model_dir: Path, images: list[Path]) -> dict[str, float]:
    """Bare model forward + Grad-CAM on the preprocessed images, and the full single-image predict path."""
    from mlcore.gradcam import predict_with_gradcam
    from mlcore.inference import Predictor
    from mlcore.preprocessing import preprocess_bytes

    predictor = Predictor.from_artifact(model_dir)
    batches = [preprocess_bytes(p.read_bytes(), predictor.preprocessing)[0][None] for p in images]
    predict_with_gradcam(predictor.model, batches[0])  # trace / warm up
    bare, full = [], []
    for batch in batches:
        t0 = time.perf_counter()
        predict_with_gradcam(predictor.model, batch)
        bare.append((time.perf_counter() - t0) * 1000)
    for path in images:
        data = path.read_bytes()
        t0 = time.perf_counter()
        predictor.predict(data)
        full.append((time.perf_counter() - t0) * 1000)
    return {
        "bare_ms_p50": percentile(bare, 0.5),
        "bare_ms_p95": percentile(bare, 0.95),
        "predict_ms_p50": percentile(full, 0.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40, help="Studies to submit (max 80 full-res images).")
    parser.add_argument("--image-size", type=int, default=384, help="Demo model input size when no --model-dir.")
    parser.add_argument("--model-dir", default="", help="An artifact folder (default: an untrained demo model).")
    parser.add_argument("--flush-count", type=int, default=10, help="Studies queued when the broker loses them.")
    parser.add_argument("--pacs-count", type=int, default=10, help="Single-image studies sent by Orthanc (0: skip).")
    parser.add_argument("--database", default="pneumoweb_bench", help="PostgreSQL database to create and use.")
    args = parser.parse_args()

    # Distinct files throughout: the same file sent again by the same account is a retry (the existing study).
    all_images = sample_images(1 + args.count + args.flush_count)
    if len(all_images) < 1 + args.count + args.flush_count:
        raise SystemExit(f"only {len(all_images)} images: lower --count or --flush-count")
    warm_up, images, flush_images = all_images[0], all_images[1 : 1 + args.count], all_images[1 + args.count :]
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pneumoweb")
    database_url = urllib.parse.urlparse(database_url)._replace(path=f"/{args.database}").geturl()
    ensure_database(database_url)
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="pneumoweb.settings.local",
        DATABASE_URL=database_url,
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        PNEUMO_VAR_DIR=str(work),
        PNEUMO_UPLOAD_RATE="100000/min",
        TF_CPP_MIN_LOG_LEVEL="2",
        DJANGO_DEBUG="0",
    )
    manage(env, "migrate", "--noinput")
    model_dir = Path(args.model_dir) if args.model_dir else work / "models" / f"bench-demo-{args.image_size}"
    if not args.model_dir and not (model_dir / "manifest.json").exists():
        print(f"building an untrained {args.image_size}px demo model (timings do not depend on training)...")
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from mlcore.artifact import create_demo_artifact; "
                f"create_demo_artifact(sys.argv[1], image_size={args.image_size}, version=sys.argv[2])",
                str(model_dir),
                model_dir.name,
            ],
            cwd=ROOT,
            check=True,
        )
    version = f"{model_dir.name}-{int(time.time())}"
    manage(
        env,
        "shell",
        "-c",
        "from diagnosis.services.model_registration import model_version_register as r;"
        "from diagnosis.services.model_versions import model_version_activate as a;"
        f"a(model_version=r(path={str(model_dir)!r}, version={version!r}), allow_unvalidated=True)",
    )
    token_out = manage(env, "create_integrator", f"bench-{int(time.time())}")
    token = token_out.split("API token:")[1].split()[0]

    port = free_port()
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "pneumoweb.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=(work / "web.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "pneumoweb",
            "worker",
            "-Q",
            "inference,pacs",
            "--concurrency",
            "1",
            "-n",
            f"bench-{os.getpid()}@localhost",
            "--loglevel",
            "WARNING",
            # The reconciler runs on beat, as in docker-compose: it re-sends what the broker lost.
            "-B",
            "--schedule",
            str(work / "celerybeat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdout=(work / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for _ in range(120):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:  # not up yet, or too busy booting to answer in time
                time.sleep(0.5)
        api = Api(token, port, work)
        live = run_live(api, warm_up, images)
        flush = run_flush(api, worker, env["REDIS_URL"], flush_images)
        pacs = (
            run_pacs(env=env, work=work, manage=manage, count=args.pacs_count, percentile=percentile)
            if args.pacs_count
            else None
        )
    finally:
        for process in (web, worker):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    bare = run_bare(model_dir, images)

    print()
    print(
        f"PneumoWeb bench: {live['n']} full-resolution Kermany X-rays (pediatric), model {args.image_size}px "
        f"ResNet50 ({'untrained demo' if not args.model_dir else model_dir}), 1 worker, {os.cpu_count()} CPUs"
    )
    print(
        f"  upload → completed      p50 {live['p50_s']:.2f} s   p95 {live['p95_s']:.2f} s   (failed: {live['failed']})"
    )
    print(f"  throughput              {live['per_minute']:.1f} studies/min with one worker")
    per_study_s = 60 / live["per_minute"]
    print(
        f"  broker lost all (FLUSHDB) with {flush['n']} queued: all completed "
        f"{flush['flush_to_all_completed_s']:.1f} s "
        f"after the flush (failed: {flush['failed']}); processing {per_study_s:.2f} s/study = "
        f"{flush['n'] * per_study_s:.1f} s for {flush['n']}; target 90 s + processing = "
        f"{90 + flush['n'] * per_study_s:.1f} s"
    )
    if pacs:
        print(
            f"  PACS round trip (Orthanc C-STORE → SR + SC back in Orthanc), {pacs['n']} single-image studies: "
            f"p50 window + {pacs['p50_s'] - pacs['window_s']:.1f} s, p95 window + "
            f"{pacs['p95_s'] - pacs['window_s']:.1f} s (window {pacs['window_s']:.0f} s; failed: {pacs['failed']})"
        )
    print(f"  worker inference_ms     p50 {live['worker_inference_ms_p50']:.0f} ms (forward + Grad-CAM, in the worker)")
    print(
        f"  bare forward + Grad-CAM p50 {bare['bare_ms_p50']:.0f} ms   p95 {bare['bare_ms_p95']:.0f} ms (this process)"
    )
    print(
        f"  full predict()          p50 {bare['predict_ms_p50']:.0f} ms "
        "(decode + CLAHE + resize + forward + Grad-CAM + PNGs)"
    )
    print(
        f"  ratio end-to-end p50 / bare p50 = {live['p50_s'] * 1000 / bare['bare_ms_p50']:.1f}x; "
        f"per-study cost at saturation / bare = {60_000 / live['per_minute'] / bare['bare_ms_p50']:.2f}x"
    )
    (work / "results.json").write_text(json.dumps({"live": live, "flush": flush, "pacs": pacs, "bare": bare}, indent=2))


if __name__ == "__main__":
    main()
