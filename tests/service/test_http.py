"""serve.py and http.py: answers against tag_sentences, request limits and errors,
micro-batching, overload (503, then recovery, every request answered once), a bad request or a
failing batch that fails only its own request, slow and vanishing request bodies, metrics, the web
page in headless Chromium (any Unicode text), and the command line. Issue 29: limits checked on
what a request sends before tokenizing, only small work on the event loop, bodies held at once
bounded in bytes, and one middleware answering every error in JSON, counted (cases 4-6 against a
real serve.py, case 13 in Chromium)."""
import asyncio
import html
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, folder_state
from ner.data.conll import Sentence, read_conll
from ner.data.schemes import chunk_spans
from ner.data.tokenizer import tokenize_texts
from ner.model.tagging import tag_sentences
from ner.service import http
from ner.serving.loaders import load_model

HANG_GUARD = 120  # seconds: a broken service fails the test instead of hanging the suite


@pytest.fixture(scope="module")
def model(model_dir):
    return load_model(model_dir)


@pytest.fixture(scope="module")
def test_sentences(corpus_dir):
    return [s for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart]


def reference(model, word_lists):
    """What tag_sentences says for these sentences, tagged one by one."""
    sentences = [Sentence(tuple(w), tuple((x,) for x in w), 1) for w in word_lists]
    return [(tags, [round(float(c), 4) for c in confidence])
            for tags, confidence in (tag_sentences(model, [s], "iob2", 1)[0] for s in sentences)]


def run_with_client(app, scenario):
    """Runs scenario(client) against the app served on 127.0.0.1 (a free port)."""
    async def main():
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            return await asyncio.wait_for(scenario(client), HANG_GUARD)
    return asyncio.run(main())


def run_served(app, scenario):
    """Runs scenario(port) against the app served the way serve.py serves it: web.run_app's runner
    lets a handler go on when its client disconnects, where TestServer cancels the handler."""
    async def main():
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            return await asyncio.wait_for(scenario(runner.addresses[0][1]), HANG_GUARD)
        finally:
            await runner.cleanup()
    return asyncio.run(main())


async def send_part_of_a_body(port):
    """A connection that sent a POST /tag whose Content-Length promises 100 bytes, and 10 of them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /tag HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n" + b'{"text": "')
    await writer.drain()
    return reader, writer


async def post(client, body):
    data = body if isinstance(body, bytes) else json.dumps(body)
    async with client.post("/tag", data=data, headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.json()


def metric(text, name, **labels):
    """The value of the /metrics sample with this name and exactly these labels (in any order), 0 if absent."""
    values = [sample.value for family in text_string_to_metric_families(text) for sample in family.samples
              if sample.name == name and sample.labels == labels]
    return values[0] if values else 0.0


class Gate:
    """Wraps a tag function: records each call's sentence count and can hold calls until opened."""

    def __init__(self, tag, closed=False):
        self.tag, self.calls = tag, []
        self.opened, self.entered = threading.Event(), threading.Event()
        if not closed:
            self.opened.set()

    def __call__(self, sentences):
        self.calls.append(len(sentences))
        self.entered.set()
        self.opened.wait(HANG_GUARD)
        return self.tag(sentences)


async def until(condition):
    while not condition():
        await asyncio.sleep(0.005)


def test_text_tokens_and_sentences_match_tag_sentences(model, test_sentences):
    words = [list(s.words) for s in test_sentences[:6]]
    expected = reference(model, words)
    texts = [" ".join(w) for w in words]

    async def scenario(client):
        return [await post(client, {"text": texts[0]}), await post(client, {"text": texts}),
                await post(client, {"tokens": words[0]}), await post(client, {"sentences": words}),
                await post(client, {"text": ["", "   "]})]

    answers = run_with_client(http.make_app(model, "tiny"), scenario)
    assert all(status == 200 for status, _ in answers)
    one_text, many_texts, one_tokens, many_tokens, blank = (body["sentences"] for _, body in answers)
    assert len(many_texts) == len(many_tokens) == 6 and len(one_text) == len(one_tokens) == 1
    for answer in many_tokens + many_texts + one_text + one_tokens:
        index = next(i for i, w in enumerate(words) if w == answer["tokens"])
        assert (answer["tags"], answer["confidences"]) == expected[index]
        spans = chunk_spans(answer["tags"], "iob2")
        assert [(e["type"], e["token_start"], e["token_end"]) for e in answer["entities"]] == spans
    for answer, text in zip(many_texts, texts):
        assert answer["text"] == text
        assert answer["tokens"] == [t for t, _, _ in tokenize_texts([text])[0]]
        for entity in answer["entities"]:
            assert text[entity["start"]:entity["end"]] == entity["text"]
    assert blank == [{"text": "", "tokens": [], "tags": [], "confidences": [], "entities": []},
                     {"text": "   ", "tokens": [], "tags": [], "confidences": [], "entities": []}]


