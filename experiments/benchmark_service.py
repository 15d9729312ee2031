"""Load test of serve.py on loopback: throughput and latency (p50, p99) at several concurrencies.

    python experiments/benchmark_service.py --model_dir runs/NAME/export --input FILE.conll [--record]
    python experiments/benchmark_service.py --model_dir runs/NAME/frozen runs/NAME/onnx --rounds 3 ...

Starts serve.py on 127.0.0.1 (a free port), then for each concurrency C runs C clients, each
sending one sentence per POST /tag and sending the next as soon as the answer comes, for
--seconds (at most --max_requests requests per level); the clients run on uvloop, as the service
does, so that their own overhead weighs less in the latency. With --client wrk the load comes from
wrk (apt install wrk: one C thread, a small fraction of the aiohttp clients' CPU, which share the
machine with the service). Sentences come from --input in file order, with the feature columns the
model reads. Prints, and with --record adds to results.json, requests and tokens per second, p50
and p99 latency and the mean sentences per tagging call (from /metrics). Several folders are
served at once and take turns at each level, --rounds times, so that a change in the machine's
load hits them alike; the medians are recorded.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import uvloop

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import results  # noqa: E402

from ner.config import Config  # noqa: E402
from ner.data import conll  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, model_dir: str, port: int) -> subprocess.Popen:
    command = [sys.executable, os.path.join(ROOT, "serve.py"), "--model_dir", model_dir, "--port", str(port),
               "--max_batch", str(args.max_batch), "--max_wait_ms", str(args.max_wait_ms),
               "--max_queue", str(args.max_queue)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, cwd=ROOT)
    for line in server.stderr:
        if line.startswith(b"serving"):
            return server
    raise SystemExit(f"serve.py did not start: {' '.join(command)}")


WRK_SCRIPT = """
local bodies = {%s}
local next_body = 0
request = function()
  next_body = next_body %% #bodies + 1
  return wrk.format("POST", "/tag", {["Content-Type"] = "application/json"}, bodies[next_body])
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_level(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """One level driven by wrk (one thread, `concurrency` connections); latencies in its microseconds."""
    def metrics():
        with urllib.request.urlopen(url + "metrics") as response:
            return response.read().decode()

    # Lua long strings [==[ ]==] hold any JSON body that does not itself contain ]==].
    script = WRK_SCRIPT % ",".join("[==[" + body.decode() + "]==]" for body in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(script)
        f.flush()
        before = metrics()
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "-s", f.name, url + "tag"],
                             check=True, capture_output=True, text=True).stdout
        after = metrics()
    line = next(line for line in out.splitlines() if line.startswith("WRK "))
    requests, duration_us, errors, p50_us, p99_us = (int(x) for x in line.split()[1:])
    calls = metric_sum(after, "ner_batch_sentences_count") - metric_sum(before, "ner_batch_sentences_count")
    tagged = metric_sum(after, "ner_batch_sentences_sum") - metric_sum(before, "ner_batch_sentences_sum")
    return {"requests_per_s": (requests - errors) / (duration_us / 1e6), "p50_ms": p50_us / 1000,
            "p99_ms": p99_us / 1000, "statuses": {"ok": requests - errors, "errors": errors},
            "sentences_per_call": tagged / max(calls, 1), "requests": requests}


