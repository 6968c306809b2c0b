"""Load test on loopback: embedforge-serve vs FastAPI + uvicorn + sentence-transformers.

Run: python benches/bench_serve.py [--duration 10] [--connections 16] [--server-cpu 0] [--client-cpu 1]

Both servers load the same static model (a StaticEmbedding over the bert-base-uncased vocabulary
with 256 random dimensions, saved by sentence-transformers) and embed the same corpus at start
(the 5,000 MS MARCO passages of ../shared/data/beir/msmarco, one per line). The peer is
benches/serve_fastapi_app.py: ``SentenceTransformer(folder)`` behind FastAPI on uvicorn (with
uvloop and httptools when installed, as ``uvicorn[standard]`` does), /search through
``util.semantic_search``. Each request carries one of the 50 MS MARCO queries, in turn:
``POST /embed {"inputs": [query]}`` and ``POST /search {"queries": [query], "top_k": 10}``.

The load generator is wrk (Debian package ``wrk``): a fixed number of keep-alive connections for a
fixed time after a 2 s warm-up, one wrk thread. A Python client would use as much CPU as the
servers on a 2-core machine and distort the figures. The server is pinned to one core and wrk to
the other (taskset), so neither steals from the other; torch in the peer runs one thread to
match. Both servers' answers are checked to agree before the load starts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from common import REPO_ROOT, require_shared

#: Embedding width of the benchmark model.
DIM = 256
#: Seconds of load before the measured run, so both servers are warm.
WARMUP_SECONDS = 2
#: Seconds a server gets to start.
START_TIMEOUT = 300
#: /search's top_k.
TOP_K = 10


def build_binary() -> Path:
    """``cargo build --release -p embedforge-serve``; the path cargo reports for the binary."""
    cargo = shutil.which("cargo") or sys.exit("cargo is not on PATH: it is needed to build embedforge-serve")
    result = subprocess.run(
        [cargo, "build", "--release", "-p", "embedforge-serve", "--message-format=json-render-diagnostics"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"cargo build failed:\n{result.stderr[-4000:]}")
    for line in result.stdout.splitlines():
        message = json.loads(line)
        is_binary = message.get("reason") == "compiler-artifact" and message["target"]["name"] == "embedforge-serve"
        if is_binary and message.get("executable"):
            return Path(message["executable"])
    sys.exit("cargo did not report the embedforge-serve executable")


def write_model(folder: Path) -> Path:
    """The benchmark model, saved by sentence-transformers (so its own loader reads it natively)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(require_shared("tokenizers", "bert-base-uncased.json")))
    weights = torch.randn(tokenizer.get_vocab_size(), DIM, generator=torch.Generator().manual_seed(0))
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)], device="cpu")
    model.save(str(folder))
    return folder


