"""worker/models/openai_compatible.py: the request a model server gets, and what its answers become
(httpx's MockTransport stands in for the server: no network)."""

import json

import httpx
import pytest

from deliberation.engine.models import ModelError, Params, TokenLogprob
from worker.models.openai_compatible import OpenAICompatibleClient, served_model
from worker.models.retry import PermanentModelError, RetryingClient

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]


def client_answering(handler, **options) -> tuple[OpenAICompatibleClient, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def recorded(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    client = OpenAICompatibleClient(
        model="Qwen/Qwen2.5-0.5B-Instruct", api_base="http://gpu1:8000/v1", timeout_s=12.5, **options
    )
    headers = {"Authorization": f"Bearer {client.api_key}"} if client.api_key else {}
    client._http = httpx.Client(
        base_url="http://gpu1:8000/v1/", headers=headers, transport=httpx.MockTransport(recorded)
    )
    return client, requests


def answer(content="Hi there", *, logprobs=None, status=200) -> httpx.Response:
    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
    if logprobs:
        choice["logprobs"] = logprobs
    return httpx.Response(status, json={"choices": [choice], "usage": {"prompt_tokens": 9, "completion_tokens": 2}})


def test_served_model_is_the_name_after_the_prefix():
    assert served_model("hosted_vllm/Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert served_model("openai/standin") == "standin"
    assert served_model("ollama/llama3") is None and served_model("local:smollm2-135m") is None


def test_request_carries_the_messages_seed_and_sampling_parameters():
    client, requests = client_answering(lambda request: answer())
    completion = client.complete(
        MESSAGES, params=Params(temperature=0.3, max_tokens=40, top_p=0.9, stop=("END",)), seed=42
    )
    (request,) = requests
    assert request.method == "POST" and str(request.url) == "http://gpu1:8000/v1/chat/completions"
    body = json.loads(request.content)
    assert body == {
        "model": "Qwen/Qwen2.5-0.5B-Instruct",
        "messages": MESSAGES,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 40,
        "seed": 42,
        "stop": ["END"],
    }
    assert "authorization" not in request.headers
    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == ("Hi there", 9, 2)
    assert completion.logprobs is None and not completion.cached and completion.seconds >= 0


def test_logprobs_are_requested_and_parsed():
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": None,
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1, "bytes": None},
                    {"token": "Hello", "logprob": -2.5, "bytes": None},
                ],
            }
        ]
    }
    client, requests = client_answering(lambda request: answer(logprobs=logprobs))
    completion = client.complete(MESSAGES, params=Params(top_logprobs=2), seed=1)
    body = json.loads(requests[0].content)
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert completion.logprobs == (TokenLogprob("Hi", -0.1, (("Hi", -0.1), ("Hello", -2.5))),)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_refused_requests_are_permanent_and_never_show_the_key(status):
    client, requests = client_answering(
        lambda request: httpx.Response(status, text="bad key sk-secret"), api_key="sk-secret"
    )
    retrying = RetryingClient(client, model="hosted_vllm/m", retries=3, sleep=lambda s: None)
    with pytest.raises(PermanentModelError) as raised:
        retrying.complete(MESSAGES, params=Params(), seed=1)
    assert len(requests) == 1 and requests[0].headers["authorization"] == "Bearer sk-secret"
    assert str(status) in str(raised.value) and "sk-secret" not in str(raised.value)


@pytest.mark.parametrize(
    "failure",
    [
        lambda request: httpx.Response(503, text="overloaded"),
        lambda request: httpx.Response(429, text="slow down"),
        lambda request: httpx.Response(200, text="not json"),
    ],
)
def test_server_errors_and_bad_answers_are_retried_then_reported(failure):
    client, requests = client_answering(failure)
    delays = []
    retrying = RetryingClient(client, model="hosted_vllm/m", retries=2, sleep=delays.append)
    with pytest.raises(ModelError, match="after 3 attempts"):
        retrying.complete(MESSAGES, params=Params(), seed=1)
    assert len(requests) == 3 and delays == [1.0, 2.0]