def metric_sum(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


async def load_level(url: str, bodies: list[bytes], concurrency: int, seconds: float, max_requests: int) -> dict:
    import aiohttp
    latencies, statuses = [], {}
    next_body = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def metrics():
            async with session.get(url + "metrics") as response:
                return await response.text()

        before = await metrics()
        deadline = time.perf_counter() + seconds

        async def client():
            nonlocal next_body
            while time.perf_counter() < deadline and next_body < max_requests:
                body = bodies[next_body % len(bodies)]
                next_body += 1
                started = time.perf_counter()
                async with session.post(url + "tag", data=body, headers={"Content-Type": "application/json"}) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 200:
                    latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        after = await metrics()
    calls = metric_sum(after, "ner_batch_sentences_count") - metric_sum(before, "ner_batch_sentences_count")
    tagged = metric_sum(after, "ner_batch_sentences_sum") - metric_sum(before, "ner_batch_sentences_sum")
    latencies_ms = np.array(latencies) * 1000
    return {"requests_per_s": len(latencies) / elapsed, "p50_ms": float(np.percentile(latencies_ms, 50)),
            "p99_ms": float(np.percentile(latencies_ms, 99)), "statuses": statuses,
            "sentences_per_call": tagged / max(calls, 1), "requests": sum(statuses.values())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, nargs="+",
                        help="what serve.py serves (an export/ folder, say); several folders take turns")
    parser.add_argument("--rounds", type=int, default=1, help="turns of every folder at every level (default 1)")
    parser.add_argument("--input", required=True, help="CoNLL file whose sentences are sent")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64], help="clients at once (default 1 8 64)")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each level (default 15)")
    parser.add_argument("--max_requests", type=int, default=200000, help="requests per level at most (default 200000)")
    parser.add_argument("--max_batch", type=int, default=32, help="serve.py --max_batch (default 32)")
    parser.add_argument("--max_wait_ms", type=float, default=0.0, help="serve.py --max_wait_ms (default 0)")
    parser.add_argument("--max_queue", type=int, default=256, help="serve.py --max_queue (default 256)")
    parser.add_argument("--text", action="store_true",
                        help='send each sentence as raw text ({"text": words joined by spaces}), which the service '
                             "tokenizes with the model's tokenizer graph")
    parser.add_argument("--client", choices=("aiohttp", "wrk"), default="aiohttp",
                        help="load generator: aiohttp clients on uvloop in this process (default), or wrk")
    parser.add_argument("--name", help="results.json entry name (default service_<model folder>_batch<max_batch>, "
                                       "with _text for --text)")
    parser.add_argument("--record", action="store_true", help="add the figures to experiments/results.json")
    args = parser.parse_args(argv)

    import json
    columns = Config.load(os.path.join(args.model_dir[0], "config.json")).feature_columns
    sentences = [s for s in conll.read_conll(args.input, tagged=False) if not s.docstart]
    if args.text:  # raw text: the service tokenizes it with the model's tokenizer graph
        bodies = [json.dumps({"text": " ".join(s.words)}).encode() for s in sentences]
    else:
        bodies = [json.dumps({"tokens": [[t[0]] + [t[c] for c in columns] for t in s.columns]}).encode()
                  for s in sentences]
    tokens_per_request = sum(len(s.words) for s in sentences) / len(sentences)
    suffix = f"_batch{args.max_batch}" + ("_text" if args.text else "") + ("_wrk" if args.client == "wrk" else "")
    names, urls, servers = {}, {}, []
    command = "python experiments/benchmark_service.py " + " ".join(a for a in (argv or sys.argv[1:]) if a != "--record")
    try:
        for model_dir in args.model_dir:
            folder = os.path.abspath(model_dir)
            # service_<model folder>[_<served folder>]_batch<N>: the served folder named when several are compared.
            names[model_dir] = args.name if args.name and len(args.model_dir) == 1 else (
                f"service_{os.path.basename(os.path.dirname(folder))}"
                + (f"_{os.path.basename(folder)}" if len(args.model_dir) > 1 else "") + suffix)
            port = free_port()
            servers.append(start_server(args, model_dir, port))
            urls[model_dir] = f"http://127.0.0.1:{port}/"
            uvloop.run(load_level(urls[model_dir], bodies, 4, 2.0, 2000))  # warm-up: graph tracing, first allocations
        levels = {(model_dir, concurrency): [] for concurrency in args.concurrency for model_dir in args.model_dir}
        for _ in range(args.rounds):
            for (model_dir, concurrency), runs in levels.items():
                if args.client == "wrk":
                    level = wrk_level(urls[model_dir], bodies, concurrency, args.seconds)
                else:
                    level = uvloop.run(load_level(urls[model_dir], bodies, concurrency, args.seconds, args.max_requests))
                # Requests cycle through the file's sentences, so the mean sentence length stands for theirs.
                level["tokens_per_s"] = level["requests_per_s"] * tokens_per_request
                print(f"{names[model_dir]} concurrency {concurrency}: {level['requests_per_s']:.0f} requests/s "
                      f"(~{level['tokens_per_s']:.0f} tokens/s), p50 "
                      f"{level['p50_ms']:.2f} ms, p99 {level['p99_ms']:.2f} ms, {level['sentences_per_call']:.1f} "
                      f"sentences per tagging call, statuses {level['statuses']}", file=sys.stderr)
                runs.append(level)
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    for (model_dir, concurrency), runs in levels.items():
        medians = {key: statistics.median(run[key] for run in runs)
                   for key in ("requests_per_s", "tokens_per_s", "p50_ms", "p99_ms")}
        if len(runs) > 1:
            print(f"{names[model_dir]} concurrency {concurrency}, median of {len(runs)}: "
                  f"{medians['requests_per_s']:.0f} requests/s, p50 {medians['p50_ms']:.2f} ms, "
                  f"p99 {medians['p99_ms']:.2f} ms", file=sys.stderr)
        if args.record:
            for metric, key, unit in (("requests_per_s", "requests_per_s", "requests/s"),
                                      ("tokens_per_s", "tokens_per_s", "tokens/s"),
                                      ("latency_ms_p50", "p50_ms", "ms"), ("latency_ms_p99", "p99_ms", "ms")):
                results.record(names[model_dir], model_dir, args.input, f"{metric}_c{concurrency}",
                               {"concurrency": concurrency, "value": round(medians[key], 2)}, unit, command)
    if args.record:
        results.render()


if __name__ == "__main__":
    main()