def test_model_with_feature_columns_takes_column_tokens(feature_model_dir, test_sentences):
    model = load_model(feature_model_dir)
    sentences = test_sentences[:4]
    expected = tag_sentences(model, sentences, "iob2", 2)

    async def scenario(client):
        return [await post(client, {"sentences": [[list(t[:-1]) for t in s.columns] for s in sentences]}),
                await post(client, {"text": "Paris is nice"}),
                await post(client, {"tokens": [["Paris", "NNP"]]}),
                await post(client, {"tokens": [["Paris", "NNP", "B-NP"], ["is", "VBZ", "B-VP\ud800"]]})]

    (ok, body), (text_status, text_error), (short_status, short_error), (column_status, column_error) = \
        run_with_client(http.make_app(model, "tiny_features"), scenario)
    assert ok == 200
    assert [a["tags"] for a in body["sentences"]] == [tags for tags, _ in expected]
    assert text_status == 400 and "feature columns" in text_error["error"]
    assert short_status == 400 and "sentence 0 token 0" in short_error["error"]
    assert column_status == 400 and "sentence 0 token 1 column 2: character 4 is U+D800" in column_error["error"]


@pytest.mark.parametrize("body, status, message", [
    (b'{"text": ["a", ', 400, "invalid JSON at line 1 column 16"),
    (b'\xff{}', 400, "expected UTF-8 JSON, found byte 0xff"),
    (b'[1, 2]', 400, 'one key: "text"'),
    (b'{"text": "a", "tokens": ["a"]}', 400, 'one key: "text"'),
    (b'{"text": 5}', 400, '"text": expected a list'),
    (b'{"text": [5]}', 400, "text 0: expected a string"),
    (b'{"tokens": ["a", ""]}', 400, "sentence 0 token 1: expected non-empty strings"),
    (b'{"tokens": ["a", 3]}', 400, "sentence 0 token 1: expected a word"),
    (b'{"sentences": ["a b"]}', 400, "sentence 0: expected a list of tokens"),
    (b'{"sentences": ' + json.dumps([["a"]] * 5).encode() + b"}", 413, "5 sentences; at most 4"),
    (b'{"tokens": ' + json.dumps(["a"] * 9).encode() + b"}", 413, "sentence 0: 9 tokens; at most 8"),
    (b'{"text": "' + b"a " * 9 + b'"}', 413, "text 0: at least 9 tokens; at most 8"),  # before tokenizing
    (b'{"text": "' + b"$" * 9 + b'"}', 413, "text 0: 9 tokens; at most 8"),  # one run: known once tokenized
    (b'{"text": "' + b"a" * 300 + b'"}', 413,
     "request body of 312 bytes (its Content-Length); at most 256 (serve.py --max_body_bytes raises it)"),
    (b'{"text": "' + b"a" * 101 + b'"}', 413, "text 0: 101 characters; at most 100 (serve.py --max_text_chars raises it)"),
    (b'{"tokens": 1e999}', 400, "sentence 0: expected a list of tokens"),
    (b'{"tokens": ["a", "b", "\\ud800"]}', 400, "sentence 0 token 2: character 0 is U+D800, a lone surrogate"),
    (b'{"sentences": [["a"], ["b\\udfff"]]}', 400, "sentence 1 token 0: character 1 is U+DFFF"),
    (b'{"text": ["a", "Anna \\ud800 b"]}', 400, "text 1: character 5 is U+D800"),
    (b'{"tokens": ["a\\u0000b"]}', 400, "sentence 0 token 0: character 1 is U+0000 (NUL)"),
    (b'[' * 100000 + b']' * 100000, 413, "request body of 200000 bytes (its Content-Length); at most 256"),
])
def test_bad_requests_get_a_status_and_a_message(model, body, status, message):
    limits = http.Limits(max_body_bytes=256, max_sentences=4, max_tokens=8, max_text_chars=100)

    async def scenario(client):
        return await post(client, body)

    answer_status, answer = run_with_client(http.make_app(model, "tiny", limits=limits), scenario)
    assert (answer_status, message in answer["error"]) == (status, True), answer


def test_deeply_nested_json_is_a_clear_400(model):
    async def scenario(client):
        return await post(client, b"[" * 200000 + b"]" * 200000)

    status, answer = run_with_client(http.make_app(model, "tiny"), scenario)
    assert status == 400 and "nested too deeply" in answer["error"]


def test_health_metrics_and_unknown_paths(model):
    async def scenario(client):
        await post(client, {"text": "Klaus met Anna in Lisbon"})
        await post(client, {"text": ["one", "two", "three"]})
        await post(client, b"{")
        health = await (await client.get("/health")).json()
        missing = await client.get("/nowhere")
        wrong_method = await client.get("/tag")
        page = await client.get("/")
        metrics = await client.get("/metrics")
        return (health, (missing.status, await missing.json()), wrong_method.status,
                (page.status, await page.text()), metrics.headers["Content-Type"], await metrics.text())

    health, missing, wrong_method, page, content_type, text = run_with_client(
        http.make_app(model, "runs/tiny"), scenario)
    assert health == {"status": "ok", "model": "runs/tiny", "queued": 0, "feature_columns": []}
    assert missing == (404, {"error": "Not Found"}) and wrong_method == 405
    assert page[0] == 200 and "<textarea" in page[1]
    assert content_type.startswith("text/plain")
    assert metric(text, "ner_requests_total", path="/tag", code="200") == 2
    assert metric(text, "ner_requests_total", path="/tag", code="400") == 1
    assert metric(text, "ner_requests_total", path="/health", code="200") == 1
    assert metric(text, "ner_errors_total", code="400", reason="bad_request") == 1
    assert metric(text, "ner_errors_total", code="404", reason="not_found") == 1
    assert metric(text, "ner_errors_total", code="405", reason="method_not_allowed") == 1
    assert metric(text, "ner_sentences_total") == 4
    assert metric(text, "ner_request_duration_seconds_count") == 3
    assert metric(text, "ner_batch_sentences_count") == 2 and metric(text, "ner_batch_sentences_sum") == 4
    assert metric(text, "ner_batch_sentences_bucket", le="2.0") == 1  # one batch of 1, one of 3
    assert metric(text, "ner_batch_sentences_bucket", le="+Inf") == 2


