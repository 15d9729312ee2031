"""The HTTP tagging service that serve.py runs: request validation and limits, micro-batching of
concurrent requests into one tagging call, a bounded queue, Prometheus metrics and the web page.

    POST /tag     {"text": "one sentence" | ["sentence", ...]}        raw text, tokenized by the model's graph
                  {"tokens": [token, ...]}                             one tokenized sentence
                  {"sentences": [[token, ...], ...]}                   many tokenized sentences
                  a token is a word, or [word, column1, column2, ...] for models that read CoNLL
                  feature columns; the answer is {"sentences": [...]}, one object per sentence in
                  order (tokens, tags, confidences, entities: see ner.data.render.describe).
    GET  /health  {"status": "ok", ...}
    GET  /metrics Prometheus text format
    GET  /        the web page (web/index.html)

Each request is one document: a model that reads document context (bert_context=document) reads
each of its sentences beside the others, in request order, and never beside another request's.

Tagging runs on one worker thread, so the event loop keeps accepting requests while a batch is
tagged; requests that arrive meanwhile wait in a bounded queue and form the next batch. A request
that finds the service idle (nothing tagged, nothing queued, no other request arriving in the same
turn of the loop) is tagged at once on the event loop: there is nothing to batch it with, and
that saves two thread hand-offs. A batch whose tagging call raises is tagged again request by
request, so that one bad request fails alone.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ner.data.conll import Sentence, check_text_input
from ner.data.render import describe
from ner.data.text import TextLine, Tokenize, text_sentences
from ner.model.tagging import tag_sentences

WEB_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web", "index.html")
SCHEME = "iob2"
BATCHER = web.AppKey("batcher", object)
METRICS = web.AppKey("metrics", object)
MODEL = web.AppKey("model", object)
MODEL_DIR = web.AppKey("model_dir", str)
LIMITS = web.AppKey("limits", object)
PAGE = web.AppKey("page", str)
log = logging.getLogger(__name__)


@dataclass
class Limits:
    max_body_bytes: int = 1 << 20  # a larger request is answered 413
    max_sentences: int = 256       # per request (413)
    max_tokens: int = 512          # per sentence (413)
    max_text_chars: int = 20000    # per raw-text sentence (413)
    body_timeout_s: float = 5.0    # from the headers; a body not whole by then is answered 408


class RequestError(Exception):
    """A request the service refuses: HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Item:
    """One sentence of a request; text and offsets only for raw-text input."""
    sentence: Sentence
    text: str | None = None
    offsets: tuple[tuple[int, int], ...] | None = None


