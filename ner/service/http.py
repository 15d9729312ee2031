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

Bounded work on the event loop: the loop checks a request's headers (Content-Length over the
limit: 413 at once; a Content-Encoding: 415) and reads its body (at most max_body_bytes), then
checks the limits on what was sent as sent (sentences, tokens per sentence, characters per raw
text) before anything is tokenized. It parses a body of at most INLINE_BODY_BYTES itself, a
larger one on a parsing thread. Tokenizing, tagging and writing the answer run on one worker
thread, so the event loop keeps accepting requests while a batch is tagged; requests that arrive
meanwhile wait in a bounded queue and form the next batch. A request that finds the service idle
(nothing tagged, nothing queued, no other request arriving in the same turn of the loop) is
tokenized on the event loop if its texts hold at most INLINE_TEXT_CHARS characters, and tagged
there if it holds at most INLINE_TOKENS tokens: there is nothing to batch it with, and that saves
two thread hand-offs. A batch whose tagging call raises
is tagged again request by request, so that one bad request fails alone.

One middleware answers every error, whatever raised it: JSON {"error": "..."} with its status,
counted in /metrics (ner_requests_total by path and code, ner_errors_total by code and reason).
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from http import HTTPStatus

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ner.data.conll import Sentence, check_text_input
from ner.data.render import describe
from ner.data.text import TextLine, TextSentence, Tokenize, text_sentences
from ner.data.tokenizer import fewest_tokens
from ner.model.tagging import tag_sentences

WEB_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web", "index.html")
SCHEME = "iob2"
BATCHER = web.AppKey("batcher", object)
METRICS = web.AppKey("metrics", object)
MODEL = web.AppKey("model", object)
MODEL_DIR = web.AppKey("model_dir", str)
LIMITS = web.AppKey("limits", object)
PAGE = web.AppKey("page", str)
PARSER = web.AppKey("parser", ThreadPoolExecutor)
PENDING = web.AppKey("pending", object)
log = logging.getLogger(__name__)

# What the event loop may do for one request, so that no request can hold it long (measured on this
# 2-core machine; experiments/benchmark_service_stress.py shows the effect): parse a body of at most
# INLINE_BODY_BYTES (~3.5 ms; a 1 MiB body of tokens takes 170 ms, on the parsing thread), tokenize
# texts of at most INLINE_TEXT_CHARS characters in all (~2.5 ms), and tag at most INLINE_TOKENS
# tokens (~4-5 ms for a checkpoint of experiments/demo.json's model; 256 tokens took 15-21 ms).
INLINE_BODY_BYTES = 16 << 10
INLINE_TEXT_CHARS = 1000
INLINE_TOKENS = 64
# Raw texts go to the tokenizer in calls of at most this many characters (about 15 ms here), the
# token limit checked after each.
TOKENIZE_CALL_CHARS = 1 << 13


@dataclass
class Limits:
    max_body_bytes: int = 1 << 20  # a larger request is answered 413
    max_sentences: int = 256       # per request (413)
    max_tokens: int = 512          # per sentence (413)
    max_text_chars: int = 20000    # per raw text (413), checked before tokenizing
    body_timeout_s: float = 5.0    # from the headers; a body not whole by then is answered 408
    max_pending_bytes: int = 32 << 20  # of the bodies being read, parsed, queued or tagged at once (503)


def over_limit(what: str, limit: str, limits: Limits, **options) -> RequestError:
    """The 413 for what is over a limit ("text 3: 5000 characters"), naming the serve.py flag that
    raises it (each Limits field has the flag of its name)."""
    return RequestError(413, f"{what}; at most {getattr(limits, limit)} (serve.py --{limit} raises it)", **options)


class RequestError(Exception):
    """A request the service answers with an error: HTTP status, a message for the caller, a short
    reason for /metrics (by default the status's name), headers, and whether the connection must
    close (the body was not read to its end)."""

    def __init__(self, status: int, message: str, reason: str | None = None, headers: dict | None = None,
                 close: bool = False):
        super().__init__(message)
        self.status, self.message, self.headers, self.close = status, message, headers or {}, close
        self.reason = reason or _status_reason(status)