async def queue_behind_gate(client, gate, words) -> list:
    """Posts the first sentence and, once its tagging call waits at the closed gate, the others,
    until all of them queue behind it: opening the gate then tags them in one batch. -> the posts."""
    first = asyncio.create_task(post(client, {"tokens": words[0]}))
    await until(gate.entered.is_set)
    rest = [asyncio.create_task(post(client, {"tokens": w})) for w in words[1:]]
    await until(lambda: client.server.app[http.BATCHER].queued == len(rest))
    return [first, *rest]


def test_concurrent_requests_are_tagged_in_one_batch(model, test_sentences):
    """While a batch is being tagged, the requests that arrive wait and then go in one call."""
    words = [list(s.words) for s in test_sentences[:10]]
    expected = reference(model, words)
    gate = Gate(lambda sentences: tag_sentences(model, sentences, "iob2", 64), closed=True)
    app = http.make_app(model, "tiny", max_batch=64, max_wait=0.0, tag=gate, inline_when_idle=False)

    async def scenario(client):
        requests = await queue_behind_gate(client, gate, words)
        metrics = await (await client.get("/metrics")).text()
        gate.opened.set()
        return await asyncio.gather(*requests), metrics

    answers, metrics = run_with_client(app, scenario)
    assert metric(metrics, "ner_queue_requests") == 9
    assert gate.calls == [1, 9]
    assert [(body["sentences"][0]["tags"], body["sentences"][0]["confidences"]) for _, body in answers] == expected


def test_overload_answers_503_then_recovers_with_every_request_answered_once(model, test_sentences):
    words = [list(s.words) for s in test_sentences[:20]]
    expected = {tuple(w): answer for w, answer in zip(words, reference(model, words))}
    gate = Gate(lambda sentences: tag_sentences(model, sentences, "iob2", 1), closed=True)
    app = http.make_app(model, "tiny", max_batch=1, max_wait=0.0, max_queue=4, tag=gate, inline_when_idle=False)

    async def scenario(client):
        first = asyncio.create_task(post(client, {"tokens": words[0]}))
        await until(gate.entered.is_set)  # the first request is being tagged and holds the worker
        crowd = [asyncio.create_task(post(client, {"tokens": w})) for w in words[1:]]
        await until(lambda: sum(task.done() for task in crowd) == len(crowd) - 4)  # all but the 4 queued
        gate.opened.set()
        overloaded = await asyncio.gather(first, *crowd)
        recovered = [await post(client, {"tokens": w}) for w in words[:10]]
        metrics = await (await client.get("/metrics")).text()
        return overloaded, recovered, metrics

    overloaded, recovered, metrics = run_with_client(app, scenario)
    statuses = [status for status, _ in overloaded]
    assert statuses.count(200) == 5 and statuses.count(503) == 15
    assert all(body == {"error": "the service is busy; retry later"} for status, body in overloaded if status == 503)
    assert [status for status, _ in recovered] == [200] * 10
    # Each answer is its own request's: tokens and tags match, none lost, none duplicated.
    for sent, (status, body) in zip(words + words[:10], overloaded + recovered):
        if status == 200:
            (answer,) = body["sentences"]
            assert answer["tokens"] == sent
            assert (answer["tags"], answer["confidences"]) == expected[tuple(sent)]
    assert sum(gate.calls) == 15 and gate.calls == [1] * 15  # 5 + 10 tagged, one call each
    assert metric(metrics, "ner_requests_total", path="/tag", code="503") == 15
    assert metric(metrics, "ner_requests_total", path="/tag", code="200") == 15
    assert metric(metrics, "ner_request_duration_seconds_count") == 30
    assert metric(metrics, "ner_queue_requests") == 0


def test_bodies_held_at_once_are_bounded_in_bytes(model, test_sentences):
    """However many clients send at once, the service holds at most max_pending_bytes of request
    bodies (read, parsed, queued or tagged): past them a request is answered 503 at once, and
    served again once the held ones are answered. One request alone is always taken."""
    words = [list(s.words) for s in test_sentences[:3]]
    bodies = [json.dumps({"tokens": w}).encode() for w in words]
    gate = Gate(lambda sentences: tag_sentences(model, sentences, "iob2", 64), closed=True)
    limits = http.Limits(max_pending_bytes=len(bodies[0]) + len(bodies[1]) - 1)
    app = http.make_app(model, "tiny", limits=limits, tag=gate, inline_when_idle=False)

    async def scenario(client):
        held = asyncio.create_task(post(client, bodies[0]))
        await until(gate.entered.is_set)  # the first request's body is held while it is tagged
        refused = await post(client, bodies[1])
        gate.opened.set()
        return await held, refused, await post(client, bodies[1]), await (await client.get("/metrics")).text()

    held, refused, after, metrics = run_with_client(app, scenario)
    assert held[0] == after[0] == 200
    assert refused == (503, {"error": f"the service holds {len(bodies[0])} bytes of requests, at most "
                                      f"{limits.max_pending_bytes} (serve.py --max_pending_bytes raises it); retry later"})
    assert metric(metrics, "ner_errors_total", code="503", reason="busy") == 1