def _check_encodable(text: str, where: str):
    """Refuses what JSON carries but the model cannot take: a lone surrogate (JSON "\\ud800") is no
    UTF-8, so TensorFlow would fail to encode the whole micro-batch around it, and a NUL ends a C
    string, so the C++ runner (frozen folders) would read a shorter token or refuse an empty one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RequestError(400, f"{where}: character {e.start} is U+{ord(text[e.start]):04X}, a lone surrogate, "
                                "which UTF-8 cannot encode") from None
    if "\0" in text:
        raise RequestError(400, f"{where}: character {text.index(chr(0))} is U+0000 (NUL), which the C++ runner's "
                                "strings cannot carry")


def _parse_token(token, where: str, width: int) -> tuple[str, ...]:
    fields = (token,) if isinstance(token, str) else token
    if not isinstance(fields, list | tuple) or not all(isinstance(f, str) for f in fields) or not fields:
        raise RequestError(400, f"{where}: expected a word or a list of column strings, found {json.dumps(token)[:80]}")
    if not all(fields):
        raise RequestError(400, f"{where}: expected non-empty strings")
    if len(fields) < width:
        raise RequestError(400, f"{where}: the model reads CoNLL column {width - 1}; expected [word, column1, ..., "
                                f"column{width - 1}], found {len(fields)} field(s)")
    for column, field in enumerate(fields):
        _check_encodable(field, f"{where} column {column}" if column else where)
    return tuple(fields)


def _tokenized(sentence, number: int, limits: Limits, feature_columns: list[int]) -> Item:
    if not isinstance(sentence, list):
        raise RequestError(400, f"sentence {number}: expected a list of tokens")
    if len(sentence) > limits.max_tokens:
        raise RequestError(413, f"sentence {number}: {len(sentence)} tokens; at most {limits.max_tokens}")
    width = max(feature_columns, default=0) + 1  # fields each token needs: the word and the columns read
    columns = tuple(_parse_token(t, f"sentence {number} token {i}", width) for i, t in enumerate(sentence))
    lines = tuple(" ".join(fields) for fields in columns)
    return Item(Sentence(lines, columns, first_line=number + 1))


def _raw_text(text, number: int, limits: Limits, feature_columns: list[int]) -> TextLine:
    if not isinstance(text, str):
        raise RequestError(400, f"text {number}: expected a string")
    if len(text) > limits.max_text_chars:
        raise RequestError(413, f"text {number}: {len(text)} characters; at most {limits.max_text_chars}")
    _check_encodable(text, f"text {number}")
    try:
        check_text_input(feature_columns, "the model")
    except ValueError as e:
        raise RequestError(400, f"{e}: send \"sentences\" of [word, column1, ...] tokens") from None
    return TextLine(text, number + 1)


def _tokenized_texts(lines: list[TextLine], tokenize: Tokenize, limits: Limits) -> list[Item]:
    """The texts of a request as sentences, tokenized in one call of the model's tokenizer (a
    fraction of a millisecond: on the event loop, it saves the hop to the tagging thread)."""
    items = []
    for number, sentence in enumerate(text_sentences(lines, tokenize)):
        if len(sentence.sentence) > limits.max_tokens:
            raise RequestError(413, f"text {number}: {len(sentence.sentence)} tokens; at most {limits.max_tokens}")
        items.append(Item(sentence.sentence, sentence.text, sentence.offsets))
    return items


def parse_request(body: bytes, limits: Limits, feature_columns: list[int], tokenize: Tokenize) -> list[Item]:
    """The sentences of a POST /tag body, or RequestError saying what is wrong with it; raw texts
    are tokenized with `tokenize` (the model's)."""
    try:
        request = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestError(400, f"expected UTF-8 JSON, found byte 0x{body[e.start]:02x} at offset {e.start}") from None
    except json.JSONDecodeError as e:
        raise RequestError(400, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise RequestError(400, "invalid JSON: nested too deeply") from None
    keys = ("text", "tokens", "sentences")
    given = [key for key in keys if isinstance(request, dict) and key in request]
    if len(given) != 1 or len(request) != 1:
        raise RequestError(400, 'expected a JSON object with one key: "text" (a string or a list of strings), '
                                '"tokens" (one tokenized sentence) or "sentences" (a list of tokenized sentences)')
    key, value = given[0], request[given[0]]
    if key == "text" and isinstance(value, str):
        value = [value]
    if key == "tokens":
        value = [value]
    if not isinstance(value, list):
        raise RequestError(400, f'"{key}": expected a list')
    if len(value) > limits.max_sentences:
        raise RequestError(413, f"{len(value)} sentences; at most {limits.max_sentences} per request")
    if key == "text":
        return _tokenized_texts([_raw_text(text, number, limits, feature_columns) for number, text in enumerate(value)],
                                tokenize, limits)
    return [_tokenized(sentence, number, limits, feature_columns) for number, sentence in enumerate(value)]


class Metrics:
    """What /metrics reports, in a registry of its own: tests build many apps in one process, and
    their metrics would collide by name in prometheus_client's global registry. A counter's name
    gets `_total` when exposed, so ner_requests is exposed as ner_requests_total."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.responses = Counter("ner_requests", "Requests answered, by path and HTTP status.", ["path", "code"],
                                 registry=self.registry)
        self.errors = Counter("ner_errors", "Requests answered with a 4xx or 5xx status.", registry=self.registry)
        self.tagging_errors = Counter("ner_tagging_errors", "Requests answered 500 because tagging them raised "
                                      "(alone: a micro-batch whose call raises is retried request by request).",
                                      registry=self.registry)
        self.batch_retries = Counter("ner_batch_retries", "Micro-batches of several requests whose tagging call "
                                     "raised, so that each request was tagged again alone.", registry=self.registry)
        self.sentences = Counter("ner_sentences", "Sentences tagged.", registry=self.registry)
        self.queued = Gauge("ner_queue_requests", "Requests waiting for a batch.", registry=self.registry)
        self.latency = Histogram("ner_request_duration_seconds", "Time to answer POST /tag.", registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.batch_sentences = Histogram("ner_batch_sentences", "Sentences per tagging call (micro-batch).",
                                         registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.batch_requests = Histogram("ner_batch_requests", "Requests per tagging call (micro-batch).",
                                        registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

    def answered(self, path: str, status: int):
        """Counts one answer, and a 4xx or 5xx one as an error too."""
        self.responses.labels(path, str(status)).inc()
        if status >= 400:
            self.errors.inc()


class QueueFull(Exception):
    pass


class MicroBatcher:
    """Gathers the sentences of concurrent requests into one call of `tag` (sentences -> results in
    order), run on one worker thread. A batch starts with the oldest waiting request and takes the
    ones behind it until it holds max_batch sentences or max_wait seconds have passed; a request is
    never split. At most max_queue requests wait; one more raises QueueFull. When a batch's call
    raises, each of its requests is tagged again alone, so that only a request that fails by itself
    is answered 500. Each request is one document: its sentences get its position in the batch as
    their document number, so that requests tagged together never read each other's words."""

    def __init__(self, tag, max_batch: int, max_wait: float, max_queue: int, metrics: Metrics,
                 inline_when_idle: bool = True):
        self._tag, self.max_batch, self.max_wait = tag, max_batch, max_wait
        self._queue: asyncio.Queue = asyncio.Queue(max_queue)
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tagging")
        self._task: asyncio.Task | None = None
        self.inline_when_idle = inline_when_idle
        self._idle = False  # the batching task waits for a first request: no batch is gathered or tagged
        self._inline_claimed = False  # a request waits one loop turn to be tagged inline

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self):
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        while not self._queue.empty():  # answer whoever still waits
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RequestError(503, "the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def tag(self, sentences: list[Sentence]) -> list:
        if self.inline_when_idle and self._idle and not self._inline_claimed and self._queue.empty():
            self._inline_claimed = True
            try:
                # One turn of the loop first: requests read together (under load) reach the queue and go
                # in one batch, where tagging each here in turn would leave every batch one sentence.
                await asyncio.sleep(0)
                if self._idle and self._queue.empty():
                    return self._tag_alone(sentences)
            finally:
                self._inline_claimed = False
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((sentences, future))
        except asyncio.QueueFull:
            raise QueueFull() from None
        return await future

    async def _gather(self) -> list:
        self._idle = True
        try:
            batch = [await self._queue.get()]
        finally:
            self._idle = False
        size = len(batch[0][0])
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch:
            if self._queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()
            batch.append(item)
            size += len(item[0])
        return batch

    async def _run(self):
        while True:
            batch = await self._gather()
            if await self._tag_and_answer(batch):
                continue
            self._metrics.batch_retries.inc()
            for request, future in batch:
                if not future.done():  # done: its client has gone
                    await self._tag_and_answer([(request, future)])

    def _tag_alone(self, sentences: list[Sentence]) -> list:
        """One request tagged here and now, on the event loop; RequestError 500 if tagging raises."""
        sentences = _as_documents([sentences])
        try:
            results = self._tag(sentences)
        except Exception as error:
            raise self._failed(error) from None
        self._tagged(sentences, 1)
        return results

    def _failed(self, error: Exception) -> RequestError:
        """The 500 for a lone request whose tagging raised, counted."""
        self._metrics.tagging_errors.inc()
        return RequestError(500, f"tagging failed: {error}")

    def _tagged(self, sentences: list[Sentence], requests: int):
        self._metrics.batch_sentences.observe(len(sentences))
        self._metrics.batch_requests.observe(requests)
        self._metrics.sentences.inc(len(sentences))

    async def _tag_and_answer(self, batch: list) -> bool:
        """Tags the batch in one call on the worker thread and answers its requests. False when the
        call raised for several requests, which are left for the caller to retry; a lone request that
        fails is answered 500 here, and the service goes on."""
        sentences = _as_documents([request for request, _ in batch])
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self._tag, sentences)
        except Exception as error:
            if len(batch) > 1:
                return False
            future = batch[0][1]
            if not future.done():
                future.set_exception(self._failed(error))
            return True
        self._tagged(sentences, len(batch))
        position = 0
        for request, future in batch:
            if not future.done():  # done: its client has gone
                future.set_result(results[position:position + len(request)])
            position += len(request)
        return True


def _as_documents(requests: list[list[Sentence]]) -> list[Sentence]:
    """The requests' sentences in order, each request one document (numbered by its position)."""
    return [sentence if sentence.document == document else replace(sentence, document=document)
            for document, request in enumerate(requests) for sentence in request]


def _error(status: int, message: str, **headers) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def _count_and_explain(request: web.Request, handler):
    """Counts every answer by path and status for /metrics, and answers HTTP errors in JSON."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as e:
        response = _error(e.status, e.reason)
    metrics = request.app[METRICS]
    path = request.match_info.route.resource.canonical if request.match_info.route.resource else "other"
    metrics.answered(path, response.status)
    if path == "/tag":
        metrics.latency.observe(time.perf_counter() - started)
    return response


def _arrived(request: web.Request) -> str:
    """How much of the body has arrived, for a message."""
    promised = "" if request.content_length is None else f" of {request.content_length}"
    return f"{request.content.total_bytes}{promised} bytes"


async def _tag(request: web.Request) -> web.Response:
    app = request.app
    model, limits = app[MODEL], app[LIMITS]
    try:
        async with asyncio.timeout(limits.body_timeout_s):  # else a client that sends less than it promised holds on
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"request body over {limits.max_body_bytes} bytes")
    except TimeoutError:
        response = _error(408, f"request body incomplete after {limits.body_timeout_s:g} s: {_arrived(request)} arrived")
        response.force_close()  # the rest of the body may still come; the connection cannot serve another request
        return response
    except ConnectionError:
        log.warning("POST /tag: the client at %s disconnected after %s of the body", request.remote, _arrived(request))
        return _error(499, "client closed the connection")  # nginx's status for it: nobody reads it but /metrics
    try:
        items = parse_request(body, limits, model.config.feature_columns, model.tokenize)
    except RequestError as e:
        return _error(e.status, e.message)
    to_tag = [item.sentence for item in items if len(item.sentence)]
    try:
        tagged = iter(await app[BATCHER].tag(to_tag)) if to_tag else iter(())
    except QueueFull:
        return _error(503, "the service is busy; retry later", **{"Retry-After": "1"})
    except RequestError as e:
        return _error(e.status, e.message)
    answers = []
    for item in items:
        tags, confidence = next(tagged) if len(item.sentence) else ([], [])
        answers.append(describe(item.sentence.words, tags, confidence, SCHEME, item.text, item.offsets))
    return web.json_response({"sentences": answers}, dumps=functools.partial(json.dumps, ensure_ascii=False))


async def _health(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response({"status": "ok", "model": app[MODEL_DIR], "queued": app[BATCHER].queued,
                              "feature_columns": list(app[MODEL].config.feature_columns)})


async def _metrics(request: web.Request) -> web.Response:
    text = generate_latest(request.app[METRICS].registry)
    return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=request.app[PAGE], content_type="text/html", charset="utf-8")


def make_app(model, model_dir: str, max_batch: int = 32, max_wait: float = 0.0, max_queue: int = 256,
             limits: Limits | None = None, tag=None, inline_when_idle: bool = True) -> web.Application:
    """The aiohttp application over a loaded model (ner.serving.loaders.load_model). `tag` (sentences ->
    results) defaults to tag_sentences on the model, in IOB2, max_batch sentences per call.
    inline_when_idle=False sends every request through the worker thread (a `tag` that blocks must)."""
    limits = limits or Limits()
    if tag is None:
        tag = functools.partial(tag_sentences, model, scheme=SCHEME, batch_size=max_batch)
    app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[_count_and_explain])
    app[MODEL], app[MODEL_DIR], app[LIMITS] = model, model_dir, limits
    with open(WEB_PAGE, encoding="utf-8") as f:
        app[PAGE] = f.read()
    app[METRICS] = Metrics()

    async def start_batcher(app):
        batcher = app[BATCHER] = MicroBatcher(tag, max_batch, max_wait, max_queue, app[METRICS],
                                                 inline_when_idle)
        app[METRICS].queued.set_function(lambda: batcher.queued)  # read at each scrape
        batcher.start()
        yield
        await app[BATCHER].stop()

    app.cleanup_ctx.append(start_batcher)
    app.router.add_post("/tag", _tag)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/", _page)
    return app


def serve(model_dir: str, host: str, port: int, max_batch: int, max_wait: float, max_queue: int, limits: Limits):
    """serve.py's one call: loads the model and answers requests until interrupted."""
    from ner.serving.loaders import load_model
    app = make_app(load_model(model_dir), model_dir, max_batch, max_wait, max_queue, limits)
    # run_app calls `print` once the socket listens: only then does the line say so.
    listening = f"serving {model_dir} on http://{host}:{port}/ (Ctrl-C stops)"
    # uvloop's event loop (libuv): less Python per request than asyncio's (experiments/RESULTS.md).
    web.run_app(app, host=host, port=port, access_log=None, loop=uvloop.new_event_loop(),
                print=lambda _: print(listening, file=sys.stderr, flush=True))
