"""Stress test of serve.py on loopback: do valid requests keep succeeding, and how fast, while
oversized, malformed and slow requests run beside them? And how much memory does serve.py take?

    python experiments/benchmark_service_stress.py --model_dir runs/NAME/export --input FILE.conll [--record]

Starts serve.py on 127.0.0.1 (a free port, default limits) and runs two phases of --seconds each:
first --clients valid clients alone (the baseline), then the same clients while these run beside
them (from a process of their own), each sending its next request as soon as an answer comes:
  - oversized: bodies over the 1 MiB limit (a Content-Length of 99,999,999 with nothing after it,
    and a chunked body that never ends), texts over --max_text_chars (50 of 3,400 tokens each,
    within 1 MiB), texts within it but over --max_tokens by their words (refused before
    tokenizing), and texts of one 4,000-symbol run (tokenized, then refused);
  - malformed: broken JSON, a number of 5,000 digits, 200,000-deep nesting, a gzip
    Content-Encoding on a plain body, a lone surrogate, a wrong shape;
  - slow: --slow_connections connections that send their headers a byte at a time, or a body
    that never completes (slowloris), each reopened once the service closes it.
A valid request is one sentence of --input (as tokens, or with --text as raw text); it succeeds
when answered 200 within --timeout_s. Prints, and with --record adds to results.json: valid
requests per second, success ratio and p50/p99 latency in each phase, the answers the attackers
got by status (no 5xx expected), and serve.py's peak resident memory (VmHWM).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import numpy as np
import uvloop

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import results  # noqa: E402
from benchmark_service import free_port, metric_sum, start_server  # noqa: E402

from ner.config import Config  # noqa: E402
from ner.data import conll  # noqa: E402

PARIS = "Paris " * 3400  # 20,400 characters and 3,400 tokens: 50 of them fit a 1 MiB body


def post(body: bytes, *headers: bytes) -> bytes:
    """A whole POST /tag request with this body."""
    return b"\r\n".join([b"POST /tag HTTP/1.1", b"Host: 127.0.0.1", b"Content-Type: application/json",
                         b"Content-Length: %d" % len(body), *headers, b"", body])


OVERSIZED = [
    b"POST /tag HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\n",
    b"POST /tag HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    + (b"10000\r\n" + b" " * 0x10000 + b"\r\n") * 20,  # 1.25 MiB of chunks, and no last chunk
    post(json.dumps({"text": [PARIS] * 50}).encode()),
    post(json.dumps({"text": [PARIS[:4000]] * 50}).encode()),
    post(json.dumps({"text": ["$" * 4000] * 50}).encode()),  # 4,000 tokens in one run: found once tokenized
]
MALFORMED = [
    post(b'{"text": ["Paris", '),
    post(b'{"tokens": 1' + b"0" * 5000 + b"}"),
    post(b"[" * 200000 + b"]" * 200000),
    post(b'{"text": "Angela Merkel flew to Paris"}', b"Content-Encoding: gzip"),
    post(b'{"tokens": ["Angela", "\\ud800"]}'),
    post(b'{"sentences": "Angela Merkel"}'),
]


async def exchange(port: int, request: bytes, timeout: float) -> int:
    """Sends the request, reads the answer's status (0: none came), closes the connection."""
    reader = writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else 0
    except (OSError, TimeoutError, ValueError, IndexError):
        return 0
    finally:
        if writer is not None:
            writer.close()


async def attacker(port: int, requests: list[bytes], statuses: dict, stop: asyncio.Event, timeout: float):
    """Sends the requests in turn, one at a time, until stopped; counts the answers by status."""
    turn = 0
    while not stop.is_set():
        status = await exchange(port, requests[turn % len(requests)], timeout)
        statuses[status] = statuses.get(status, 0) + 1
        turn += 1