def test_an_idle_service_tags_on_the_event_loop_and_a_busy_one_on_the_worker(model, test_sentences):
    """A request that finds nothing tagged and nothing queued is tagged at once in the event loop's
    thread; requests that arrive while the worker tags wait for it and go in one batch there."""
    words = [list(s.words) for s in test_sentences[:6]]
    expected = reference(model, words)
    threads, release = [], threading.Event()

    def tag(sentences):
        threads.append((threading.current_thread().name, len(sentences)))
        if threading.current_thread() is not threading.main_thread():
            release.wait(HANG_GUARD)  # holds the worker until the others have queued
        return tag_sentences(model, sentences, "iob2", 64)

    async def scenario(client):
        alone = [await post(client, {"tokens": w}) for w in words[:2]]
        batcher = client.server.app[http.BATCHER]
        batcher.inline_when_idle = False  # the next request takes the worker
        first = asyncio.create_task(post(client, {"tokens": words[2]}))
        await until(lambda: len(threads) == 3)
        batcher.inline_when_idle = True  # busy: these queue although inline tagging is allowed
        rest = [asyncio.create_task(post(client, {"tokens": w})) for w in words[3:]]
        await until(lambda: batcher.queued == len(rest))
        release.set()
        return alone + list(await asyncio.gather(first, *rest))

    answers = run_with_client(http.make_app(model, "tiny", max_batch=64, tag=tag), scenario)
    assert [(name == "MainThread", n) for name, n in threads] == [(True, 1), (True, 1), (False, 1), (False, 3)]
    assert [(body["sentences"][0]["tags"], body["sentences"][0]["confidences"]) for _, body in answers] == expected


def test_a_failing_tagging_call_answers_500_and_the_service_goes_on(model):
    calls = []

    def flaky(sentences):
        calls.append(len(sentences))
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return tag_sentences(model, sentences, "iob2", 8)

    async def scenario(client):
        return [await post(client, {"text": "first try"}), await post(client, {"text": "second try"}),
                await (await client.get("/metrics")).text()]

    failed, worked, metrics = run_with_client(http.make_app(model, "tiny", tag=flaky), scenario)
    assert failed == (500, {"error": "tagging failed: out of memory"})
    assert worked[0] == 200 and worked[1]["sentences"][0]["tokens"] == ["second", "try"]
    assert metric(metrics, "ner_tagging_errors_total") == 1
    assert metric(metrics, "ner_batch_retries_total") == 0  # a lone request is not tagged again


def test_a_lone_surrogate_gets_400_and_the_requests_around_it_their_tags(model, test_sentences):
    """A lone surrogate is legal JSON but no UTF-8: it used to fail the encoding of the whole
    micro-batch it was in. A surrogate pair (an emoji, escaped by json.dumps) is fine."""
    words = [list(s.words) for s in test_sentences[:40]] + [["Anna", "\U0001F600", "Lisbon"]]
    expected = reference(model, words)
    gate = Gate(lambda sentences: tag_sentences(model, sentences, "iob2", 64), closed=True)
    app = http.make_app(model, "tiny", max_batch=64, max_wait=0.0, tag=gate, inline_when_idle=False)

    async def scenario(client):
        first = asyncio.create_task(post(client, {"tokens": words[0]}))
        await until(gate.entered.is_set)  # the worker is held, so every request below joins one batch
        crowd = [asyncio.create_task(post(client, {"tokens": w})) for w in words[1:20]]
        crowd.append(asyncio.create_task(post(client, {"tokens": ["Anna", "met", "\ud800", "Klaus"]})))
        crowd += [asyncio.create_task(post(client, {"tokens": w})) for w in words[20:]]
        await until(lambda: sum(task.done() for task in crowd) + client.server.app[http.BATCHER].queued == len(crowd))
        gate.opened.set()
        return await asyncio.gather(first, *crowd)

    answers = run_with_client(app, scenario)
    bad = answers.pop(20)
    assert bad == (400, {"error": "sentence 0 token 2: character 0 is U+D800, a lone surrogate, which UTF-8 cannot encode"})
    assert [status for status, _ in answers] == [200] * len(words)
    for (_, body), (tags, confidences) in zip(answers, expected):
        assert body["sentences"][0]["tags"] == tags
        assert body["sentences"][0]["confidences"] == pytest.approx(confidences, abs=1e-3)  # padded in a batch of 40
    assert gate.calls == [1, len(words) - 1]


def test_a_failing_batch_is_tagged_again_request_by_request(model, test_sentences):
    """Whatever makes a batch's call raise fails only the request that fails alone."""
    words = [list(s.words) for s in test_sentences[:10]]
    expected = reference(model, words)
    poisoned = words[4]

    def fails_on_poisoned(sentences):
        if any(list(s.words) == poisoned for s in sentences):
            raise ValueError("cannot tag this one")
        return tag_sentences(model, sentences, "iob2", 64)

    gate = Gate(fails_on_poisoned, closed=True)
    app = http.make_app(model, "tiny", max_batch=64, max_wait=0.0, tag=gate, inline_when_idle=False)

    async def scenario(client):
        requests = await queue_behind_gate(client, gate, words)
        gate.opened.set()
        answers = await asyncio.gather(*requests)
        return answers, await (await client.get("/metrics")).text()

    answers, metrics = run_with_client(app, scenario)
    assert answers[4] == (500, {"error": "tagging failed: cannot tag this one"})
    del answers[4], expected[4]
    assert [status for status, _ in answers] == [200] * 9
    assert [(body["sentences"][0]["tags"], body["sentences"][0]["confidences"]) for _, body in answers] == expected
    assert gate.calls == [1, 9] + [1] * 9  # the first alone, the batch of 9, then each of them alone
    assert metric(metrics, "ner_tagging_errors_total") == 1
    assert metric(metrics, "ner_batch_retries_total") == 1
    assert metric(metrics, "ner_requests_total", path="/tag", code="500") == 1