def _status_reason(status: int) -> str:
    """A status's name as a label value: 413 -> request_entity_too_large."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:  # 499 (nginx's "client closed request") is no standard status
        return "client_closed_request" if status == 499 else str(status)


@dataclass
class Item:
    """One sentence of a request; text and offsets only for raw-text input."""
    sentence: Sentence
    text: str | None = None
    offsets: tuple[tuple[int, int], ...] | None = None


def _check_encodable(text: str, where: str, raw_text: bool = False):
    """Refuses what JSON carries but the model cannot take: a lone surrogate (JSON "\\ud800") is no
    UTF-8, so TensorFlow would fail to encode the whole micro-batch around it; and in a token, a
    NUL, which ends a C string, so the C++ runner (frozen folders) would read a shorter token. In
    raw text a NUL separates tokens, as in every runtime (native.py hands it to the C API as U+0001)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RequestError(400, f"{where}: character {e.start} is U+{ord(text[e.start]):04X}, a lone surrogate, "
                                "which UTF-8 cannot encode") from None
    if "\0" in text and not raw_text:
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
    for column, text in enumerate(fields):
        _check_encodable(text, f"{where} column {column}" if column else where)
    return tuple(fields)


def _tokenized(sentence, number: int, limits: Limits, feature_columns: list[int]) -> Item:
    if not isinstance(sentence, list):
        raise RequestError(400, f"sentence {number}: expected a list of tokens")
    if len(sentence) > limits.max_tokens:
        raise over_limit(f"sentence {number}: {len(sentence)} tokens", "max_tokens", limits)
    width = max(feature_columns, default=0) + 1  # fields each token needs: the word and the columns read
    columns = tuple(_parse_token(t, f"sentence {number} token {i}", width) for i, t in enumerate(sentence))
    lines = tuple(" ".join(fields) for fields in columns)
    return Item(Sentence(lines, columns, first_line=number + 1))


def _raw_text(text, number: int, limits: Limits, feature_columns: list[int]) -> TextLine:
    if not isinstance(text, str):
        raise RequestError(400, f"text {number}: expected a string")
    if len(text) > limits.max_text_chars:
        raise over_limit(f"text {number}: {len(text)} characters", "max_text_chars", limits)
    _check_encodable(text, f"text {number}", raw_text=True)
    fewest = fewest_tokens(text)
    if fewest > limits.max_tokens:
        raise over_limit(f"text {number}: at least {fewest} tokens", "max_tokens", limits)
    try:
        check_text_input(feature_columns, "the model")
    except ValueError as e:
        raise RequestError(400, f"{e}: send \"sentences\" of [word, column1, ...] tokens") from None
    return TextLine(text, number + 1)


@dataclass
class Work:
    """One request's sentences, as the tagger takes them: `items` given (tokenized input), or raw
    `texts` that sentences() tokenizes, where it runs (the worker thread, or the event loop for a
    small request), and checks against the token limit. `text_chars`: the characters of its texts."""
    items: list[Item] | None = None
    texts: list[TextLine] = field(default_factory=list)
    tokenize: Tokenize | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self):
        self.size = len(self.items) if self.items is not None else len(self.texts)  # sentences, for batching
        self.text_chars = sum(len(line.text) for line in self.texts)

    def sentences(self) -> list[Sentence]:
        """The sentences to tag (those with a token), tokenizing raw texts the first time."""
        if self.items is None:
            self.items = [Item(s.sentence, s.text, s.offsets) for s in self._tokenized_texts()]
        return [item.sentence for item in self.items if len(item.sentence)]

    def _tokenized_texts(self) -> list[TextSentence]:
        """The texts tokenized in calls of at most TOKENIZE_CALL_CHARS characters (or one text);
        RequestError 413 for the first text over the token limit, so that a refused request costs
        the worker at most one call more than what came before it."""
        sentences, call, chars = [], [], 0
        for line in self.texts + [None]:
            if call and (line is None or chars + len(line.text) > TOKENIZE_CALL_CHARS):
                for sentence in text_sentences(call, self.tokenize):
                    if len(sentence.sentence) > self.limits.max_tokens:
                        raise over_limit(f"text {sentence.sentence.first_line - 1}: {len(sentence.sentence)} tokens",
                                         "max_tokens", self.limits)
                    sentences.append(sentence)
                call, chars = [], 0
            if line is not None:
                call.append(line)
                chars += len(line.text)
        return sentences

    def answer(self, results: list) -> bytes:
        """The JSON answer, given the tags and confidences of sentences() in order."""
        tagged = iter(results)
        answers = []
        for item in self.items:
            tags, confidence = next(tagged) if len(item.sentence) else ([], [])
            answers.append(describe(item.sentence.words, tags, confidence, SCHEME, item.text, item.offsets))
        return json.dumps({"sentences": answers}, ensure_ascii=False).encode("utf-8")