async def slow_connection(port: int, kind: str, statuses: dict, stop: asyncio.Event):
    """A slowloris: headers a byte a second ("headers"), or a body that never completes ("body");
    reopened whenever the service answers or closes it. Counts how each connection ended: the
    status answered, "closed" without an answer, or "held to the end" of the phase."""
    head = b"POST /tag HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            statuses["refused"] = statuses.get("refused", 0) + 1
            await asyncio.sleep(1)
            continue
        ended = "held to the end"
        try:
            if kind == "body":
                writer.write(head + b"\r\n" + b'{"text": "')
            for byte in head if kind == "headers" else b"a" * 1000:
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    line = await asyncio.wait_for(reader.readline(), 1)  # a byte a second, or the answer
                except TimeoutError:
                    continue
                ended = int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else "closed"
                break
        except (OSError, ValueError, IndexError):
            ended = "closed"
        finally:
            writer.close()
        statuses[ended] = statuses.get(ended, 0) + 1


async def valid_clients(url: str, bodies: list[bytes], clients: int, seconds: float, timeout: float) -> dict:
    """`clients` clients sending valid requests one after another for `seconds`."""
    import aiohttp
    latencies, statuses, sent = [], {}, 0
    deadline = time.perf_counter() + seconds
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients), timeout=client_timeout) as session:
        async def client():
            nonlocal sent
            while time.perf_counter() < deadline:
                body = bodies[sent % len(bodies)]
                sent += 1
                started = time.perf_counter()
                try:
                    async with session.post(url + "tag", data=body,
                                            headers={"Content-Type": "application/json"}) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = "timeout or error"
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies_ms = np.array(latencies or [float("nan")]) * 1000
    return {"requests_per_s": len(latencies) / elapsed, "success_percent": 100 * len(latencies) / max(sent, 1),
            "p50_ms": float(np.percentile(latencies_ms, 50)), "p99_ms": float(np.percentile(latencies_ms, 99)),
            "statuses": statuses}


async def attack(port: int, slow_connections: int, timeout: float, stopped) -> tuple[dict, dict]:
    """The attackers, until `stopped` (a multiprocessing.Event) is set -> the answers they got by
    status: the oversized and malformed requests', the slow connections'."""
    stop = asyncio.Event()
    attacks, slow = {}, {}
    tasks = [asyncio.create_task(attacker(port, OVERSIZED, attacks, stop, timeout)) for _ in range(2)]
    tasks += [asyncio.create_task(attacker(port, MALFORMED, attacks, stop, timeout)) for _ in range(2)]
    tasks += [asyncio.create_task(slow_connection(port, ("headers", "body")[i % 2], slow, stop))
              for i in range(slow_connections)]
    while not stopped.is_set():
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    return attacks, slow


def run_attack(port: int, slow_connections: int, timeout: float, stopped, answers):
    """attack() in a process of its own, so that the valid clients' latency holds none of its work."""
    answers.put(uvloop.run(attack(port, slow_connections, timeout, stopped)))