class Recording:
    """The model, with each tokenize call recorded: whether the event loop's thread made it, how
    many texts and characters; a call with a text of more than `hold_over` characters waits for
    `opened`."""

    def __init__(self, model, hold_over=None):
        self.config, self._model, self.calls = model.config, model, []
        self.hold_over, self.opened, self.entered = hold_over, threading.Event(), threading.Event()

    def tokenize(self, texts):
        on_loop = threading.current_thread() is threading.main_thread()
        self.calls.append((on_loop, len(texts), sum(map(len, texts))))
        if self.hold_over is not None and max(map(len, texts)) > self.hold_over:
            self.entered.set()
            self.opened.wait(10)  # bounded: tokenized on the loop (a bug), this would stop everything
        if on_loop and sum(map(len, texts)) > http.INLINE_TEXT_CHARS:
            raise AssertionError("the event loop tokenized texts of more than INLINE_TEXT_CHARS characters")
        return self._model.tokenize(texts)


def test_the_event_loop_tokenizes_and_tags_only_what_is_provably_small(model, test_sentences):
    """Issue 29 case 4: raw texts used to be tokenized on the event loop before their token limit
    was checked, so that one large request held every other. The loop tokenizes only texts of at
    most INLINE_TEXT_CHARS characters in all, and tags only at most INLINE_TOKENS tokens; more is
    tokenized and tagged on the worker while the loop goes on answering, and a text over the token
    limit is refused."""
    recording = Recording(model, hold_over=1000)
    tag_threads = []

    def tag(sentences):
        on_loop = threading.current_thread() is threading.main_thread()
        tag_threads.append(on_loop)
        assert not on_loop or sum(map(len, sentences)) <= http.INLINE_TOKENS
        return tag_sentences(model, sentences, "iob2", 64)

    texts = [" ".join(s.words) for s in test_sentences[:200]]
    symbols = "$" * 4000  # 4,000 tokens in one run between spaces: known only once tokenized

    async def scenario(client):
        small = await post(client, {"text": texts[0]})
        many_tokens = await post(client, {"text": "a " * (http.INLINE_TOKENS + 1)})  # few characters
        large = await post(client, {"text": texts})
        tokens = await post(client, {"sentences": [t.split() for t in texts]})
        held = asyncio.create_task(post(client, {"text": [symbols] * 50}))
        await until(recording.entered.is_set)  # the worker tokenizes the first call of texts and waits
        health = await client.get("/health")  # the loop is free meanwhile
        bad = await post(client, b"{")
        recording.opened.set()
        return small, many_tokens, large, tokens, await held, health.status, bad

    small, many_tokens, large, tokens, held, health, bad = run_with_client(http.make_app(recording, "tiny", tag=tag), scenario)
    assert [status for status, _ in (small, many_tokens, large, tokens)] == [200, 200, 200, 200]
    assert held == (413, {"error": "text 0: 4000 tokens; at most 512 (serve.py --max_tokens raises it)"})
    assert (health, bad[0]) == (200, 400)
    # Inline: the small request; the 65 tokens tokenized on the loop, tagged on the worker; the 200
    # texts, the 200 tokenized sentences and the 50 texts on the worker.
    assert [on_loop for on_loop, _, _ in recording.calls] == [True, True, False, False]
    assert tag_threads == [True, False, False, False]
    # Of the 50 texts of 4,000 characters, only the first call's (TOKENIZE_CALL_CHARS) are tokenized.
    assert recording.calls[3][1:] == (2, 8000)


def test_an_unexpected_error_is_a_json_500_counted_and_logged_once(model, caplog):
    """What nobody foresaw (here: the tokenizer raising) is answered by the same middleware as
    every other error: JSON, counted with reason "internal", its traceback logged once."""
    class Broken(Recording):
        def tokenize(self, texts):
            raise RuntimeError("the tokenizer broke")

    async def scenario(client):
        return (await post(client, {"text": "Anna"}), await post(client, {"text": ["Anna"] * 200}),
                await post(client, {"tokens": ["Anna"]}), await (await client.get("/metrics")).text())

    inline, on_worker, tokens, metrics = run_with_client(
        http.make_app(Broken(model), "tiny", tag=lambda sentences: tag_sentences(model, sentences, "iob2", 64)), scenario)
    assert inline == on_worker == (500, {"error": "internal error (the service's log has its traceback)"})
    assert tokens[0] == 200
    assert metric(metrics, "ner_errors_total", code="500", reason="internal") == 2
    assert metric(metrics, "ner_requests_total", path="/tag", code="500") == 2
    logged = [record for record in caplog.records if record.exc_info]
    assert [record.getMessage() for record in logged] == ["POST /tag: unexpected error"] * 2
    assert [str(record.exc_info[1]) for record in logged] == ["the tokenizer broke"] * 2