def test_timeouts_and_connection_errors_are_retried():
    failures = [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")]

    def flaky(request):
        if failures:
            raise failures.pop(0)
        return answer("finally")

    client, requests = client_answering(flaky)
    retrying = RetryingClient(client, model="hosted_vllm/m", retries=2, sleep=lambda s: None)
    assert retrying.complete(MESSAGES, params=Params(), seed=1).text == "finally"
    assert len(requests) == 3


def test_next_token_asks_for_one_token_and_its_top_logprobs():
    logprobs = {
        "content": [
            {
                "token": "7",
                "logprob": -0.3,
                "bytes": None,
                "top_logprobs": [
                    {"token": "7", "logprob": -0.3, "bytes": None},
                    {"token": "6", "logprob": -1.6, "bytes": None},
                ],
            }
        ]
    }
    client, requests = client_answering(lambda request: answer("7", logprobs=logprobs))
    completion = client.next_token(MESSAGES, prefix="", top=20, seed=4)
    body = json.loads(requests[0].content)
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20
    assert body["temperature"] == 0.0 and body["messages"] == MESSAGES and "continue_final_message" not in body
    assert completion.text == "7" and completion.logprobs[0].top == (("7", -0.3), ("6", -1.6))
    client.next_token(MESSAGES, prefix="Score:", top=5, seed=4)
    body = json.loads(requests[1].content)
    assert body["messages"][-1] == {"role": "assistant", "content": "Score:"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_next_token_without_logprobs_in_the_answer_is_an_error():
    client, _ = client_answering(lambda request: answer("7"))
    with pytest.raises(ModelError, match="without logprobs"):
        client.next_token(MESSAGES, prefix="", top=20, seed=4)


def token_id_server(request: httpx.Request) -> httpx.Response:
    """/tokenize renders a chat as ids (the open turn is [7, 8], a closed reply adds 99),
    /detokenize joins ids, /v1/completions answers top logprobs keyed by id."""
    body = json.loads(request.content)
    path = request.url.path
    if path == "/tokenize":
        ids = [len(m["content"]) for m in body["messages"]]
        if body.get("add_generation_prompt"):
            ids += [7, 8]
        elif not body.get("continue_final_message"):
            ids += [99, 5]
        return httpx.Response(200, json={"tokens": ids, "count": len(ids)})
    if path == "/detokenize":
        return httpx.Response(200, json={"prompt": "-".join(map(str, body["tokens"]))})
    assert path == "/v1/completions"
    logprobs = {
        "tokens": ["token_id:11"],
        "token_logprobs": [-0.2],
        "top_logprobs": [{"token_id:11": -0.2, "token_id:4": -1.9, "token_id:3": -1.9}],
    }
    return httpx.Response(
        200,
        json={
            "choices": [{"index": 0, "text": "", "logprobs": logprobs}],
            "usage": {"prompt_tokens": 6, "completion_tokens": 1},
        },
    )


def test_next_token_ids_sends_the_prompt_as_ids_and_reads_ids_back():
    client, requests = client_answering(token_id_server)
    first = client.next_token_ids(MESSAGES, prefix_ids=[], top=20, seed=4)
    client.next_token_ids(MESSAGES, prefix_ids=[11, 4], top=20, seed=4)
    paths = [request.url.path for request in requests]
    assert paths == ["/tokenize", "/v1/completions", "/v1/completions"]  # the prompt is rendered once
    body = json.loads(requests[2].content)
    assert body["prompt"] == [9, 5, 7, 8, 11, 4] and body["max_tokens"] == 1 and body["temperature"] == 0.0
    assert body["logprobs"] == 20 and body["return_tokens_as_token_ids"] is True
    (token,) = first.logprobs
    assert token.top_ids == (11, 3, 4)  # best first; equal logprobs: the lower id first
    assert [lp for _, lp in token.top] == [-0.2, -1.9, -1.9] and first.prompt_tokens == 4
    assert client.end_ids() == frozenset({99})  # where the closed reply goes on from the open one
    assert client.decode_ids([11, 4]) == "11-4"


def test_next_token_ids_without_logprobs_in_the_answer_is_an_error():
    def no_logprobs(request):
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": [1, 2]})
        return httpx.Response(200, json={"choices": [{"index": 0, "text": "x", "logprobs": None}]})

    client, _ = client_answering(no_logprobs)
    with pytest.raises(ModelError, match="without logprobs"):
        client.next_token_ids(MESSAGES, prefix_ids=[], top=20, seed=4)
