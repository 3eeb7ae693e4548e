"""Web pages (.html): the text a person sees in a browser, by the stdlib's `html.parser`; what
is hidden (scripts, the head, hidden elements) is left out, since instructions to the model hide there.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from document_readers.common import Extracted, Limits, cap
from document_readers.text import decode

# Link targets shown beside a web page's link text at most this long (longer ones are noise).
MAX_LINK_CHARS = 100


class _HtmlText(HTMLParser):
    """A web page's readable text: block structure as line breaks, link text (with short web
    targets), no scripts, styles, head content, comments or hidden elements (text a person
    never sees is where instructions to the model would hide)."""

    SKIP = {"head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "select"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
            "wbr"}
    PARAGRAPH = {"p", "table", "pre", "blockquote", "ul", "ol", "dl", "figure", "form", "fieldset", "address",
                 "h1", "h2", "h3", "h4", "h5", "h6"}
    LINE = {"div", "section", "article", "header", "footer", "main", "aside", "nav", "li", "dt", "dd", "tr",
            "caption", "figcaption", "details", "summary", "hr", "body"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.title = ""
        self._in_title = False
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._newlines = 0
        self._pre = 0
        self._lists: list[list[int]] = []  # per open list: [is ordered, items so far]
        self._cells = 0
        self._links: list[tuple[str | None, int]] = []  # (target shown, len(parts) at the start)

    @staticmethod
    def _hidden(attrs: dict[str, str | None]) -> bool:
        style = re.sub(r"\s+", "", (attrs.get("style") or "").lower())
        return (
            "hidden" in attrs
            or (attrs.get("aria-hidden") or "").lower() == "true"
            or "display:none" in style
            or "visibility:hidden" in style
        )

    def _break(self, count: int) -> None:
        if not self.parts:
            return
        if self.parts[-1].endswith(" "):
            self.parts[-1] = self.parts[-1].rstrip(" ")
        while self._newlines < count:
            self.parts.append("\n")
            self._newlines += 1
            self.size += 1

    def _write(self, text: str) -> None:
        if not self._pre:
            text = re.sub(r"\s+", " ", text)
            if self._newlines or not self.parts or self.parts[-1].endswith(" "):
                text = text.lstrip(" ")
        if not text:
            return
        self.parts.append(text)
        self.size += len(text)
        self._newlines = len(text) - len(text.rstrip("\n")) if self._pre else 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self._skip_tag in (None, "head") and not self.title:
            self._in_title = True  # the one part of the head a reader sees (as the tab's name)
            return
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            elif tag == "body" and self._skip_tag == "head":  # a head that was never closed
                self._skip_tag = None
            if self._skip_tag is not None:
                return
        attributes = dict(attrs)
        if tag in self.SKIP or self._hidden(attributes):
            if tag not in self.VOID:
                self._skip_tag, self._skip_depth = tag, 1
            return
        if tag == "br":
            if self._pre:
                self._write("\n")
            else:
                self._break(self._newlines + 1)
        elif tag in self.PARAGRAPH:
            self._break(1 if self._lists else 2)
            if tag[0] == "h" and tag[1:].isdigit():
                self._write("#" * int(tag[1:]) + " ")
            elif tag in ("ul", "ol"):
                self._lists.append([tag == "ol", 0])
            elif tag == "pre":
                self._pre += 1
        elif tag in self.LINE:
            self._break(1)
            if tag == "li":
                ordered, count = self._lists[-1] if self._lists else (False, 0)
                if self._lists:
                    self._lists[-1][1] = count + 1
                self._write(f"{count + 1}. " if ordered else "- ")
            elif tag == "tr":
                self._cells = 0
        elif tag in ("td", "th"):
            if self._cells:
                self._write(" | ")
            self._cells += 1
        elif tag == "a":
            self._links.append((self._target(attributes.get("href")), len(self.parts)))
        elif tag == "img" and (alt := " ".join((attributes.get("alt") or "").split())):
            self._write(f" [image: {alt}] ")

    @staticmethod
    def _target(href: str | None) -> str | None:
        """A link target worth showing: a short web or mail address, nothing that runs."""
        href = (href or "").strip()
        if len(href) > MAX_LINK_CHARS or not href.lower().startswith(("https://", "http://", "mailto:")):
            return None
        if any(ch.isspace() or not ch.isprintable() or ch in "()<>[]" for ch in href):
            return None
        return href

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if tag in self.PARAGRAPH:
            if tag in ("ul", "ol") and self._lists:
                self._lists.pop()
            elif tag == "pre" and self._pre:
                self._pre -= 1
            self._break(1 if self._lists else 2)  # a list inside a list is no new paragraph
        elif tag in self.LINE:
            self._break(1)
        elif tag == "a" and self._links:
            target, start = self._links.pop()
            label = "".join(self.parts[start:]).strip()
            if target and label and target not in label and target.removeprefix("mailto:") not in label:
                self._write(f" ({target})")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip_tag is None:
            self._write(data)

    def text(self) -> str:
        body = re.sub(r"\n{3,}", "\n\n", "".join(self.parts)).strip()
        title = " ".join(self.title.split())
        return f"Title: {title}\n\n{body}" if title and body else title or body


def html_text(html: str, max_chars: int) -> str:
    """The readable text of a web page, fed in pieces and stopped once past `max_chars`."""
    parser = _HtmlText()
    for start in range(0, len(html), 64 * 1024):
        parser.feed(html[start : start + 64 * 1024])
        if parser.size > max_chars:
            break
    else:
        # What is still buffered is trailing text, or markup never closed: an unclosed comment
        # or tag, which close() would hand over as text though a browser shows none of it.
        end = parser.rawdata.find("<")
        if end >= 0:
            parser.rawdata = parser.rawdata[:end]
        parser.close()
    return parser.text()


def read_html(data: bytes, limits: Limits) -> Extracted:
    """A web page's readable text, cut at the character limit."""
    return cap(html_text(decode(data), limits.max_chars), limits)
