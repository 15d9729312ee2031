"""Serves a model over HTTP: JSON tagging with micro-batching, health, Prometheus metrics and a web page.

    ner-serve --model_dir runs/NAME/export [--host 127.0.0.1] [--port 8897]

POST /tag takes {"text": "a sentence" | ["sentence", ...]}, {"tokens": [word, ...]} or
{"sentences": [[word, ...], ...]} (a token may be [word, column1, ...] for models that read CoNLL
feature columns) and answers {"sentences": [{tokens, tags, confidences, entities}, ...]}. A
request is one document: a model trained with bert_context=document reads each sentence beside
the request's other sentences, never beside another request's.
GET /health, GET /metrics (Prometheus text format), GET / (paste text, see the entities).
Concurrent requests are tagged together in micro-batches; when more than --max_queue requests
wait, new ones are answered 503 at once. A request body not whole within --body_timeout_s is
answered 408: a client that sends less than its Content-Length cannot hold a connection for long.
Limits are checked on what a request sends before anything is tokenized or tagged, and every
error is JSON {"error": "..."} (413 names the flag that raises the limit).
"""
from __future__ import annotations

import argparse

from ner import cli


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True,
                        help="the model: a frozen/ folder (ner-freeze; fastest to start), an export/ folder (ner-export), "
                             "an onnx/ folder (ner-export --format onnx; no TensorFlow needed) or a model folder")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8897, help="port (default 8897)")
    parser.add_argument("--max_batch", type=cli.positive(int), default=32,
                        help="sentences gathered into one tagging call (default 32)")
    parser.add_argument("--max_wait_ms", type=float, default=0.0,
                        help="how long a batch waits for more requests once one arrives (default 0: under load batches "
                             "fill while the previous one is tagged, and a lone request is not held back)")
    parser.add_argument("--max_queue", type=cli.positive(int), default=256,
                        help="requests that may wait for a batch; more are answered 503 (default 256)")
    parser.add_argument("--max_body_bytes", type=cli.positive(int), default=1 << 20,
                        help="largest request body; larger ones are answered 413 (default 1 MiB)")
    parser.add_argument("--max_sentences", type=cli.positive(int), default=256,
                        help="sentences per request; more are answered 413 (default 256)")
    parser.add_argument("--max_tokens", type=cli.positive(int), default=512,
                        help="tokens per sentence; more are answered 413 (default 512)")
    parser.add_argument("--max_text_chars", type=cli.positive(int), default=20000,
                        help="characters per raw text, checked before it is tokenized; more are answered 413 "
                             "(default 20000)")
    parser.add_argument("--max_pending_bytes", type=cli.positive(int), default=32 << 20,
                        help="bytes of request bodies held at once (read, parsed, queued or tagged); a request "
                             "past them is answered 503 at once (default 32 MiB: memory stays bounded however "
                             "many clients send)")
    parser.add_argument("--body_timeout_s", type=cli.positive(float), default=5.0,
                        help="seconds a request body may take to arrive, counted once its headers have; a body "
                             "still incomplete then is answered 408 (default 5)")
    args = cli.parse_args(parser, argv)
    if not 0 <= args.max_wait_ms < float("inf"):
        parser.error("--max_wait_ms: expected 0 or more")

    # TensorFlow and aiohttp load only once the arguments are known good.
    with cli.user_errors():
        from ner import tf_options
        tf_options.prefer_plain_cpu_kernels()  # must precede TensorFlow's first import
        from ner.service.http import Limits, serve
        limits = Limits(max_body_bytes=args.max_body_bytes, max_sentences=args.max_sentences,
                        max_tokens=args.max_tokens, max_text_chars=args.max_text_chars,
                        max_pending_bytes=args.max_pending_bytes, body_timeout_s=args.body_timeout_s)
        serve(args.model_dir, args.host, args.port, args.max_batch, args.max_wait_ms / 1000, args.max_queue, limits)

