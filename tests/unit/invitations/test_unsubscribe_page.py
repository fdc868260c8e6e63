"""The unsubscribe confirmation page carries the token from the link, escaped."""

from __future__ import annotations

import httpx

from services.invitations.app import create_app
from services.invitations.settings import InvitationsSettings


async def test_a_token_with_markup_comes_back_as_text_in_the_form() -> None:
    app = create_app(InvitationsSettings(environment="test"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        page = await client.get("/unsubscribe", params={"token": '"><script>x</script>'})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in page.text
