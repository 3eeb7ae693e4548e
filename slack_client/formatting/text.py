"""Model Markdown → Slack mrkdwn, and splitting long replies into Slack-sized messages.

Pure string functions. Code (fenced and inline) is never reformatted; a fence the model has not
closed yet (mid-stream) is closed for display so half an answer still renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?!\[[ xX]\])")
_TASK = re.compile(r"^(\s*)[-*+]\s+\[([ xX])\]\s+")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")

# Private-use characters survive every regex below and never occur in model output.
_BOLD_MARK = "\ue000"
_CODE_MARK = "\ue001"


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


def _convert_inline(line: str) -> str:
    line = _IMAGE.sub(lambda m: f"<{m.group(2)}|{m.group(1) or 'image'}>", line)
    line = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", line)
    line = _BOLD_ITALIC.sub(lambda m: f"{_BOLD_MARK}_{m.group(1)}_{_BOLD_MARK}", line)
    line = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(2)}{_BOLD_MARK}", line)
    line = _ITALIC_STAR.sub(r"_\1_", line)
    line = _STRIKE.sub(r"~\1~", line)
    return line.replace(_BOLD_MARK, "*")


def _convert_line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        text = heading.group(1).replace("**", "").replace("__", "")
        return f"*{_convert_inline(text)}*"
    if _RULE.match(line):
        return "──────────"
    line = _TASK.sub(lambda m: f"{m.group(1)}{'☑' if m.group(2) in 'xX' else '☐'} ", line)
    line = _BULLET.sub(r"\1• ", line)
    return _convert_inline(line)


def _convert_prose(prose: str) -> str:
    """Escape, protect inline code, then convert line by line (tables become code blocks)."""
    prose = escape(prose)
    # Blockquotes are the one place where '>' is syntax, not text.
    prose = re.sub(r"(?m)^(\s*)&gt; ?", r"\1> ", prose)
    codes: list[str] = []

    def stash(match: re.Match[str]) -> str:
        codes.append(match.group(0))
        return f"{_CODE_MARK}{len(codes) - 1}{_CODE_MARK}"

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
        out.append(_convert_line(lines[i]))
        i += 1
    text = "\n".join(out)
    return re.sub(f"{_CODE_MARK}(\\d+){_CODE_MARK}", lambda m: codes[int(m.group(1))], text)


def markdown_to_mrkdwn(markdown: str) -> str:
    """Convert model Markdown to Slack mrkdwn; code stays verbatim (language hints dropped)."""
    parts = []
    for segment in _segments(markdown.strip("\n")):
        if segment.is_code:
            parts.append(f"{FENCE}\n{escape(segment.text)}\n{FENCE}")
        else:
            parts.append(_convert_prose(segment.text))
    text = "\n".join(parts)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


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
