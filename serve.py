"""Serves a model over HTTP: JSON tagging with micro-batching, health, Prometheus metrics and a web page.

    python serve.py --model_dir runs/NAME/export [--host 127.0.0.1] [--port 8897]

POST /tag takes {"text": "a sentence" | ["sentence", ...]}, {"tokens": [word, ...]} or
{"sentences": [[word, ...], ...]} (a token may be [word, column1, ...] for models that read CoNLL
feature columns) and answers {"sentences": [{tokens, tags, confidences, entities}, ...]}.
GET /health, GET /metrics (Prometheus text format), GET / (paste text, see the entities).
Concurrent requests are tagged together in micro-batches; when more than --max_queue requests
wait, new ones are answered 503 at once.
"""
from __future__ import annotations

import argparse
import sys


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, found {text}")
        return value
    return parse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True,
                        help="the model: an export/ folder (export.py), a frozen/ folder or a model folder")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8897, help="port (default 8897)")
    parser.add_argument("--max_batch", type=positive(int), default=32,
                        help="sentences gathered into one tagging call (default 32)")
    parser.add_argument("--max_wait_ms", type=float, default=2.0,
                        help="how long a batch waits for more requests once one arrives (default 2 ms)")
    parser.add_argument("--max_queue", type=positive(int), default=256,
                        help="requests that may wait for a batch; more are answered 503 (default 256)")
    parser.add_argument("--max_body_bytes", type=positive(int), default=1 << 20,
                        help="largest request body; larger ones are answered 413 (default 1 MiB)")
    parser.add_argument("--max_sentences", type=positive(int), default=256,
                        help="sentences per request; more are answered 413 (default 256)")
    parser.add_argument("--max_tokens", type=positive(int), default=512,
                        help="tokens per sentence; more are answered 413 (default 512)")
    args = parser.parse_args(argv)
    if args.max_wait_ms < 0:
        parser.error("--max_wait_ms: expected 0 or more")

    # TensorFlow and aiohttp load only once the arguments are known good.
    import tf_options
    tf_options.prefer_plain_cpu_kernels()
    from aiohttp import web

    import http_service
    from tagging import load_model
    try:
        model = load_model(args.model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from None
    limits = http_service.Limits(max_body_bytes=args.max_body_bytes, max_sentences=args.max_sentences,
                                 max_tokens=args.max_tokens)
    app = http_service.make_app(model, args.model_dir, args.max_batch, args.max_wait_ms / 1000, args.max_queue, limits)
    # run_app calls `print` once the socket listens: only then does the line say so.
    listening = f"serving {args.model_dir} on http://{args.host}:{args.port}/ (Ctrl-C stops)"
    web.run_app(app, host=args.host, port=args.port, access_log=None,
                print=lambda _: print(listening, file=sys.stderr, flush=True))


if __name__ == "__main__":
    main()
