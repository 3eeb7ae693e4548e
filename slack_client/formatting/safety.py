"""What makes text safe to post: links that cannot lie, and no mention the bot did not write.

Whatever the model writes, a document says or a file is named is untrusted. In Slack text,
`<!channel>`, `<!here>`, `<@U…>`, `<#C…>`, `<!subteam^…>` are mentions and `<url|label>` is a
link whose label can claim any address. These rules decide which links become links, and how
a label that names another address is corrected. Pure functions.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

SAFE_SCHEMES = ("http", "https", "mailto")
# Something that reads as an address: a host name with a dot and a letters-only TLD.
_DOMAIN = re.compile(r"(?i)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63})\b")
# Endings that make `report.pdf` a file name rather than an address.
_FILE_ENDINGS = frozenset(
    "pdf png jpg jpeg gif webp svg txt csv tsv json xml yml yaml toml ini html htm doc docx xls "
    "xlsx pptx ppt odt ods md rst py js ts tsx jsx java rb go rs c h cpp hpp cs php sql log gz tgz "
    "tar bz2 xz mp3 mp4 wav ogg m4a webm heic eml ipynb".split()
)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# Slack's control sequences and labelled links, as they would appear in raw (unescaped) text.
# `<!DOCTYPE` and `<!--` in code are left alone: Slack reads only these.
_CONTROL = re.compile(
    r"<(?=!(?:channel|here|everyone|group|subteam|date|usergroup)\b|[@#][A-Z0-9]|[a-zA-Z][a-zA-Z0-9+.-]*:[^\s>]*\|)",
    re.IGNORECASE,
)
ZERO_WIDTH_SPACE = "\u200b"


def safe_target(url: str) -> str | None:
    """`url` as a link target if its scheme is http, https or mailto (`|` percent-encoded),
    else None: `!channel`, `@U123`, `javascript:`, `slack://` never become links."""
    match = _SCHEME.match(url)
    if match is None or match.group(1).lower() not in SAFE_SCHEMES:
        return None
    scheme = match.group(1).lower()
    if scheme != "mailto" and not url[match.end():].startswith("//"):
        return None
    if scheme != "mailto" and not _host(url):
        return None
    return url.replace("|", "%7C")


def _host(url: str) -> str:
    """The host a target leads to ('' when it has none); for mailto, the mail domain."""
    url = html.unescape(url)
    if url.lower().startswith("mailto:"):
        return url[7:].split("?")[0].rpartition("@")[2].lower()
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _same_site(named: str, host: str) -> bool:
    named, host = named.lower().removeprefix("www."), host.removeprefix("www.")
    return named == host or host.endswith("." + named) or named.endswith("." + host)


def honest_label(label: str, target: str) -> str:
    """The label to show for a link: as written, unless it names an address other than the
    target's, in which case the target's real host is shown instead."""
    host = _host(target)
    plain = html.unescape(label)
    named = [m.group(0) for m in _DOMAIN.finditer(plain) if m.group(1).lower() not in _FILE_ENDINGS]
    if host and any(not _same_site(name, host) for name in named):
        return host
    return label


def neutralize_controls(text: str) -> str:
    """Raw text with every would-be control sequence broken by a zero-width space after `<`.

    For text Slack renders as Markdown (native streams), where escaping is not ours to do:
    `<!channel>` reads the same but pings nobody, `<https://x|y>` is no labelled link.
    """
    return _CONTROL.sub("<" + ZERO_WIDTH_SPACE, text)
