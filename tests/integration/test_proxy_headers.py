"""X-Forwarded-Proto and X-Forwarded-For count only from the proxy the deployment trusts.

uvicorn serves the app as the image's CMD says (docker/Dockerfile: --proxy-headers), on production
settings; FORWARDED_ALLOW_IPS names the trusted proxy. This test's requests come from 127.0.0.1.
"""

import json
import re
import sys

import requests

from tests.integration import servers

LOGIN = "/accounts/login/"


def image_command() -> list[str]:
    """The image's CMD (a JSON array over continued lines), served here on a free loopback port."""
    dockerfile = (servers.REPO_ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    command = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))
    assert command[0] == "uvicorn" and "--proxy-headers" in command
    return command


class ImageServer(servers.AsgiServer):
    def __init__(self, *, env: dict[str, str], log_dir) -> None:
        super().__init__(name="uvicorn-image-cmd", env=env, log_dir=log_dir)
        argv = image_command()
        argv[argv.index("--host") + 1] = "127.0.0.1"
        argv[argv.index("--port") + 1] = str(self.port)
        self.argv = [sys.executable, "-m", *argv]

    def ready(self) -> bool:  # any answer: plain http is redirected to https, which the base class follows
        try:
            return requests.get(self.url + "/", allow_redirects=False, timeout=2).status_code > 0
        except requests.RequestException:
            return False


def serve(stack_env: dict[str, str], log_dir, *, trusted: str) -> ImageServer:
    env = {
        **stack_env,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "proxy-headers-test-" + "k" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "HEMICYCLE_LOCAL_ENV": "",
        "FORWARDED_ALLOW_IPS": trusted,
    }
    return ImageServer(env=env, log_dir=log_dir).start()


def login_page(server: ImageServer) -> requests.Response:
    return requests.get(
        server.url + LOGIN,
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"},
        allow_redirects=False,
        timeout=30,
    )


def access_line(server: ImageServer) -> str:
    """uvicorn's access log line of the request (written as the answer goes out: waited for)."""
    servers.wait_until(lambda: f'"GET {LOGIN} ' in server.log_text(), timeout=30, what="the access log line")
    return next(line for line in server.log_text().splitlines() if f'"GET {LOGIN} ' in line)


def test_x_forwarded_proto_from_an_untrusted_client_is_not_https(stack_env, server_log_dir):
    server = serve(stack_env, server_log_dir, trusted="192.0.2.1")  # a proxy that is not us
    try:
        response = login_page(server)
        line = access_line(server)
    finally:
        server.stop()
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://127.0.0.1:{server.port}{LOGIN}"
    assert "Strict-Transport-Security" not in response.headers
    assert line.split()[1].startswith("127.0.0.1:")  # nor is the address it claims believed


def test_x_forwarded_proto_from_the_trusted_proxy_is_https(stack_env, server_log_dir):
    server = serve(stack_env, server_log_dir, trusted="127.0.0.1")
    try:
        response = login_page(server)
        line = access_line(server)
    finally:
        server.stop()
    assert response.status_code == 200
    assert "Strict-Transport-Security" in response.headers
    assert "Secure" in response.headers["Set-Cookie"]  # the CSRF cookie of an https page
    assert line.split()[1].startswith("203.0.113.7:")  # the client the proxy named