def test_a_body_shorter_than_its_content_length_gets_408(model):
    app = http.make_app(model, "tiny", limits=http.Limits(body_timeout_s=0.5))

    async def scenario(port):
        reader, writer = await send_part_of_a_body(port)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)  # generous: the timeout is 0.5 s
        length = int(re.search(rb"\r\nContent-Length: (\d+)", head)[1])
        body = json.loads(await reader.readexactly(length))
        writer.close()
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            after = await post(session, {"text": "still serving"})
            metrics = await (await session.get("/metrics")).text()
        return head, body, after, metrics

    head, body, after, metrics = run_served(app, scenario)
    assert head.startswith(b"HTTP/1.1 408 ") and b"\r\nConnection: close\r\n" in head
    assert body == {"error": "request body incomplete after 0.5 s: 10 of 100 bytes arrived"}
    assert after[0] == 200
    assert metric(metrics, "ner_requests_total", path="/tag", code="408") == 1


def test_a_client_that_disconnects_mid_body_logs_one_line(model, caplog):
    caplog.set_level(logging.INFO)
    app = http.make_app(model, "tiny")

    async def scenario(port):
        _, writer = await send_part_of_a_body(port)
        writer.close()
        await until(lambda: any(record.exc_info or record.name == "ner.service.http" for record in caplog.records))
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            after = await post(session, {"text": "still serving"})
            metrics = await (await session.get("/metrics")).text()
        return after, metrics

    after, metrics = run_served(app, scenario)
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []  # no traceback
    assert [record.getMessage() for record in caplog.records if record.name == "ner.service.http"] == [
        "POST /tag: the client at 127.0.0.1 disconnected after 10 of 100 bytes of the body"]
    assert after[0] == 200
    assert metric(metrics, "ner_requests_total", path="/tag", code="499") == 1


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(chromium() is None,
                                    reason="Debian's chromium package is not installed (.ci/run installs it)")


async def open_page(client, texts, tmp_path, screenshot=None) -> str:
    """The page's DOM once headless Chromium opened /?text=<the texts, a line each> (which tags them
    at once); with `screenshot`, a 1000x600 PNG of it is written there too."""
    from urllib.parse import quote
    chrome = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--virtual-time-budget=20000", f"--user-data-dir={tmp_path / 'profile'}"]
    url = str(client.make_url("/")) + "?text=" + quote("\n".join(texts))
    dom = None
    for extra in (["--dump-dom"], [f"--screenshot={screenshot}", "--window-size=1000,600"] if screenshot else None):
        if extra is None:
            continue
        process = await asyncio.create_subprocess_exec(*chrome, *extra, url, stdout=subprocess.PIPE,
                                                       stderr=subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode(errors="replace")
        dom = dom or out.decode()
    return dom


def page_marks(dom) -> list[tuple[str, str]]:
    """(entity type, highlighted text) of each <mark> on the page, in order."""
    return [(kind, html.unescape(text)) for kind, text in
            re.findall(r'<mark data-type="([^"]+)" title="[^"]*">([^<]*)</mark>', dom)]


def page_lines(dom) -> list[str]:
    """The text of each result line on the page."""
    lines = re.findall(r"<p>(.*?)</p>", dom.split('id="result"', 1)[1])
    return [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in lines]


@needs_chromium
def test_web_page_highlights_entities_in_headless_chromium(model, test_sentences, tmp_path):
    async def scenario(client):
        # Sentences from the synthetic corpus in which the tiny model finds entities.
        texts = [" ".join(s.words) for s in test_sentences[:40]]
        _, body = await post(client, {"text": texts})
        chosen = [a for a in body["sentences"] if a["entities"]][:3]
        return chosen, await open_page(client, [a["text"] for a in chosen], tmp_path, tmp_path / "page.png")

    chosen, dom = run_with_client(http.make_app(model, "tiny"), scenario)
    assert chosen, "the tiny model found no entity in the test sentences"
    assert page_marks(dom) == [(e["type"], e["text"]) for a in chosen for e in a["entities"]]
    assert page_lines(dom) == [a["text"] for a in chosen]
    png = (tmp_path / "page.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1000, 600)


# Words a stand-in tagger marks, so that the page is tested on entities placed around characters
# that JavaScript counts otherwise than the service: outside the BMP (two UTF-16 units: an emoji, a
# ZWJ family of several), a combining mark (NFD u + U+0308) and CJK (one unit each, no spaces).
STAND_IN_ENTITIES = {"Angela": "B-PER", "Merkel": "I-PER", "Paris": "B-LOC", "Zu\u0308rich": "B-LOC",
                     "\u6771\u4eac": "B-LOC", "\U00020BB7\u91ce\u5bb6": "B-ORG"}


def stand_in_tagger(sentences):
    return [([STAND_IN_ENTITIES.get(word, "O") for word in s.words], [0.5] * len(s.words)) for s in sentences]


@needs_chromium
def test_web_page_highlights_the_right_characters_in_any_unicode_text(model, tmp_path):
    """The service's offsets are code points; the page slices the text by code points, not by
    JavaScript's UTF-16 units, so every highlight holds its entity's characters exactly."""
    texts = ["\U0001F600 Angela Merkel flew to Paris.",
             "Caf\u00e9 cre\u0300me in Zu\u0308rich \U0001F469\u200d\U0001F469\u200d\U0001F467 with Angela Merkel",
             "\u6771\u4eac\U0001F600\u3067 \U00020BB7\u91ce\u5bb6 Paris"]

    async def scenario(client):
        _, body = await post(client, {"text": texts})
        return body["sentences"], await open_page(client, texts, tmp_path)

    answers, dom = run_with_client(http.make_app(model, "stand-in", tag=stand_in_tagger), scenario)
    assert [e["text"] for a in answers for e in a["entities"]] == [
        "Angela Merkel", "Paris", "Zu\u0308rich", "Angela Merkel", "\u6771\u4eac", "\U00020BB7\u91ce\u5bb6", "Paris"]
    assert page_marks(dom) == [(e["type"], e["text"]) for a in answers for e in a["entities"]]
    assert page_lines(dom) == texts


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port):
    """(address, port) of the listening TCP sockets on `port`, from /proc/net/tcp."""
    found = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:
                found.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


class Served:
    """serve.py running in a subprocess: its port, and the lines of its stderr so far."""

    def __init__(self, process, port):
        self.process, self.port, self.stderr = process, port, []
        self._reader = threading.Thread(target=lambda: self.stderr.extend(process.stderr), daemon=True)

    def peak_rss_mb(self) -> float:
        """serve.py's peak resident memory so far (VmHWM)."""
        with open(f"/proc/{self.process.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

    def request(self, head: bytes, body: bytes = b"") -> tuple[int, dict, dict]:
        """Sends a request as given (request line and headers, without the blank line) -> status,
        headers and JSON body of the answer."""
        import http.client
        with socket.create_connection(("127.0.0.1", self.port), timeout=HANG_GUARD) as connection:
            connection.sendall(head + b"\r\n\r\n" + body)
            response = http.client.HTTPResponse(connection)
            response.begin()
            return response.status, dict(response.getheaders()), json.loads(response.read())

    def post(self, body: bytes, *headers: bytes) -> tuple[int, dict, dict]:
        return self.request(b"\r\n".join([b"POST /tag HTTP/1.1", b"Host: 127.0.0.1", b"Content-Type: application/json",
                                           b"Content-Length: %d" % len(body), *headers]), body)

    def metrics(self) -> str:
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics") as response:
            return response.read().decode()


@pytest.fixture(scope="module")
def served(frozen_dir):
    """serve.py on the tiny frozen folder, for every test of the real command; stopped by SIGINT,
    with exit status 0, when the module's tests are done."""
    port = free_port()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), "--model_dir", frozen_dir,
                                "--port", str(port)], stderr=subprocess.PIPE, cwd=ROOT)
    server = Served(process, port)
    try:
        for line in process.stderr:  # waits for the line that says it listens
            server.stderr.append(line)
            if b"serving" in line:
                break
        server._reader.start()
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(HANG_GUARD) == 0


