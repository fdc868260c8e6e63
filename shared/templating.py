"""Jinja2 environments for the templates shipped with the code (pages and mails), built alike."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


def shipped_templates(
    directory: Path, *, html: bool = True, keep_trailing_newline: bool = False
) -> Environment:
    """Templates under `directory`: an undefined name is an error, HTML is escaped when `html`
    (plain-text mail is not), and a template is read once. Jinja2's default re-checks each
    template file's modification time at every render: a `stat` per page and per mail (3 % of
    the invitations service's samples while it mailed a backlog), for files that change only
    with a deploy."""
    return Environment(
        loader=FileSystemLoader(directory),
        undefined=StrictUndefined,
        # plain-text mail is never shown as HTML; a page showing it escapes it
        autoescape=select_autoescape(default=True, default_for_string=True) if html else False,  # noqa: S701
        keep_trailing_newline=keep_trailing_newline,
        auto_reload=False,
    )
