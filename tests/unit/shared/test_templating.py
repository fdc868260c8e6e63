"""The templates shipped with the code: strict, escaped for HTML, read once."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import UndefinedError

from shared.templating import shipped_templates


def test_a_template_is_read_once(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<p>{{ name }}</p>")
    templates = shipped_templates(tmp_path)
    assert templates.get_template("page.html").render(name="Ana") == "<p>Ana</p>"
    page.write_text("<p>changed {{ name }}</p>")  # only a deploy changes them
    assert templates.get_template("page.html").render(name="Ana") == "<p>Ana</p>"


def test_html_is_escaped_and_plain_text_is_not(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ text }}\n")
    assert shipped_templates(tmp_path).get_template("t.j2").render(text="<b>") == "&lt;b&gt;"
    plain = shipped_templates(tmp_path, html=False, keep_trailing_newline=True)
    assert plain.get_template("t.j2").render(text="<b>") == "<b>\n"


def test_an_undefined_name_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ missing }}")
    with pytest.raises(UndefinedError):
        shipped_templates(tmp_path).get_template("t.j2").render()