def stressed(port: int, bodies: list[bytes], args) -> tuple[dict, dict, dict]:
    """The valid clients while the attackers run -> their figures, the attackers' statuses, the slow ones'."""
    import multiprocessing
    stopped, answers = multiprocessing.Event(), multiprocessing.Queue()
    attackers = multiprocessing.Process(target=run_attack,
                                        args=(port, args.slow_connections, args.timeout_s, stopped, answers))
    attackers.start()
    time.sleep(2)  # the slow connections open, the first attacks arrive
    valid = uvloop.run(valid_clients(f"http://127.0.0.1:{port}/", bodies, args.clients, args.seconds, args.timeout_s))
    stopped.set()
    attacks, slow = answers.get()
    attackers.join()
    return valid, attacks, slow


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="what serve.py serves (an export/ folder, say)")
    parser.add_argument("--input", required=True, help="CoNLL file whose sentences the valid clients send")
    parser.add_argument("--text", action="store_true", help="valid requests as raw text rather than tokens")
    parser.add_argument("--clients", type=int, default=8, help="valid clients at once (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each phase (default 20)")
    parser.add_argument("--slow_connections", type=int, default=200, help="slowloris connections (default 200)")
    parser.add_argument("--timeout_s", type=float, default=10.0,
                        help="a valid request not answered within this counts as failed (default 10)")
    parser.add_argument("--max_batch", type=int, default=32, help="serve.py --max_batch (default 32)")
    parser.add_argument("--name", help="results.json entry name (default service_stress_<model folder>)")
    parser.add_argument("--record", action="store_true", help="add the figures to experiments/results.json")
    args = parser.parse_args(argv)
    args.max_wait_ms, args.max_queue = 0.0, 256  # start_server's other flags: serve.py's defaults

    columns = Config.load(os.path.join(args.model_dir, "config.json")).feature_columns
    sentences = [s for s in conll.read_conll(args.input, tagged=False) if not s.docstart]
    if args.text:
        bodies = [json.dumps({"text": " ".join(s.words)}).encode() for s in sentences]
    else:
        bodies = [json.dumps({"tokens": [[t[0]] + [t[c] for c in columns] for t in s.columns]}).encode()
                  for s in sentences]
    port = free_port()
    server = start_server(args, args.model_dir, port)
    url = f"http://127.0.0.1:{port}/"
    model_name = os.path.basename(os.path.dirname(os.path.abspath(args.model_dir)))
    name = args.name or f"service_stress_{model_name}" + ("_text" if args.text else "")
    command = ("python experiments/benchmark_service_stress.py "
               + " ".join(a for a in (argv or sys.argv[1:]) if a != "--record"))
    try:
        uvloop.run(valid_clients(url, bodies, 4, 2.0, args.timeout_s))  # warm-up: graph tracing, first allocations
        baseline = uvloop.run(valid_clients(url, bodies, args.clients, args.seconds, args.timeout_s))
        rss_baseline = peak_rss_mb(server.pid)
        valid, attacks, slow = stressed(port, bodies, args)
        rss = peak_rss_mb(server.pid)
        uvloop.run(valid_clients(url, bodies, 1, 0.5, args.timeout_s))  # still serving afterwards
        import urllib.request
        with urllib.request.urlopen(url + "metrics") as response:
            metrics = response.read().decode()
    finally:
        server.terminate()
        server.wait()
    server_errors = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                        if line.startswith('ner_errors_total{code="5'))
    for phase, figures in (("alone", baseline), ("under attack", valid)):
        print(f"{name} {phase}: {args.clients} valid clients, {figures['requests_per_s']:.0f} requests/s, "
              f"{figures['success_percent']:.2f}% succeeded, p50 {figures['p50_ms']:.2f} ms, "
              f"p99 {figures['p99_ms']:.2f} ms, statuses {figures['statuses']}", file=sys.stderr)
    print(f"{name} attackers' answers by status: {dict(sorted(attacks.items(), key=str))}; slow connections "
          f"({args.slow_connections}): {dict(sorted(slow.items(), key=str))}; 5xx counted by serve.py: "
          f"{server_errors:g}; tagged {metric_sum(metrics, 'ner_sentences_total'):g} sentences", file=sys.stderr)
    print(f"{name} serve.py peak RSS: {rss_baseline:.0f} MB after the baseline, {rss:.0f} MB under attack",
          file=sys.stderr)
    if args.record:
        for metric, value, unit in (("valid_requests_per_s_alone", baseline["requests_per_s"], "requests/s"),
                                    ("valid_latency_ms_p99_alone", baseline["p99_ms"], "ms"),
                                    ("valid_requests_per_s_attacked", valid["requests_per_s"], "requests/s"),
                                    ("valid_success_percent_attacked", valid["success_percent"], "%"),
                                    ("valid_latency_ms_p99_attacked", valid["p99_ms"], "ms"),
                                    ("server_errors_5xx", server_errors, "responses"),
                                    ("peak_rss_mb_attacked", rss, "MB")):
            results.record(name, args.model_dir, args.input, metric,
                           {"clients": args.clients, "slow_connections": args.slow_connections,
                            "value": round(value, 2)}, unit, command)
        results.render()


if __name__ == "__main__":
    main()
