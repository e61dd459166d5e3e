"""Markdown to safe HTML: markdown-it for parsing, Pygments for code, nh3 for sanitizing.

A section's body is rendered once, when it is imported or saved in the admin, with its
glossary terms linked (courses/autolink.py); pages serve the stored HTML as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from courses.autolink import LinkTarget, autolink

_FORMATTER = HtmlFormatter(nowrap=True)

ALLOWED_TAGS = {
    "a", "abbr", "blockquote", "br", "code", "em", "h2", "h3", "h4", "hr", "img", "li", "ol",
    "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul", "dfn",
}  # fmt: skip
# The `a` class/aria-describedby and `span` class/role/id are exactly what the term links add.
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class", "aria-describedby"},
    "img": {"src", "alt", "title"},
    "span": {"class", "role", "id"},
    "code": {"class"},
    "pre": {"class"},
    "th": {"align"},
    "td": {"align"},
}


def _highlight(code: str, lang: str, _attrs) -> str:
    try:
        lexer = get_lexer_by_name(lang or "text")
    except ClassNotFound:
        return ""  # markdown-it escapes the code itself
    return highlight(code, lexer, _FORMATTER)


_md = MarkdownIt("commonmark", {"highlight": _highlight, "html": False}).enable("table")


def render_markdown(text: str) -> str:
    html = _md.render(text)
    return sanitize(html)


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


@dataclass(frozen=True)
class RenderedSection:
    html: str
    text: str  # the readable text without markup or tooltips, for search and snippets
    mentions: list[str]  # slugs of the glossary terms linked, in page order


def render_section(markdown: str, targets: Iterable[LinkTarget]) -> RenderedSection:
    plain = render_markdown(markdown)
    linked, mentions = autolink(plain, targets)
    # Sanitize again so the stored HTML can only ever hold what the allow-list permits,
    # whatever a term's text contains.
    return RenderedSection(html=sanitize(linked), text=html_to_text(plain), mentions=mentions)


_BLOCK_TAGS = {"p", "li", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "td", "th", "tr", "br", "hr"}


class _TextCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(html: str) -> str:
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return " ".join("".join(collector.parts).split())
