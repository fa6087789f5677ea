"""worker/models/openai_compatible.py: the request a model server gets, and what its answers become
(a loopback HTTP/1.1 server in the test process stands in for the model server)."""

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deliberation.engine.models import ModelError, Params, TokenLogprob
from worker.models.openai_compatible import OpenAICompatibleClient, served_model
from worker.models.retry import PermanentModelError, RetryingClient

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    content: bytes
    connection: int  # which TCP connection carried it (1, 2, ... in the order they were opened)


@dataclass
class Response:
    status: int = 200
    json: object = None
    text: str = ""
    close: bool = False  # close the connection after answering, without saying so (an idle timeout)
    hang: bool = False  # never answer (until the test ends)
    drop: bool = False  # close the connection without answering

    @property
    def body(self) -> bytes:
        return (json.dumps(self.json) if self.json is not None else self.text).encode()


@dataclass
class Server:
    url: str
    requests: list[Request] = field(default_factory=list)


@pytest.fixture
def model_server():
    """A server answering with `server.handler(request) -> Response` (set by the test)."""
    released = threading.Event()
    connections = iter(range(1, 10_000))
    state: dict[str, Callable[[Request], Response]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def setup(self):
            super().setup()
            self.connection_number = next(connections)

        def do_POST(self):
            content = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = Request(
                method="POST",
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                content=content,
                connection=self.connection_number,
            )
            server.requests.append(request)
            response = state["handler"](request)
            if response.hang:
                released.wait(30)
            if response.hang or response.drop:
                self.close_connection = True
                return
            body = response.body
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            if response.close:
                self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server = Server(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    server.answer_with = lambda handler: state.__setitem__("handler", handler)
    yield server
    released.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def client_answering(model_server):
    def build(handler, **options) -> tuple[OpenAICompatibleClient, list[Request]]:
        model_server.answer_with(handler)
        options.setdefault("timeout_s", 12.5)
        client = OpenAICompatibleClient(
            model="Qwen/Qwen2.5-0.5B-Instruct", api_base=f"{model_server.url}/v1", **options
        )
        return client, model_server.requests

    return build


def answer(content="Hi there", *, logprobs=None, status=200, **options) -> Response:
    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
    if logprobs:
        choice["logprobs"] = logprobs
    return Response(
        status, json={"choices": [choice], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}, **options
    )


def test_served_model_is_the_name_after_the_prefix():
    assert served_model("hosted_vllm/Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert served_model("openai/standin") == "standin"
    assert served_model("ollama/llama3") is None and served_model("local:smollm2-135m") is None


def test_request_carries_the_messages_seed_and_sampling_parameters(client_answering):
    client, requests = client_answering(lambda request: answer())
    completion = client.complete(
        MESSAGES, params=Params(temperature=0.3, max_tokens=40, top_p=0.9, stop=("END",)), seed=42
    )
    (request,) = requests
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["content-type"] == "application/json"
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


def test_logprobs_are_requested_and_parsed(client_answering):
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
def test_refused_requests_are_permanent_and_never_show_the_key(client_answering, status):
    client, requests = client_answering(lambda request: Response(status, text="bad key sk-secret"), api_key="sk-secret")
    retrying = RetryingClient(client, model="hosted_vllm/m", retries=3, sleep=lambda s: None)
    with pytest.raises(PermanentModelError) as raised:
        retrying.complete(MESSAGES, params=Params(), seed=1)
    assert len(requests) == 1 and requests[0].headers["authorization"] == "Bearer sk-secret"
    assert str(status) in str(raised.value) and "sk-secret" not in str(raised.value)


@pytest.mark.parametrize(
    "failure",
    [
        lambda request: Response(503, text="overloaded"),
        lambda request: Response(429, text="slow down"),
        lambda request: Response(200, text="not json"),
        lambda request: Response(drop=True),
    ],
)
def test_server_errors_and_bad_answers_are_retried_then_reported(client_answering, failure):
    client, requests = client_answering(failure)
    delays = []
    retrying = RetryingClient(client, model="hosted_vllm/m", retries=2, sleep=delays.append)
    with pytest.raises(ModelError, match="after 3 attempts"):
        retrying.complete(MESSAGES, params=Params(), seed=1)
    assert len(requests) == 3 and delays == [1.0, 2.0]


def test_timeouts_and_connection_errors_are_retried(client_answering):
    failures = [Response(hang=True), Response(drop=True)]

    def flaky(request):
        return failures.pop(0) if failures else answer("finally")

    client, requests = client_answering(flaky, timeout_s=0.2)
    reported = []
    retrying = RetryingClient(client, model="hosted_vllm/m", retries=2, sleep=reported.append)
    assert retrying.complete(MESSAGES, params=Params(), seed=1).text == "finally"
    assert len(requests) == 3 and len(reported) == 2  # each failure was one of RetryingClient's attempts
    assert [request.connection for request in requests] == [1, 2, 3]  # a failed connection is not reused


def test_a_refused_connection_is_worth_another_try():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OpenAICompatibleClient(model="m", api_base=f"http://127.0.0.1:{port}/v1", timeout_s=5)
    with pytest.raises(ModelError, match="ConnectionRefusedError") as raised:
        client.complete(MESSAGES, params=Params(), seed=1)
    assert not isinstance(raised.value, PermanentModelError)


def test_calls_from_one_thread_share_one_kept_alive_connection(client_answering):
    client, requests = client_answering(lambda request: answer())
    for seed in range(3):
        client.complete(MESSAGES, params=Params(), seed=seed)
    assert [request.connection for request in requests] == [1, 1, 1]


def test_each_thread_has_its_own_connection(client_answering):
    client, requests = client_answering(lambda request: answer())
    client.complete(MESSAGES, params=Params(), seed=0)
    other = threading.Thread(target=lambda: client.complete(MESSAGES, params=Params(), seed=1))
    other.start()
    other.join()
    client.complete(MESSAGES, params=Params(), seed=2)
    assert [request.connection for request in requests] == [1, 2, 1]


def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_retry(client_answering):
    answers = [answer("first", close=True), answer("second"), answer("third")]
    client, requests = client_answering(lambda request: answers.pop(0))
    reported = []
    retrying = RetryingClient(client, model="hosted_vllm/m", retries=2, sleep=reported.append)
    texts = [retrying.complete(MESSAGES, params=Params(), seed=seed).text for seed in range(3)]
    assert texts == ["first", "second", "third"] and reported == []
    assert [request.connection for request in requests] == [1, 2, 2]


def test_next_token_asks_for_one_token_and_its_top_logprobs(client_answering):
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


def test_next_token_without_logprobs_in_the_answer_is_an_error(client_answering):
    client, _ = client_answering(lambda request: answer("7"))
    with pytest.raises(ModelError, match="without logprobs"):
        client.next_token(MESSAGES, prefix="", top=20, seed=4)


def token_id_server(request: Request) -> Response:
    """/tokenize renders a chat as ids (the open turn is [7, 8], a closed reply adds 99),
    /detokenize joins ids, /v1/completions answers top logprobs keyed by id."""
    body = json.loads(request.content)
    path = request.path
    if path == "/tokenize":
        ids = [len(m["content"]) for m in body["messages"]]
        if body.get("add_generation_prompt"):
            ids += [7, 8]
        elif not body.get("continue_final_message"):
            ids += [99, 5]
        return Response(200, json={"tokens": ids, "count": len(ids)})
    if path == "/detokenize":
        return Response(200, json={"prompt": "-".join(map(str, body["tokens"]))})
    assert path == "/v1/completions"
    logprobs = {
        "tokens": ["token_id:11"],
        "token_logprobs": [-0.2],
        "top_logprobs": [{"token_id:11": -0.2, "token_id:4": -1.9, "token_id:3": -1.9}],
    }
    return Response(
        200,
        json={
            "choices": [{"index": 0, "text": "", "logprobs": logprobs}],
            "usage": {"prompt_tokens": 6, "completion_tokens": 1},
        },
    )


def test_next_token_ids_sends_the_prompt_as_ids_and_reads_ids_back(client_answering):
    client, requests = client_answering(token_id_server)
    first = client.next_token_ids(MESSAGES, prefix_ids=[], top=20, seed=4)
    client.next_token_ids(MESSAGES, prefix_ids=[11, 4], top=20, seed=4)
    paths = [request.path for request in requests]
    assert paths == ["/tokenize", "/v1/completions", "/v1/completions"]  # the prompt is rendered once
    body = json.loads(requests[2].content)
    assert body["prompt"] == [9, 5, 7, 8, 11, 4] and body["max_tokens"] == 1 and body["temperature"] == 0.0
    assert body["logprobs"] == 20 and body["return_tokens_as_token_ids"] is True
    (token,) = first.logprobs
    assert token.top_ids == (11, 3, 4)  # best first; equal logprobs: the lower id first
    assert [lp for _, lp in token.top] == [-0.2, -1.9, -1.9] and first.prompt_tokens == 4
    assert client.end_ids() == frozenset({99})  # where the closed reply goes on from the open one
    assert client.decode_ids([11, 4]) == "11-4"


def test_next_token_ids_without_logprobs_in_the_answer_is_an_error(client_answering):
    def no_logprobs(request):
        if request.path == "/tokenize":
            return Response(200, json={"tokens": [1, 2]})
        return Response(200, json={"choices": [{"index": 0, "text": "x", "logprobs": None}]})

    client, _ = client_answering(no_logprobs)
    with pytest.raises(ModelError, match="without logprobs"):
        client.next_token_ids(MESSAGES, prefix_ids=[], top=20, seed=4)
