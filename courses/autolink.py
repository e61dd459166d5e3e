"""Link the first mention of each glossary term in a section's sanitized HTML to the term's page.

It runs when a section is rendered (import or admin save), never per request. It walks the
HTML's text nodes, so it cannot break markup, and it leaves code, headings and links alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser

# Text inside these is never linked: code must stay verbatim, headings are the page's
# outline, and a link inside a link is invalid HTML.
SKIP_TAGS = {"a", "code", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}


@dataclass(frozen=True)
class LinkTarget:
    slug: str
    url: str
    short: str
    aliases: tuple[str, ...]


class _Matcher:
    """One regex over every alias, longest first, so that at any position the longest alias wins."""

    def __init__(self, targets: Iterable[LinkTarget]):
        self.slug_of: dict[str, str] = {}
        for target in targets:
            for alias in target.aliases:
                key = _normalise(alias)
                if key:
                    self.slug_of.setdefault(key, target.slug)
        if not self.slug_of:
            self.regex = None
            return
        # Aliases are written with single spaces; the text may wrap them across a line.
        parts = [r"\s+".join(re.escape(w) for w in key.split(" ")) for key in self.slug_of]
        parts.sort(key=len, reverse=True)
        # A hyphen counts as part of a word, so "pre-trained" never yields a link on "trained".
        self.regex = re.compile(r"(?<![\w-])(?:" + "|".join(parts) + r")(?![\w-])", re.IGNORECASE)

    def slug_for(self, matched: str) -> str:
        return self.slug_of[_normalise(matched)]


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


class _Linker(HTMLParser):
    def __init__(self, targets: dict[str, LinkTarget], matcher: _Matcher):
        super().__init__(convert_charrefs=True)
        self.targets, self.matcher = targets, matcher
        self.out: list[str] = []
        self.skip_depth = 0
        self.linked: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in SKIP_TAGS:
            self.skip_depth += 1
        self.out.append(self.get_starttag_text())

    def handle_startendtag(self, tag, attrs):
        self.out.append(self.get_starttag_text())

    def handle_endtag(self, tag):
        if tag in SKIP_TAGS and self.skip_depth:
            self.skip_depth -= 1
        self.out.append(f"</{tag}>")

    def handle_data(self, data):
        if self.skip_depth or self.matcher.regex is None:
            self.out.append(html.escape(data, quote=False))
            return
        pos = 0
        for match in self.matcher.regex.finditer(data):
            slug = self.matcher.slug_for(match.group(0))
            if slug in self.linked:
                # Consumed but not linked: a later "loss function" must not link "loss" instead.
                continue
            self.linked.append(slug)
            self.out.append(html.escape(data[pos : match.start()], quote=False))
            self.out.append(_link(self.targets[slug], match.group(0)))
            pos = match.end()
        self.out.append(html.escape(data[pos:], quote=False))

    def handle_comment(self, data):
        pass  # the sanitizer already drops comments; never re-emit one

    def handle_decl(self, decl):
        self.out.append(f"<!{decl}>")


def _link(target: LinkTarget, text: str) -> str:
    tip = f"tip-{target.slug}"
    return (
        f'<span class="term-wrap"><a class="term" href="{html.escape(target.url)}" aria-describedby="{tip}">'
        f"{html.escape(text, quote=False)}</a>"
        f'<span class="term-tip" role="tooltip" id="{tip}">{html.escape(target.short, quote=False)}</span></span>'
    )


def autolink(body_html: str, targets: Iterable[LinkTarget]) -> tuple[str, list[str]]:
    """Return the HTML with each term's first mention linked, and the slugs linked, in page order."""
    targets = list(targets)
    linker = _Linker({t.slug: t for t in targets}, _Matcher(targets))
    linker.feed(body_html)
    linker.close()
    return "".join(linker.out), linker.linked
