"""`make demo` starts the directory and prints its URL beside the ranking."""

from __future__ import annotations

import httpx
import pytest

from devtools import demo
from devtools.demo import Demo
from devtools.demo_client import ServiceClient
from devtools.processes import SERVICE_PORTS


def test_the_demo_starts_the_directory_on_its_port() -> None:
    assert SERVICE_PORTS["directory"] == 8006
    assert 8005 not in SERVICE_PORTS.values(), "8005 is kept for the portal"


async def test_the_demo_prints_the_directory_url_and_what_it_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = '<a class="name" href="/agents/A-1">A</a><a class="name" href="/agents/A-2">B</a>'
    page += '<a href="/?after=x" rel="next">Next page</a>'
    client = ServiceClient({"directory": "http://127.0.0.1:8006"})
    client.http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, text=page))
    )
    printed: list[str] = []
    monkeypatch.setattr(demo.console, "print", lambda text, *a, **k: printed.append(str(text)))
    await Demo.report_directory(client)
    await client.close()
    assert printed == [
        "[bold]Directory[/bold] (public search, profiles, badges, feeds): http://127.0.0.1:8006/ "
        "lists 2 public agents on its first page and more on the next pages."
    ]
