"""Model Markdown → Slack mrkdwn, and splitting long replies into Slack-sized messages.

Pure string functions. Code (fenced and inline) is never reformatted; a fence the model has not
closed yet (mid-stream) is closed for display so half an answer still renders.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from slack_client.formatting.safety import honest_label, neutralize_controls, safe_target

log = logging.getLogger(__name__)

# Slack truncates message text at 40k characters but long messages read badly and blocks cap
# at 3000; ~4k per message is the size Slack itself recommends.
MAX_MESSAGE_CHARS = 3900
# A section block's text holds at most 3000 characters.
SECTION_CHARS = 3000
FENCE = "```"

_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# `[name]: target` defines a reference link; Slack's Markdown would link `[name]` to it.
_REFERENCE = re.compile(r"^(\s{0,3}\[[^\]\n]+\]):")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?!\[[ xX]\])")
_TASK = re.compile(r"^(\s*)[-*+]\s+\[([ xX])\]\s+")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")



def _marks(text: str) -> tuple[str, str]:
    """Two private-use characters that `text` does not contain, to mark bold and stashed code
    while converting (they survive every regex below); a model that writes private-use
    characters itself keeps them and cannot confuse the conversion."""
    free = (chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)
    return next(free), next(free)


@dataclass(frozen=True)
class _Segment:
    text: str
    is_code: bool


def _segments(markdown: str) -> list[_Segment]:
    """Split into prose and fenced code; an unclosed fence runs to the end."""
    segments: list[_Segment] = []
    prose: list[str] = []
    code: list[str] | None = None
    for line in markdown.split("\n"):
        if code is None:
            if _FENCE_LINE.match(line):
                if prose:
                    segments.append(_Segment("\n".join(prose), False))
                    prose = []
                code = []
            else:
                prose.append(line)
        elif _FENCE_LINE.match(line) and line.strip() in (FENCE, "~~~"):
            segments.append(_Segment("\n".join(code), True))
            code = None
        else:
            code.append(line)
    if code is not None:
        segments.append(_Segment("\n".join(code), True))
    elif prose:
        segments.append(_Segment("\n".join(prose), False))
    return segments


def escape(text: str) -> str:
    """Slack's three control characters; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn_link(match: re.Match[str], image: bool = False) -> str:
    """`[label](target)` (already escaped) as a Slack link, or as the text it was when the
    target is not http, https or mailto: `[click](!channel)` must not become `<!channel|click>`."""
    label, target = match.group(1) or ("image" if image else ""), safe_target(match.group(2))
    if target is None:
        return match.group(0)
    return f"<{target}|{honest_label(label, target)}>"


def _convert_inline(line: str, bold: str) -> str:
    line = _IMAGE.sub(lambda m: _mrkdwn_link(m, image=True), line)
    line = _LINK.sub(_mrkdwn_link, line)
    line = _BOLD_ITALIC.sub(lambda m: f"{bold}_{m.group(1)}_{bold}", line)
    line = _BOLD.sub(lambda m: f"{bold}{m.group(2)}{bold}", line)
    line = _ITALIC_STAR.sub(r"_\1_", line)
    line = _STRIKE.sub(r"~\1~", line)
    return line.replace(bold, "*")