def test_serve_py_binds_loopback_and_tags(served):
    assert listening_addresses(served.port) == ["127.0.0.1"]
    status, _, body = served.post(b'{"text": "Anna lives in Lisbon"}')
    assert status == 200 and body["sentences"][0]["tokens"] == ["Anna", "lives", "in", "Lisbon"]



def test_serve_py_answers_client_mistakes_at_once_with_4xx_in_json(served, frozen_dir):
    """Issue 29 cases 4-6: a body with more than Python's 4,300 digits in a number, a
    Content-Encoding the body does not have, a Content-Length over the limit (nothing sent after
    the headers: refused at once, not after the body timeout), and raw texts of thousands of
    tokens are 4xx in JSON, counted in /metrics, with nothing in the log; raw texts are refused by
    their characters before tokenizing, or tokenized in memory that grows with their length; the
    service goes on tagging and writes nothing into the model folder."""
    before, metrics_before, log_before = folder_state(frozen_dir), served.metrics(), len(served.stderr)
    served.post(b'{"text": "warm up"}')
    rss_before = served.peak_rss_mb()
    paris = "Paris " * 3400  # 20,400 characters, 3,400 tokens: 50 of them fit the 1 MiB body
    answers = [served.post(b'{"tokens": 1' + b"0" * 5000 + b"}"),
               served.post(b'{"text": "Anna"}', b"Content-Encoding: gzip"),
               served.request(b"POST /tag HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999"),
               served.post(json.dumps({"text": [paris] * 50}).encode()),
               served.post(json.dumps({"text": [paris[:4000]] * 50}).encode())]
    tagged = served.post(b'{"text": "Anna lives in Lisbon"}')
    rss_after = served.peak_rss_mb()
    assert [(status, headers["Content-Type"]) for status, headers, _ in answers] == [
        (400, "application/json; charset=utf-8"), (415, "application/json; charset=utf-8"),
        (413, "application/json; charset=utf-8"), (413, "application/json; charset=utf-8"),
        (413, "application/json; charset=utf-8")]
    assert [body for _, _, body in answers] == [
        {"error": "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5001 "
                  "digits; use sys.set_int_max_str_digits() to increase the limit"},
        {"error": "Content-Encoding 'gzip' is not supported: send the JSON body uncompressed"},
        {"error": "request body of 99999999 bytes (its Content-Length); at most 1048576 (serve.py --max_body_bytes "
                  "raises it)"},
        {"error": "text 0: 20400 characters; at most 20000 (serve.py --max_text_chars raises it)"},
        {"error": "text 0: at least 667 tokens; at most 512 (serve.py --max_tokens raises it)"}]
    assert all(headers.get("Connection") == "close" for _, headers, _ in answers[1:3])  # their bodies were not read
    assert tagged[0] == 200 and tagged[2]["sentences"][0]["tokens"] == ["Anna", "lives", "in", "Lisbon"]
    # A NUL in raw text separates tokens, as in inference.py and the C++ runner.
    with_nul = served.post(b'{"text": "Anna\\u0000lives in Lisbon"}')
    assert with_nul[0] == 200 and with_nul[2]["sentences"][0]["tokens"] == ["Anna", "lives", "in", "Lisbon"]
    metrics = served.metrics()
    for code, reason, count in (("400", "bad_request", 1), ("415", "unsupported_media_type", 1),
                                ("413", "request_entity_too_large", 3)):
        assert (metric(metrics, "ner_errors_total", code=code, reason=reason)
                - metric(metrics_before, "ner_errors_total", code=code, reason=reason)) == count
    assert b"".join(served.stderr[log_before:]).decode() == ""
    # Memory: tokenizing 50 texts of 19,800 characters took serve.py's peak to 3.8 GB before the
    # tokenizer joined each token's clusters (a copy of its whole text per token).
    assert rss_after - rss_before < 400, (rss_before, rss_after)
    assert folder_state(frozen_dir) == before