def parse_request(body: bytes, limits: Limits, feature_columns: list[int], tokenize: Tokenize) -> Work:
    """The work of a POST /tag body, or RequestError saying what is wrong with it. Every limit that
    the body itself shows is checked here; raw texts are tokenized later, by Work.sentences."""
    try:
        request = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestError(400, f"expected UTF-8 JSON, found byte 0x{body[e.start]:02x} at offset {e.start}") from None
    except json.JSONDecodeError as e:
        raise RequestError(400, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise RequestError(400, "invalid JSON: nested too deeply") from None
    except ValueError as e:  # what the JSON grammar allows but Python cannot hold: an integer of 5,000 digits
        raise RequestError(400, f"invalid JSON: {e}") from None
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
        raise over_limit(f"{len(value)} sentences", "max_sentences", limits)
    if key == "text":
        return Work(texts=[_raw_text(text, number, limits, feature_columns) for number, text in enumerate(value)],
                    tokenize=tokenize, limits=limits)
    return Work([_tokenized(sentence, number, limits, feature_columns) for number, sentence in enumerate(value)],
                limits=limits)


class Metrics:
    """What /metrics reports, in a registry of its own: tests build many apps in one process, and
    their metrics would collide by name in prometheus_client's global registry. A counter's name
    gets `_total` when exposed, so ner_requests is exposed as ner_requests_total."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.responses = Counter("ner_requests", "Requests answered, by path and HTTP status.", ["path", "code"],
                                 registry=self.registry)
        self.errors = Counter("ner_errors", "Requests answered with a 4xx or 5xx status, by status and reason "
                              "(internal: an unexpected error, logged with its traceback).", ["code", "reason"],
                              registry=self.registry)
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

    def answered(self, path: str, status: int, reason: str | None = None):
        """Counts one answer, and a 4xx or 5xx one as an error too, by its reason."""
        self.responses.labels(path, str(status)).inc()
        if status >= 400:
            self.errors.labels(str(status), reason or _status_reason(status)).inc()


class QueueFull(Exception):
    pass


class MicroBatcher:
    """Gathers the sentences of concurrent requests (Work) into one call of `tag` (sentences ->
    results in order), run on one worker thread with the tokenizing before it and the answers
    after it. A batch starts with the oldest waiting request and takes the ones behind it until it
    holds max_batch sentences or max_wait seconds have passed; a request is never split. At most
    max_queue requests wait; one more raises QueueFull. When a batch's call raises, each of its
    requests is tagged again alone, so that only a request that fails by itself is answered 500.
    Each request is one document: its sentences get its position in the batch as their document
    number, so that requests tagged together never read each other's words."""

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
                future.set_exception(RequestError(503, "the service is shutting down", "shutting_down"))
        self._executor.shutdown(wait=True)

    async def tag(self, work: Work) -> bytes:
        """The request's JSON answer; RequestError for a request refused once tokenized or whose
        tagging failed."""
        if (self.inline_when_idle and work.text_chars <= INLINE_TEXT_CHARS and self._idle
                and not self._inline_claimed and self._queue.empty()):
            self._inline_claimed = True
            try:
                # One turn of the loop first: requests read together (under load) reach the queue and go
                # in one batch, where tagging each here in turn would leave every batch one sentence.
                await asyncio.sleep(0)
                if (self._idle and self._queue.empty()
                        and sum(len(sentence) for sentence in work.sentences()) <= INLINE_TOKENS):
                    return _outcome(self._answers([work])[0])
            finally:
                self._inline_claimed = False
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((work, future))
        except asyncio.QueueFull:
            raise QueueFull() from None
        return await future

    async def _gather(self) -> list:
        self._idle = True
        try:
            batch = [await self._queue.get()]
        finally:
            self._idle = False
        size = batch[0][0].size
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
            size += item[0].size
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

    def _answers(self, works: list[Work]) -> list:
        """Each request's JSON answer, or the RequestError that refuses it (over a limit once
        tokenized, or a lone request whose tagging raised: 500), from one tagging call; raises what
        that call raised when several requests were in it, for the caller to tag each again alone."""
        outcomes, taken = [], []
        for work in works:
            try:
                sentences = work.sentences()
            except RequestError as error:
                outcomes.append(error)
                continue
            outcomes.append(None)
            if sentences:
                taken.append((len(outcomes) - 1, sentences))
        if taken:
            sentences = _as_documents([request for _, request in taken])
            try:
                results = self._tag(sentences)
            except Exception as error:
                if len(taken) > 1:
                    raise
                self._metrics.tagging_errors.inc()
                outcomes[taken[0][0]] = RequestError(500, f"tagging failed: {error}", "tagging_failed")
                taken = []
            else:
                self._tagged(sentences, len(taken))
        results_of, position = {}, 0
        for index, request in taken:
            results_of[index] = results[position:position + len(request)]
            position += len(request)
        return [outcome or work.answer(results_of.get(index, [])) for index, (work, outcome)
                in enumerate(zip(works, outcomes))]

    def _tagged(self, sentences: list[Sentence], requests: int):
        self._metrics.batch_sentences.observe(len(sentences))
        self._metrics.batch_requests.observe(requests)
        self._metrics.sentences.inc(len(sentences))

    async def _tag_and_answer(self, batch: list) -> bool:
        """Tokenizes, tags and answers the batch on the worker thread. False when the tagging call
        raised for several requests, which are left for the caller to retry; a lone request that
        fails is answered 500 here, and the service goes on."""
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._answers, [work for work, _ in batch])
        except Exception as error:
            if len(batch) > 1:
                return False
            if not batch[0][1].done():
                batch[0][1].set_exception(error)  # unexpected: the middleware answers 500 and logs it
            return True
        for (_, future), outcome in zip(batch, outcomes):
            if not future.done():  # done: its client has gone
                if isinstance(outcome, RequestError):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        return True


