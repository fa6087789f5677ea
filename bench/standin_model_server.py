"""A stand-in OpenAI-compatible chat-completions server with a fixed latency, for benchmarks.

    .venv/bin/python bench/standin_model_server.py --port 8011 --latency-ms 50

POST /v1/chat/completions answers after exactly --latency-ms (asyncio.sleep, so any number of
requests wait concurrently) with a deterministic reply of the shape callers expect, derived from
(messages, seed) like the scripted double (deliberation/engine/models.py):
  * the last message contains "choice_number" (a judge prompt): one digit;
  * it contains "ACCEPT or REJECT" (a parliament decision): "ACCEPT because ...";
  * anything else: a paragraph starting "The European Parliament ...".
usage carries prompt and completion token counts (whitespace words). Loopback only.

GET /stats: {"calls": N, "first": t, "last": t} (time.time() at each request's arrival; counted
before the sleep). POST /stats/reset zeroes it (and empties the --record file). GET /v1/models lists the one model. With
--record FILE the last message of each request is appended (one JSON line per call), so a bench
can replay the same prompts directly.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time

from aiohttp import web

JUDGE_MARKER = "choice_number"
DECISION_MARKER = "ACCEPT or REJECT"


def _digest(messages: list[dict], seed: object) -> int:
    text = "\x1e".join(f"{m.get('role')}\x1f{m.get('content')}" for m in messages)
    return int.from_bytes(hashlib.sha256(f"{seed}\x1d{text}".encode()).digest()[:8], "big")


def reply_for(messages: list[dict], seed: object) -> str:
    digest = _digest(messages, seed)
    ask = str(messages[-1].get("content", "")) if messages else ""
    if JUDGE_MARKER in ask:
        return str(digest % 10)
    if DECISION_MARKER in ask:
        return "ACCEPT because it brings the votes the goal needs."
    return (
        f"The European Parliament calls for a balanced compromise (draft {digest % 100000:05d}), "
        "with concrete funding, a review clause and safeguards for the groups that oppose it."
    )


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.first: float | None = None
        self.last: float | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    def as_dict(self) -> dict:
        return {"calls": self.calls, "first": self.first, "last": self.last, "max_in_flight": self.max_in_flight}


def make_app(*, latency_s: float, model: str, record: str | None) -> web.Application:
    stats = Stats()
    record_file = open(record, "a", encoding="utf-8") if record else None  # noqa: SIM115

    async def completions(request: web.Request) -> web.Response:
        now = time.time()
        stats.calls += 1
        stats.first = now if stats.first is None else stats.first
        stats.last = now
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            body = await request.json()
            messages = body.get("messages") or []
            if record_file is not None:
                record_file.write(json.dumps({"messages": messages, "seed": body.get("seed")}) + "\n")
            await asyncio.sleep(latency_s)
            text = reply_for(messages, body.get("seed"))
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
            completion_tokens = len(text.split())
            return web.json_response(
                {
                    "id": f"chatcmpl-standin-{stats.calls}",
                    "object": "chat.completion",
                    "created": int(now),
                    "model": body.get("model", model),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "logprobs": None,
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
            )
        finally:
            stats.in_flight -= 1

    async def get_stats(request: web.Request) -> web.Response:
        if record_file is not None:
            record_file.flush()
        return web.json_response(stats.as_dict())

    async def reset_stats(request: web.Request) -> web.Response:
        stats.reset()
        if record_file is not None:  # the recording starts again with the counter
            record_file.flush()
            record_file.truncate(0)
        return web.json_response(stats.as_dict())

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": model, "object": "model"}]})

    app = web.Application(client_max_size=16 * 2**20)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_post("/chat/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/stats/reset", reset_stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--model", default="standin")
    parser.add_argument("--record", default=None, help="append each request's messages and seed here (JSON lines)")
    args = parser.parse_args()
    app = make_app(latency_s=args.latency_ms / 1000, model=args.model, record=args.record)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=1024)


if __name__ == "__main__":
    main()