def test_serve_py_reports_a_bad_model_folder_and_bad_flags(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "serve.py"), "--model_dir", str(tmp_path / "none")],
                          capture_output=True, cwd=ROOT)
    assert done.returncode == 1 and b"none: model folder not found" in done.stderr
    done = subprocess.run([sys.executable, os.path.join(ROOT, "serve.py"), "--model_dir", "x", "--max_queue", "0"],
                          capture_output=True, cwd=ROOT)
    assert done.returncode == 2 and b"--max_queue: expected a positive number" in done.stderr
    done = subprocess.run([sys.executable, os.path.join(ROOT, "serve.py"), "--model_dir", "x", "--body_timeout_s", "0"],
                          capture_output=True, cwd=ROOT)
    assert done.returncode == 2 and b"--body_timeout_s: expected a positive number" in done.stderr


# --- models that read document context (bert_context=document) --------------------------------

@pytest.fixture(scope="module")
def documents(corpus_dir):
    from conftest import documents_as_text
    return documents_as_text(os.path.join(corpus_dir, "test.txt"))


# Tagged in other batches, a sentence's float sums change in their last bits, and a confidence
# written with 4 decimals in its last digit.
TOLERANCE = 2e-4


def differing(answers: list[dict], references: list[dict]) -> int:
    """How many answers' confidences differ from their reference's by more than TOLERANCE; the rest
    of each answer must be equal."""
    def without_confidences(answer):
        return {**answer, "confidences": None, "entities": [{**e, "confidence": None} for e in answer["entities"]]}
    assert [without_confidences(a) for a in answers] == [without_confidences(r) for r in references]
    return sum(a["confidences"] != pytest.approx(r["confidences"], abs=TOLERANCE) for a, r in zip(answers, references))


def test_a_request_is_one_document_as_inference_py_tags_a_text(document_model_dir, documents, tmp_path):
    """The texts of one request are read as one document: the answer is inference.py's for a file
    of those lines (a text without blank lines is one document), in the same batches; the texts
    sent one request each are read without context, and answered otherwise."""
    import inference
    texts = documents[1]
    source, out = tmp_path / "texts.txt", tmp_path / "tagged.jsonl"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    inference.main(["--model_dir", document_model_dir, "--input", str(source), "--output", str(out), "--format", "text",
                    "--json", "--batch_size", "32"])
    expected = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    model = load_model(document_model_dir)

    async def scenario(client):
        together = await post(client, {"text": texts})
        alone = [await post(client, {"text": text}) for text in texts]
        return together, alone

    (status, body), alone = run_with_client(http.make_app(model, "document", max_batch=32), scenario)
    assert status == 200 and all(status == 200 for status, _ in alone)
    assert body["sentences"] == expected
    assert differing([answer["sentences"][0] for _, answer in alone], expected) > len(texts) // 4


def test_requests_tagged_together_read_none_of_each_others_words(document_model_dir, documents):
    """Two requests in one micro-batch are two documents: each is answered as when sent alone, while
    their texts sent as one request would be read beside each other."""
    first, second = documents[5], documents[4]
    model = load_model(document_model_dir)
    gate = Gate(lambda sentences: tag_sentences(model, sentences, "iob2", 64), closed=True)
    app = http.make_app(model, "document", max_batch=64, max_wait=0.0, tag=gate, inline_when_idle=False)

    async def scenario(client):
        holding = asyncio.create_task(post(client, {"text": "Paris"}))
        await until(gate.entered.is_set)  # the worker is held: the next two requests queue
        batched = [asyncio.create_task(post(client, {"text": texts})) for texts in (first, second)]
        await until(lambda: client.server.app[http.BATCHER].queued == 2)
        gate.opened.set()
        await holding
        answers = await asyncio.gather(*batched)
        alone = [await post(client, {"text": texts}) for texts in (first, second)]
        joined = await post(client, {"text": first + second})
        return answers, alone, joined

    answers, alone, joined = run_with_client(app, scenario)
    assert gate.calls == [1, len(first) + len(second), len(first), len(second), len(first) + len(second)]
    assert all(status == 200 for status, _ in answers + alone + [joined])
    for (_, together), (_, by_itself) in zip(answers, alone):
        assert differing(together["sentences"], by_itself["sentences"]) == 0
    # What a leak would look like: the two documents read as one.
    assert differing(joined[1]["sentences"], alone[0][1]["sentences"] + alone[1][1]["sentences"]) > 0