def _outcome(outcome):
    """An answer from MicroBatcher._answers, or its error raised."""
    if isinstance(outcome, RequestError):
        raise outcome
    return outcome


def _as_documents(requests: list[list[Sentence]]) -> list[Sentence]:
    """The requests' sentences in order, each request one document (numbered by its position)."""
    return [sentence if sentence.document == document else replace(sentence, document=document)
            for document, request in enumerate(requests) for sentence in request]


@web.middleware
async def _answer_and_count(request: web.Request, handler):
    """The one place that answers a request that failed, whatever raised: JSON {"error": ...} with
    its status, counted in /metrics by path and status and, as an error, by reason. A RequestError
    is the service's answer; aiohttp's own (404, 405) keep their status; anything else is a bug:
    500 "internal", logged once with its traceback."""
    started = time.perf_counter()
    reason = None
    try:
        response = await handler(request)
    except RequestError as e:
        response, reason = web.json_response({"error": e.message}, status=e.status, headers=e.headers), e.reason
        if e.close:
            response.force_close()  # the rest of the body may still come; the connection cannot serve another request
    except web.HTTPException as e:
        response = web.json_response({"error": e.reason}, status=e.status, headers=_kept_headers(e))
    except Exception:
        log.exception("%s %s: unexpected error", request.method, request.path)
        response, reason = web.json_response({"error": "internal error (the service's log has its traceback)"},
                                             status=500), "internal"
        response.force_close()  # what the error left unread of the request is unknown
    metrics = request.app[METRICS]
    path = request.match_info.route.resource.canonical if request.match_info.route.resource else "other"
    metrics.answered(path, response.status, reason)
    if path == "/tag":
        metrics.latency.observe(time.perf_counter() - started)
    return response


def _kept_headers(error: web.HTTPException) -> dict:
    """What an aiohttp error's headers say beyond its plain-text body (405's Allow, say)."""
    return {key: value for key, value in error.headers.items() if key not in ("Content-Type", "Content-Length")}


def _arrived(request: web.Request) -> str:
    """How much of the body has arrived, for a message."""
    promised = "" if request.content_length is None else f" of {request.content_length}"
    return f"{request.content.total_bytes}{promised} bytes"


class PendingBytes:
    """The bytes of the request bodies that the service holds (being read, parsed, queued or tagged):
    a request that would take them over the limit is answered 503 at once, unless it would be the
    only one, so that memory stays bounded however many clients send at once (a body's parsed form
    takes up to ~20 times its bytes: a 1 MiB body of tokens, 15-20 MB)."""

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0

    @contextlib.contextmanager
    def hold(self, size: int):
        if self.held and self.held + size > self.limit:
            raise RequestError(503, f"the service holds {self.held} bytes of requests, at most {self.limit} "
                                    "(serve.py --max_pending_bytes raises it); retry later", "busy",
                               {"Retry-After": "1"}, close=True)
        self.held += size
        try:
            yield
        finally:
            self.held -= size


