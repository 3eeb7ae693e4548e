"""E-mails (.eml): the headers, the body (plain text, else the HTML part as a web page) and the
attachments by name, type and size only, by the stdlib's `email` package.
"""

from __future__ import annotations

import logging
from typing import Any

from document_readers.common import DocumentError, Extracted, Limits
from document_readers.text import decode
from document_readers.web_pages import html_text

log = logging.getLogger(__name__)

# An e-mail lists at most this many attachment names; a header is cut at this many characters.
MAX_ATTACHMENT_NAMES = 50
MAX_HEADER_CHARS = 500


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


def _part_text(part: Any) -> str:
    """A text part's content, decoded; a charset Python does not know falls back to our guess."""
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError, ValueError) as exc:
        log.warning(
            "e-mail part in charset %r not decoded by the email package (%s)",
            part.get_content_charset(), type(exc).__name__,
        )
        return decode(part.get_payload(decode=True) or b"")


def _header(message: Any, field: str) -> str:
    try:
        value = str(message.get(field) or "")
    except (IndexError, ValueError, TypeError, AttributeError) as exc:  # a malformed address list
        log.warning("e-mail header %s not parsed (%s): shown as written", field, type(exc).__name__)
        value = next((raw for name, raw in message.raw_items() if name.lower() == field.lower()), "")
    value = " ".join(value.split())
    return value[:MAX_HEADER_CHARS] + "…" if len(value) > MAX_HEADER_CHARS else value


def read_eml(data: bytes, limits: Limits) -> Extracted:
    """From, To, Cc, Date and Subject; the body (plain text, else the HTML part as text); the
    attachments by name, type and size only: their content is never read."""
    import email
    from email import policy

    message = email.message_from_bytes(data, policy=policy.default)
    headers = [
        f"{field}: {value}" for field in ("From", "To", "Cc", "Date", "Subject") if (value := _header(message, field))
    ]
    if not headers:
        raise DocumentError("it does not look like an e-mail message (it has no From, To, Date or Subject)")
    body = ""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is not None:
        content = _part_text(part)
        body = html_text(content, limits.max_chars) if part.get_content_type() == "text/html" else content.strip()
    attachments = []
    for attachment in message.iter_attachments():
        payload = attachment.get_payload(decode=True)
        details = attachment.get_content_type() + (f", {_size(len(payload))}" if isinstance(payload, bytes) else "")
        attachments.append(f"{' '.join((attachment.get_filename() or 'unnamed').split())[:200]} ({details})")
    tail = ""
    if attachments:
        shown = attachments[:MAX_ATTACHMENT_NAMES]
        more = f", and {len(attachments) - len(shown)} more" if len(attachments) > len(shown) else ""
        tail = "\n\nAttachments: " + ", ".join(shown) + more
    head = "\n".join(headers) + "\n\n"
    room = max(limits.max_chars - len(head) - len(tail), 0)
    truncated = len(body) > room
    if truncated:  # the body is cut, so the attachments still show
        body = body[:room] + "\n[… the rest of the message is cut …]"
    return Extracted(head + (body or "(no text in the body)") + tail, truncated=truncated)