def write_corpus(path: Path) -> list[str]:
    """Writes the MS MARCO passages one per line to ``path``; returns the queries."""
    with open(require_shared("beir", "msmarco", "corpus.jsonl"), encoding="utf-8") as f:
        passages = [" ".join(json.loads(line)["text"].split()) for line in f]
    path.write_text("".join(f"{p}\n" for p in passages), encoding="utf-8")
    with open(require_shared("beir", "msmarco", "queries.jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def post(url: str, body: Any) -> Any:
    """One JSON POST; the decoded answer."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def start(command: list[str], cpu: str, url: str, log: Path) -> subprocess.Popen[bytes]:
    """Starts ``command`` pinned to ``cpu`` and waits until its /health answers."""
    with open(log, "wb") as out:
        process = subprocess.Popen(["taskset", "-c", cpu, *command], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{command[0]} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"{command[0]} did not start within {START_TIMEOUT} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def lua_script(path: str, bodies: list[str]) -> str:
    """A wrk script that POSTs ``bodies`` to ``path`` in turn and prints exact percentiles."""
    for body in bodies:
        assert "]==]" not in body, "a body would end the Lua long string"
    table = ",\n".join(f"[==[{body}]==]" for body in bodies)
    return f"""
local bodies = {{
{table}
}}
local requests = {{}}
local next_request = 0
init = function(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "{path}", {{["Content-Type"] = "application/json"}}, body)
  end
end
request = function()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def run_wrk(wrk: str, cpu: str, url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    """One wrk run; the numbers its ``done`` hook printed."""
    command = ["taskset", "-c", cpu, wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    result = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True, check=True)
    match = re.search(r"RESULT (.*)", result.stdout)
    if match is None:
        sys.exit(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")
    return {key: float(value) for key, value in (item.split("=") for item in match.group(1).split())}


def check_same_answers(urls: dict[str, str], queries: list[str]) -> None:
    """Both servers embed and rank alike (to 1e-5), so the load test compares equal work."""
    searches = {name: post(url + "/search", {"queries": queries, "top_k": TOP_K}) for name, url in urls.items()}
    embeds = {name: post(url + "/embed", {"inputs": queries}) for name, url in urls.items()}
    (a, first), (b, second) = searches.items()
    swapped = 0
    for ours, theirs in zip(first["results"], second["results"]):
        np.testing.assert_allclose([h["score"] for h in ours], [h["score"] for h in theirs], atol=1e-5)
        their_scores = {h["id"]: h["score"] for h in theirs}
        for our_hit, their_hit in zip(ours, theirs):
            if our_hit["id"] != their_hit["id"]:
                # Only rows that tie (the corpus holds a duplicate passage) may come out swapped.
                swapped += 1
                other = their_scores.get(our_hit["id"], their_hit["score"])
                assert abs(other - our_hit["score"]) < 1e-5, f"{a} and {b} rank {our_hit} differently"
    (_, first), (_, second) = embeds.items()
    np.testing.assert_allclose(np.array(first["embeddings"]), np.array(second["embeddings"]), atol=1e-5)
    print(
        f"checked: both servers give the same embeddings and top-{TOP_K} hits for {len(queries)} queries "
        f"({swapped} hits swapped between tied rows)"
    )


def uptime() -> str:
    """The load average line of ``uptime``."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--server-cpu", default="0", help="CPU list the server is pinned to (taskset -c)")
    parser.add_argument("--client-cpu", default="1", help="CPU list wrk is pinned to (taskset -c)")
    parser.add_argument("--port", type=int, default=18080, help="first of the two ports used")
    args = parser.parse_args()
    wrk = shutil.which("wrk") or sys.exit("wrk is not on PATH: apt-get install -y wrk")
    shutil.which("taskset") or sys.exit("taskset is not on PATH: apt-get install -y util-linux")

    binary = build_binary()
    # The model, corpus, scripts and logs live here, and go away however the run ends.
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as work:
        run(args, wrk, binary, Path(work))


def run(args: argparse.Namespace, wrk: str, binary: Path, work: Path) -> None:
    """Builds the inputs in ``work``, load-tests both servers and prints the figures."""
    model = write_model(work / "model")
    corpus = work / "corpus.txt"
    queries = write_corpus(corpus)
    servers = {
        "embedforge-serve": (
            [str(binary), "--model", str(model), "--corpus", str(corpus), "--port", str(args.port)],
            f"http://127.0.0.1:{args.port}",
        ),
        "FastAPI + sentence-transformers": (
            [
                sys.executable,
                str(Path(__file__).with_name("serve_fastapi_app.py")),
                "--model",
                str(model),
                "--corpus",
                str(corpus),
                "--port",
                str(args.port + 1),
            ],
            f"http://127.0.0.1:{args.port + 1}",
        ),
    }
    endpoints = {
        "/embed": [json.dumps({"inputs": [q]}) for q in queries],
        "/search": [json.dumps({"queries": [q], "top_k": TOP_K}) for q in queries],
    }
    scripts = {}
    for path, bodies in endpoints.items():
        scripts[path] = work / f"{path.strip('/')}.lua"
        scripts[path].write_text(lua_script(path, bodies), encoding="utf-8")

    print(f"load before: {uptime()}", flush=True)
    fast_parts = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name) is not None]
    print(f"uvicorn with {' + '.join(fast_parts) or 'asyncio + h11 (pip install uvicorn[standard] for uvloop)'}")
    print(
        f"server pinned to CPU {args.server_cpu}, wrk (1 thread, {args.connections} connections) to CPU "
        f"{args.client_cpu}; {args.duration} s per run after {WARMUP_SECONDS} s warm-up; "
        f"{len(queries)} queries in turn, corpus {len(corpus.read_text(encoding='utf-8').splitlines()):,} passages, "
        f"model {DIM} dims",
        flush=True,
    )
    processes = {}
    results: dict[tuple[str, str], dict[str, float]] = {}
    try:
        for name, (command, url) in servers.items():
            processes[name] = start(command, args.server_cpu, url, work / f"{name.split()[0]}.log")
        check_same_answers({name: url for name, (_, url) in servers.items()}, queries)
        for path in endpoints:
            for name, (_, url) in servers.items():
                # Only the server under load runs; the other one idles on its socket.
                run_wrk(wrk, args.client_cpu, url, scripts[path], args.connections, WARMUP_SECONDS)
                stats = run_wrk(wrk, args.client_cpu, url, scripts[path], args.connections, args.duration)
                results[(path, name)] = stats
                rate = stats["requests"] / (stats["duration_us"] / 1e6)
                print(
                    f"{path:8} {name:32} {rate:10,.0f} req/s  p50 {stats['p50_us'] / 1000:7.2f} ms  "
                    f"p99 {stats['p99_us'] / 1000:7.2f} ms  non-2xx {stats['non2xx']:.0f}  "
                    f"socket errors {stats['socket_errors']:.0f}",
                    flush=True,
                )
    finally:
        for process in processes.values():
            stop(process)
    print(f"load after: {uptime()}")

    print("\n| endpoint | server | requests/s | p50 latency | p99 latency | failed requests |")
    print("|---|---|---:|---:|---:|---:|")
    for (path, name), stats in results.items():
        rate = stats["requests"] / (stats["duration_us"] / 1e6)
        failed = stats["non2xx"] + stats["socket_errors"]
        print(
            f"| `{path}` | {name} | {rate:,.0f} | {stats['p50_us'] / 1000:.2f} ms | "
            f"{stats['p99_us'] / 1000:.2f} ms | {failed:.0f} |"
        )
    for path in endpoints:
        ours, theirs = results[(path, "embedforge-serve")], results[(path, "FastAPI + sentence-transformers")]
        speedup = (ours["requests"] / ours["duration_us"]) / (theirs["requests"] / theirs["duration_us"])
        print(
            f"{path}: embedforge-serve {speedup:.1f}x the requests/s, p99 {ours['p99_us'] / 1000:.2f} ms vs "
            f"{theirs['p99_us'] / 1000:.2f} ms"
        )


if __name__ == "__main__":
    main()