def _check_headers(request: web.Request, limits: Limits):
    """RequestError for what the headers show, before any of the body is read: a Content-Encoding,
    a Content-Length over the limit."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Nothing to inflate means no decompression bomb, and no 500 for a body that is not what it says.
        raise RequestError(415, f"Content-Encoding {encoding[:40]!r} is not supported: send the JSON body "
                                "uncompressed", close=True)
    if request.content_length is not None and request.content_length > limits.max_body_bytes:
        raise over_limit(f"request body of {request.content_length} bytes (its Content-Length)", "max_body_bytes",
                         limits, close=True)


async def _read_body(request: web.Request, limits: Limits) -> bytes:
    """The request's body, or RequestError: over the limit as it arrives (chunked), not whole within
    body_timeout_s, or cut off by its client."""
    try:
        async with asyncio.timeout(limits.body_timeout_s):  # else a client that sends less than it promised holds on
            return await request.read()
    except web.HTTPRequestEntityTooLarge:  # a body without Content-Length (chunked) that grew past the limit
        raise RequestError(413, f"request body over {limits.max_body_bytes} bytes (serve.py --max_body_bytes "
                                "raises it)", close=True) from None
    except TimeoutError:
        raise RequestError(408, f"request body incomplete after {limits.body_timeout_s:g} s: {_arrived(request)} "
                                "arrived", close=True) from None
    except ConnectionError:
        log.warning("POST /tag: the client at %s disconnected after %s of the body", request.remote, _arrived(request))
        raise RequestError(499, "client closed the connection") from None  # nginx's status: only /metrics reads it


async def _tag(request: web.Request) -> web.Response:
    app = request.app
    model, limits = app[MODEL], app[LIMITS]
    _check_headers(request, limits)
    with app[PENDING].hold(limits.max_body_bytes if request.content_length is None else request.content_length):
        body = await _read_body(request, limits)
        parse = functools.partial(parse_request, body, limits, model.config.feature_columns, model.tokenize)
        work = parse() if len(body) <= INLINE_BODY_BYTES else await asyncio.get_running_loop().run_in_executor(
            app[PARSER], parse)
        try:
            answer = await app[BATCHER].tag(work)
        except QueueFull:
            raise RequestError(503, "the service is busy; retry later", "busy", {"Retry-After": "1"}) from None
    return web.Response(body=answer, content_type="application/json", charset="utf-8")


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
    # auto_decompress off: aiohttp would inflate a body as it arrives, before any handler could refuse
    # its Content-Encoding (415 in _read_body), and log a traceback for a body that is not what it says.
    app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[_answer_and_count],
                          handler_args={"auto_decompress": False})
    app[MODEL], app[MODEL_DIR], app[LIMITS] = model, model_dir, limits
    with open(WEB_PAGE, encoding="utf-8") as f:
        app[PAGE] = f.read()
    app[METRICS] = Metrics()
    app[PENDING] = PendingBytes(limits.max_pending_bytes)

    async def start_batcher(app):
        batcher = app[BATCHER] = MicroBatcher(tag, max_batch, max_wait, max_queue, app[METRICS],
                                                 inline_when_idle)
        app[METRICS].queued.set_function(lambda: batcher.queued)  # read at each scrape
        batcher.start()
        app[PARSER] = ThreadPoolExecutor(1, thread_name_prefix="parsing")  # bodies over INLINE_BODY_BYTES
        yield
        await app[BATCHER].stop()
        app[PARSER].shutdown(wait=True)

    app.cleanup_ctx.append(start_batcher)
    app.router.add_post("/tag", _tag)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/", _page)
    return app


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop (libuv) where it is installed: less Python per request than asyncio's
    (experiments/RESULTS.md); the serving install leaves it out (14 MB, docs/serving.md)."""
    try:
        import uvloop
    except ModuleNotFoundError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(model_dir: str, host: str, port: int, max_batch: int, max_wait: float, max_queue: int, limits: Limits):
    """serve.py's one call: loads the model and answers requests until interrupted."""
    from ner.serving.loaders import load_model
    app = make_app(load_model(model_dir), model_dir, max_batch, max_wait, max_queue, limits)
    # run_app calls `print` once the socket listens: only then does the line say so.
    listening = f"serving {model_dir} on http://{host}:{port}/ (Ctrl-C stops)"
    try:
        web.run_app(app, host=host, port=port, access_log=None, loop=event_loop(),
                    print=lambda _: print(listening, file=sys.stderr, flush=True))
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        raise OSError(f"{host}:{port}: the address is in use (another service on it?): choose a port with --port") from None