def _convert_line(line: str, bold: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        text = heading.group(1).replace("**", "").replace("__", "")
        return f"*{_convert_inline(text, bold)}*"
    if _RULE.match(line):
        return "──────────"
    line = _TASK.sub(lambda m: f"{m.group(1)}{'☑' if m.group(2) in 'xX' else '☐'} ", line)
    line = _BULLET.sub(r"\1• ", line)
    return _convert_inline(line, bold)


def _convert_prose(prose: str, marks: tuple[str, str]) -> str:
    """Escape, protect inline code, then convert line by line (tables become code blocks)."""
    bold, code_mark = marks
    prose = escape(prose)
    # Blockquotes are the one place where '>' is syntax, not text.
    prose = re.sub(r"(?m)^(\s*)&gt; ?", r"\1> ", prose)
    codes: list[str] = []

    def stash(match: re.Match[str]) -> str:
        codes.append(match.group(0))
        return f"{code_mark}{len(codes) - 1}{code_mark}"

    prose = _INLINE_CODE.sub(stash, prose)
    lines = prose.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and "|" in lines[i] and _TABLE_SEPARATOR.match(lines[i + 1]):
            table = [lines[i], lines[i + 1]]
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                table.append(lines[i])
                i += 1
            # Slack has no tables; a code block at least keeps the columns aligned.
            out.append("\n".join([FENCE, *table, FENCE]))
            continue
        out.append(_convert_line(lines[i], bold))
        i += 1
    text = "\n".join(out)
    return re.sub(f"{code_mark}(\\d+){code_mark}", lambda m: codes[int(m.group(1))], text)


def markdown_to_mrkdwn(markdown: str) -> str:
    """Convert model Markdown to Slack mrkdwn; code stays verbatim (language hints dropped)."""
    parts = []
    marks = _marks(markdown)
    for segment in _segments(markdown.strip("\n")):
        if segment.is_code:
            parts.append(f"{FENCE}\n{escape(segment.text)}\n{FENCE}")
        else:
            parts.append(_convert_prose(segment.text, marks))
    text = "\n".join(parts)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _markdown_link(match: re.Match[str]) -> str:
    """A Markdown link kept only if it is honest; otherwise text that is no longer link syntax."""
    label, target = match.group(1), safe_target(match.group(2))
    if target is None:
        return f"[{label}] ({match.group(2)})"
    return f"[{honest_label(label, target)}]({target})"


def _safe_markdown_line(line: str) -> str:
    line = _REFERENCE.sub(r"\1 :", line)
    pieces = re.split(r"(`[^`\n]+`)", line)  # inline code (odd indexes) keeps its links as text
    return "".join(p if i % 2 else _LINK.sub(_markdown_link, p) for i, p in enumerate(pieces))


class SafeMarkdown:
    """Model Markdown made safe for places where Slack renders Markdown itself (native streams).

    Fed piece by piece, it gives text that only ever grows: complete lines are converted, and
    the line being written is shown up to its first `[` or `<` (where a link or a mention may be
    forming), so what was sent never has to change. Links keep only http/https/mailto targets
    and honest labels; mentions the model writes are broken by a zero-width space.
    """

    def __init__(self) -> None:
        self._done: list[str] = []
        self._partial = ""
        self._cut = 0
        self._in_code = False

    @property
    def held(self) -> str:
        """The raw text `feed` has not shown yet (the end of the line being written)."""
        return self._partial[self._cut:]

    def _line(self, line: str) -> str:
        if not self._in_code:
            if _FENCE_LINE.match(line):
                self._in_code = True
            else:
                try:
                    line = _safe_markdown_line(line)
                except Exception:  # a bug here must not cost the answer: no links on this line
                    log.exception("making a line safe failed; its links are shown as text")
                    line = line.replace("](", "] (").replace("]:", "] :")
        elif _FENCE_LINE.match(line) and line.strip() in (FENCE, "~~~"):
            self._in_code = False
        return neutralize_controls(line)

    def feed(self, delta: str) -> str:
        """Add model text; returns everything that is safe to show so far."""
        *lines, self._partial = (self._partial + delta).split("\n")
        self._done.extend(self._line(line) + "\n" for line in lines)
        self._cut = min((i for i in (self._partial.find("["), self._partial.find("<")) if i >= 0),
                        default=len(self._partial))
        return "".join(self._done) + self._partial[:self._cut]

    def finish(self) -> str:
        """All of the text, the last line included."""
        if self._partial:
            self._done.append(self._line(self._partial))
            self._partial, self._cut = "", 0
        return "".join(self._done)


def safe_markdown(markdown: str) -> str:
    """The whole of `markdown` made safe (see `SafeMarkdown`)."""
    converter = SafeMarkdown()
    converter.feed(markdown)
    return converter.finish()


def _code_units(block: str, limit: int) -> list[str]:
    """A fenced block as one unit, or as several fenced blocks if it alone exceeds `limit`."""
    if len(block) <= limit:
        return [block]
    inner = block[len(FENCE) + 1 : -(len(FENCE) + 1)].split("\n")
    room = limit - 2 * (len(FENCE) + 1)
    units: list[str] = []
    current: list[str] = []
    size = 0
    for line in inner:
        while len(line) > room:
            if current:
                units.append("\n".join(current))
                current, size = [], 0
            units.append(line[:room])
            line = line[room:]
        if size + len(line) + 1 > room and current:
            units.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        units.append("\n".join(current))
    return [f"{FENCE}\n{unit}\n{FENCE}" for unit in units]


def _prose_units(line: str, limit: int) -> list[str]:
    """A line, hard-wrapped at whitespace only if it alone exceeds `limit`."""
    units = []
    while len(line) > limit:
        cut = line.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        units.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    units.append(line)
    return units


def _units(mrkdwn: str, limit: int) -> list[str]:
    units: list[str] = []
    lines = mrkdwn.split("\n")
    i = 0
    while i < len(lines):
        if lines[i] == FENCE:
            end = lines.index(FENCE, i + 1) if FENCE in lines[i + 1 :] else len(lines) - 1
            units.extend(_code_units("\n".join(lines[i : end + 1]), limit))
            i = end + 1
        else:
            units.extend(_prose_units(lines[i], limit))
            i += 1
    return units


def split_message(mrkdwn: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Split converted text into messages of at most `limit` characters.

    Breaks go between lines, preferably at a blank line, and never inside a code block unless
    that block alone is longer than a message (then it is closed and reopened across messages).
    """
    if len(mrkdwn) <= limit:
        return [mrkdwn]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for unit in _units(mrkdwn, limit):
        if current and size + 1 + len(unit) > limit:
            carry: list[str] = []
            blanks = [n for n, u in enumerate(current) if not u.strip()]
            if blanks and blanks[-1] >= len(current) // 2:
                carry = current[blanks[-1] + 1 :]
                current = current[: blanks[-1]]
            chunks.append("\n".join(current).strip("\n"))
            current = carry
            size = sum(len(u) + 1 for u in current)
            if current and size + 1 + len(unit) > limit:
                chunks.append("\n".join(current).strip("\n"))
                current, size = [], 0
        current.append(unit)
        size += len(unit) + 1
    if current:
        chunks.append("\n".join(current).strip("\n"))
    return [chunk for chunk in chunks if chunk.strip()]
