"""Load: many users signing in and asking through the HTTP API at once, while an admin ingests.

    .venv/bin/python bench/load.py [--users 20,50] [--questions 5] [--gen-questions 1] [--max-tokens 48]
                                   [--corpus FOLDER] [--port 0] [--json-out PATH]

The real app (`run.py serve`) runs in a child process on a loopback port, with a fresh data
dir holding a small real corpus (`run.py ingest` of ../shared/datasets/contoso-hr/docs, or
generated text without ../shared) and the embedded model (llama.cpp, Gemma 3 270M). N users
with API tokens are made through the app's services. For each N, two scenarios run:

- **retrieve-only**: every user signs in (`POST /login`) and asks `--questions` questions one
  after another with `"retrieve_only": true` (`POST /v1/chat/completions`, JSON);
- **generate**: every user signs in and asks `--gen-questions` questions with `"stream": true`;
  the embedded model writes one answer at a time, so the others wait in line and their stream
  carries `queue` chunks (`ahead`, `waited_s`), recorded here.

Meanwhile an admin ingests a folder of generated documents through `POST /api/ingest` and
polls `GET /api/jobs/{id}`. Printed per scenario: throughput, p50/p95 latency, errors, sign-in
latency, and for generation the queue (places seen, whether they only fell to 0, seconds
waited, first-come-first-served inversions). The baseline, in the same run, is the same
requests from one user with no ingest running. Results go to bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project root, not bench/, so `ingest` is the project's package

from bench.machine import load_average, machine_info  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "contoso-hr"
DEFAULT_JSON = ROOT / "bench" / "results" / "load.json"
PYTHON = sys.executable
PASSWORD = "load-test-password-42"
TARGET_RETRIEVE_P95_S = 1.0
TOPICS = ["travel", "leave", "dental", "vision", "payroll", "security", "laptops", "parking", "training", "pensions"]


@dataclass
class Sample:
    """One request as a user saw it."""

    seconds: float
    ok: bool
    error: str = ""
    first_token_s: float | None = None
    places: list[int] = field(default_factory=list)
    waited_s: float = 0.0
    started: float = 0.0
    refused: bool = False


@dataclass
class UserRun:
    """What one simulated user did: sign-in time and their requests."""

    sign_in_s: float | None
    samples: list[Sample]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="20,50", help="Comma-separated user counts, run in turn.")
    parser.add_argument("--questions", type=int, default=5, help="Retrieve-only questions per user.")
    parser.add_argument("--gen-questions", type=int, default=1, help="Generated answers per user.")
    parser.add_argument("--max-tokens", type=int, default=48, help="Longest generated answer (tokens).")
    parser.add_argument("--ingest-files", type=int, default=40, help="Documents the admin ingests per scenario.")
    parser.add_argument("--corpus", type=Path, default=None, help="Folder to serve (default contoso-hr docs).")
    parser.add_argument("--generated", action="store_true", help="Serve generated documents, ask about them.")
    parser.add_argument("--port", type=int, default=0, help="Loopback port for the app (0: a free one).")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON)
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def questions_and_corpus(corpus: Path | None, generated: bool, work: Path) -> tuple[Path, list[str]]:
    """The folder to serve and the questions users ask (contoso-hr's, or about generated text)."""
    if corpus is None and not generated and (DATASET / "docs").is_dir():
        corpus = DATASET / "docs"
    qa = DATASET / "qa.jsonl"
    if corpus is not None and not generated and qa.is_file():
        rows = [json.loads(line) for line in qa.read_text(encoding="utf-8").splitlines() if line.strip()]
        return corpus, [r["question"] for r in rows if r.get("answerable", True)]
    folder = work / "generated-corpus"
    write_documents(folder, 30, "policy")
    return folder, [f"What does the {t} policy say about requests?" for t in TOPICS]


def write_documents(folder: Path, count: int, label: str) -> None:
    """Markdown documents of plain policy prose, one topic each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(
            f"The {topic} policy, section {k}, says requests go to the {topic} team within {k + i} days "
            f"and are answered by email." for k in range(12)
        )
        (folder / f"{label}-{i:03d}.md").write_text(f"# {topic.title()} policy {i}\n\n{body}\n", encoding="utf-8")


def write_config(data_dir: Path, port: int, ingest_root: Path, max_tokens: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "enclave.toml").write_text(
        f'[web]\nhost = "127.0.0.1"\nport = {port}\nopen_browser = false\ningest_roots = ["{ingest_root}"]\n\n'
        f'[generation]\nbackend = "embedded"\nqueue_wait_s = 1800\n\n'
        f"[generation.embedded]\nmax_tokens = {max_tokens}\n",
        encoding="utf-8",
    )


def ingest_corpus(data_dir: Path, corpus: Path) -> dict[str, Any]:
    """`run.py ingest` of the served corpus, as an admin would on the server."""
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "run.py", "ingest", str(corpus), "--collection", "hr", "--data-dir", str(data_dir), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"run.py ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"seconds": round(time.perf_counter() - started, 1), "summary": json.loads(done.stdout)}


def make_users(data_dir: Path, count: int) -> tuple[list[tuple[str, str]], str]:
    """Users u001.. in a group that reads 'hr', each with an API token; and an admin token."""
    from assistant.audit import SYSTEM
    from assistant.services import build_services
    from assistant.settings import load_settings

    services = build_services(load_settings(data_dir=data_dir))
    try:
        web = services.web
        web.accounts.ensure_admin(PASSWORD)
        web.access.create_group(SYSTEM, "staff")
        web.access.set_grant(SYSTEM, "staff", "hr", True)
        users = []
        for i in range(1, count + 1):
            name = f"u{i:03d}"
            web.accounts.create_user(SYSTEM, name, PASSWORD)
            web.access.set_member(SYSTEM, name, "staff", True)
            users.append((name, web.tokens.create(SYSTEM, name, "load test")[1]))
        return users, web.tokens.create(SYSTEM, "admin", "load test")[1]
    finally:
        services.close()


@contextmanager
def running_app(data_dir: Path, port: int) -> Iterator[str]:
    """`run.py serve` in a child process, until the block ends."""
    env = {**os.environ, "ENCLAVE_ADMIN_PASSWORD": PASSWORD}
    log = (data_dir / "serve.log").open("w")
    process = subprocess.Popen([PYTHON, "run.py", "serve", "--no-browser", "--data-dir", str(data_dir)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise SystemExit(f"run.py serve exited ({process.returncode}); see {data_dir / 'serve.log'}")
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise SystemExit("run.py serve did not answer within 300 s")
            time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def sign_in(client: httpx.AsyncClient, user: str) -> float | None:
    """Sign in with the password, as the web page does; None when it failed."""
    started = time.perf_counter()
    response = await client.post("/login", data={"username": user, "password": PASSWORD, "next": "/"})
    return time.perf_counter() - started if response.status_code == 303 else None


async def ask_retrieve(client: httpx.AsyncClient, token: str, question: str) -> Sample:
    started = time.perf_counter()
    body = {"model": "enclave", "messages": [{"role": "user", "content": question}], "retrieve_only": True}
    try:
        response = await client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {token}"})
    except httpx.HTTPError as error:
        return Sample(time.perf_counter() - started, False, f"{type(error).__name__}: {error}")
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        return Sample(seconds, False, f"HTTP {response.status_code}: {response.text[:200]}")
    ok = bool(response.json().get("sources"))
    return Sample(seconds, ok, "" if ok else "no sources came back")


async def ask_streamed(client: httpx.AsyncClient, token: str, question: str) -> Sample:
    """A streamed answer: when the first text came, the places in line seen, errors in the stream."""
    sample = Sample(0.0, False, started=time.perf_counter())
    body = {"model": "enclave", "messages": [{"role": "user", "content": question}], "stream": True}
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body,
                                 headers={"authorization": f"Bearer {token}"}) as response:
            if response.status_code != 200:
                sample.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
            else:
                await read_stream(response, sample)
    except httpx.HTTPError as error:
        sample.error = f"{type(error).__name__}: {error}"
    sample.seconds = time.perf_counter() - sample.started
    return sample


async def read_stream(response: httpx.Response, sample: Sample) -> None:
    finished = False
    async for line in response.aiter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if "error" in chunk:
            sample.error = str(chunk["error"].get("message"))
        elif "queue" in chunk:
            sample.places.append(int(chunk["queue"]["ahead"]))
            sample.waited_s = float(chunk["queue"]["waited_s"])
        elif chunk["choices"][0]["delta"].get("content") and sample.first_token_s is None:
            sample.first_token_s = time.perf_counter() - sample.started
        if chunk.get("choices") and chunk["choices"][0].get("finish_reason") == "stop":
            finished, sample.refused = True, bool(chunk.get("refused"))
    sample.ok = finished and not sample.error
    if not finished and not sample.error:
        sample.error = "the stream ended without a finished answer"


async def user_session(url: str, user: str, token: str, questions: list[str], generate: bool) -> UserRun:
    timeout = httpx.Timeout(30.0, read=1800.0 if generate else 120.0)
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        signed_in = await sign_in(client, user)
        samples = []
        for question in questions:
            ask = ask_streamed if generate else ask_retrieve
            samples.append(await ask(client, token, question))
        return UserRun(signed_in, samples)


async def admin_ingest(url: str, token: str, folder: Path, collection: str) -> dict[str, Any]:
    """Queue an ingest through the API and follow it until it ends."""
    started = time.perf_counter()
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
        response = await client.post("/api/ingest", json={"folder": str(folder), "collection": collection})
        if response.status_code != 202:
            return {"ok": False, "error": f"HTTP {response.status_code}: {response.text[:300]}"}
        job_url = response.json()["url"]
        while True:
            job = (await client.get(job_url)).json()
            if job.get("state") in ("done", "failed"):
                break
            await asyncio.sleep(0.5)
    return {"ok": job["state"] == "done" and not job.get("failures"), "state": job["state"], "files": job.get("total"),
            "failures": job.get("failures"), "seconds": round(time.perf_counter() - started, 1)}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def fifo_inversions(samples: list[Sample]) -> int:
    """Pairs answered out of turn: A first stood further ahead in line than B, yet B's text came first."""
    queued = [(s.places[0], s.started + (s.first_token_s or s.seconds)) for s in samples if s.places]
    return sum(1 for a in queued for b in queued if a[0] < b[0] and a[1] > b[1])


def summarise(name: str, users: int, runs: list[UserRun], wall_s: float,
              ingest: dict[str, Any] | None) -> dict[str, Any]:
    samples = [s for r in runs for s in r.samples]
    seconds = [s.seconds for s in samples]
    sign_ins = [r.sign_in_s for r in runs if r.sign_in_s is not None]
    errors = [s.error for s in samples if not s.ok] + ["sign-in failed"] * (len(runs) - len(sign_ins))
    out: dict[str, Any] = {
        "scenario": name, "users": users, "requests": len(samples), "errors": len(errors),
        "error_examples": sorted(set(errors))[:5], "wall_s": round(wall_s, 2),
        "throughput_rps": round(len(samples) / wall_s, 2) if wall_s else None,
        "p50_s": r3(percentile(seconds, 50)), "p95_s": r3(percentile(seconds, 95)),
        "sign_in_p50_s": r3(percentile(sign_ins, 50)), "sign_in_p95_s": r3(percentile(sign_ins, 95)),
        "admin_ingest": ingest,
    }
    if name.startswith("generate"):
        out["refused_before_or_by_model"] = sum(s.refused for s in samples)
        out.update(queue_summary(samples))
    return out


def queue_summary(samples: list[Sample]) -> dict[str, Any]:
    waited = [s for s in samples if s.places]
    firsts = [s.first_token_s for s in samples if s.first_token_s is not None]
    falling = all(s.places == sorted(s.places, reverse=True) and s.places[-1] == 0 for s in waited)
    return {
        "first_token_p50_s": r3(percentile(firsts, 50)), "first_token_p95_s": r3(percentile(firsts, 95)),
        "queued_requests": len(waited), "max_place_seen": max((s.places[0] for s in waited), default=0),
        "places_only_fell_to_zero": falling,
        "queue_wait_p50_s": r3(percentile([s.waited_s for s in waited], 50)),
        "queue_wait_max_s": r3(max((s.waited_s for s in waited), default=0.0)),
        "fifo_inversions": fifo_inversions(samples),
        "answer_after_queue_p50_s": r3(percentile([s.seconds - s.waited_s for s in samples if s.ok], 50)),
    }


def r3(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


async def scenario(url: str, name: str, users: list[tuple[str, str]], questions: list[str], per_user: int,
                   ingest: tuple[str, Path] | None) -> dict[str, Any]:
    generate = name.startswith("generate")
    picked = [[questions[(i * per_user + k) % len(questions)] for k in range(per_user)] for i in range(len(users))]
    started = time.perf_counter()
    sessions = [user_session(url, u, t, q, generate) for (u, t), q in zip(users, picked, strict=True)]
    admin = admin_ingest(url, ingest[0], ingest[1], ingest[1].name) if ingest else None
    results = await asyncio.gather(asyncio.gather(*sessions), *([admin] if admin else []))
    wall = time.perf_counter() - started
    return summarise(name, len(users), results[0], wall, results[1] if admin else None)


def show(row: dict[str, Any], baseline: dict[str, Any]) -> None:
    line = (f"{row['scenario']:<14} users={row['users']:>3} req={row['requests']:>4} errors={row['errors']} "
            f"{row['throughput_rps']} req/s  p50={row['p50_s']} s  p95={row['p95_s']} s  "
            f"sign-in p95={row['sign_in_p95_s']} s   | 1 user: p50={baseline['p50_s']} s p95={baseline['p95_s']} s "
            f"{baseline['throughput_rps']} req/s")
    print(line, flush=True)
    if "queued_requests" in row:
        print(f"{'':<14} queued={row['queued_requests']} max place seen={row['max_place_seen']} "
              f"places only fell to 0: {row['places_only_fell_to_zero']}  wait p50={row['queue_wait_p50_s']} s "
              f"max={row['queue_wait_max_s']} s  first text p95={row['first_token_p95_s']} s  "
              f"FIFO inversions={row['fifo_inversions']}  refused={row['refused_before_or_by_model']}  "
              f"answer after the queue p50={row['answer_after_queue_p50_s']} s", flush=True)
    if row["admin_ingest"]:
        print(f"{'':<14} admin ingest meanwhile: {row['admin_ingest']}", flush=True)
    for example in row["error_examples"]:
        print(f"{'':<14} error: {example}", flush=True)


async def run_all(url: str, args: argparse.Namespace, users: list[tuple[str, str]], admin: str,
                  questions: list[str], ingest_root: Path) -> list[dict[str, Any]]:
    # Warm up: the first retrieval loads the embedder, the first answer loads the model.
    await scenario(url, "retrieve-only", users[:1], questions, 1, None)
    await scenario(url, "generate", users[:1], questions, 1, None)
    rows = []
    for mode, per_user in (("retrieve-only", args.questions), ("generate", args.gen_questions)):
        baseline = await scenario(url, mode, users[:1], questions, per_user, None)
        print(f"baseline {mode}: 1 user, {per_user} question(s): {baseline}", flush=True)
        for count in [int(n) for n in args.users.split(",")]:
            folder = ingest_root / f"incoming-{mode}-{count}"
            write_documents(folder, args.ingest_files, f"{mode}-{count}")
            row = await scenario(url, mode, users[:count], questions, per_user, (admin, folder))
            row["baseline_1_user"] = baseline
            show(row, baseline)
            rows.append(row)
    return rows


def main() -> None:
    args = parse_args()
    command = shlex.join([".venv/bin/python", "bench/load.py", *sys.argv[1:]])
    load_start = load_average()
    print(f"{command}\nload average at start: {load_start}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="enclave-load-"))
    try:
        data_dir, ingest_root = work / "data", work / "shares"
        ingest_root.mkdir()
        port = args.port or free_port()
        corpus, questions = questions_and_corpus(args.corpus, args.generated, work)
        write_config(data_dir, port, ingest_root, args.max_tokens)
        setup = ingest_corpus(data_dir, corpus)
        print(f"ingested {corpus} in {setup['seconds']} s", flush=True)
        users, admin = make_users(data_dir, max(int(n) for n in args.users.split(",")))
        with running_app(data_dir, port) as url:
            rows = asyncio.run(run_all(url, args, users, admin, questions, ingest_root))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(args, command, load_start, setup, rows)


def write_results(args: argparse.Namespace, command: str, load_start: list[float], setup: dict[str, Any],
                  rows: list[dict[str, Any]]) -> None:
    retrieve_50 = [r for r in rows if r["scenario"] == "retrieve-only"]
    verdict = {
        "zero_errors": all(r["errors"] == 0 for r in rows),
        "admin_ingests_ok": all(r["admin_ingest"] and r["admin_ingest"]["ok"] for r in rows),
        "retrieve_only_p95_under_1s_at_most_users": bool(retrieve_50) and (retrieve_50[-1]["p95_s"] or 0)
        < TARGET_RETRIEVE_P95_S,
        "generation_queued_fairly": all(r.get("places_only_fell_to_zero", True) and r.get("fifo_inversions", 0) == 0
                                        for r in rows),
    }
    print(f"targets: {verdict}", flush=True)
    payload = {"command": command, "machine": machine_info(),
               "load_average": {"start": load_start, "end": load_average()}, "setup": setup,
               "settings": {"max_tokens": args.max_tokens, "questions": args.questions,
                            "gen_questions": args.gen_questions, "ingest_files": args.ingest_files},
               "scenarios": rows, "targets": verdict}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json_out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    tmp.replace(args.json_out)
    print(f"wrote {args.json_out}\nrerun: {command}", flush=True)


if __name__ == "__main__":
    main()
