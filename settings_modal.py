"""The settings modal as Block Kit: building it, reading it back. Pure functions, no Slack calls.

What must survive between opening the modal, a `views.update` and the submission (who it is
for, which thread) travels in `private_metadata`, signed with an HMAC: Slack hands it back
as we sent it, but a value we cannot verify, or one that is too old, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from typing import Any

from settings import (
    IMAGE_QUALITIES,
    IMAGE_SIZES,
    MAX_INSTRUCTIONS,
    REASONING_EFFORTS,
    VERBOSITIES,
    Scope,
    Settings,
    UsageSummary,
)

CALLBACK_ID = "ai_settings"
MODEL_ACTION = "model_select"
OPEN_SETTINGS_ACTION = "open_settings"
METADATA_MAX_AGE = 24 * 3600

# Block ids equal the settings field they edit, so validation errors map straight onto them.
FEATURES = "features"
SCOPE = "scope"
TOOL_GROUPS = "tool_groups"


class InvalidMetadata(Exception):
    """The modal's private_metadata is tampered with, for someone else, or too old."""


@dataclass(frozen=True)
class ModalContext:
    user_id: str
    issued_at: float
    channel_id: str = ""
    thread_ts: str = ""
    # May save the thread's settings for everyone in it (its starter, or an admin).
    shared: bool = False

    @property
    def for_thread(self) -> bool:
        return bool(self.channel_id and self.thread_ts)


def signing_key(bot_token: str) -> bytes:
    """A key only this installation knows, without another setting to manage."""
    return hashlib.sha256(b"settings-modal:" + bot_token.encode()).digest()


def sign_context(context: ModalContext, key: bytes) -> str:
    body = base64.urlsafe_b64encode(json.dumps(asdict(context), separators=(",", ":")).encode()).decode()
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def read_context(metadata: str, key: bytes, user_id: str, now: float) -> ModalContext:
    body, _, mac = (metadata or "").rpartition(".")
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac, expected):
        raise InvalidMetadata("signature does not match")
    try:
        context = ModalContext(**json.loads(base64.urlsafe_b64decode(body)))
    except (ValueError, TypeError) as exc:
        raise InvalidMetadata(f"unreadable: {exc}") from exc
    if context.user_id != user_id:
        raise InvalidMetadata("opened for another person")
    if not 0 <= now - context.issued_at <= METADATA_MAX_AGE:
        raise InvalidMetadata("too old")
    return context


def _text(value: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": value, "emoji": True}


def _option(value: str, label: str | None = None) -> dict[str, Any]:
    return {"text": _text(label or value), "value": value}


def _select(block_id: str, label: str, choices: tuple[str, ...], current: str,
            action_id: str | None = None, dispatch: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _text(label),
        "element": {
            "type": "static_select",
            "action_id": action_id or block_id,
            "options": [_option(c) for c in choices],
            "initial_option": _option(current),
        },
    }
    if dispatch:
        block["dispatch_action"] = True
    return block


NOT_YOUR_THREAD = (
    "You didn't start this thread, so what you save here changes only your own answers in it. "
    "The person who started it sets it for everyone."
)
SCOPE_LABELS: dict[str, str] = {
    "thread": "This thread, for everyone in it",
    "thread_mine": "Only my answers in this thread",
    "user": "My defaults (all new conversations)",
    "workspace": "Everyone's defaults (admin)",
}


def usage_text(usage: UsageSummary) -> str:
    text = f"Your usage: *{usage.today:,}* tokens today, *{usage.last_30_days:,}* in the last 30 days"
    if usage.daily_budget:
        text += f" (daily allowance {usage.daily_budget:,})"
    return text + "."


def build_view(
    settings: Settings,
    available_models: tuple[str, ...],
    reasoning: bool,
    metadata: str,
    scope: Scope = "user",
    scopes: tuple[Scope, ...] = (),
    usage: UsageSummary | None = None,
    *,
    web_search: bool = True,
    note: str | None = None,
    tool_groups: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The modal showing `settings`, saved at `scope`; more than one of `scopes` adds the choice.

    `web_search=False` (a Chat Completions server has no hosted tools) leaves web search and
    running code out, with a line saying why;
    `note` is a line shown at the top (who this window's changes apply to); `tool_groups` are
    the team's tool servers, each switched on or off here.
    """
    models = available_models if settings.model in available_models else (settings.model, *available_models)
    blocks: list[dict[str, Any]] = []
    if note:
        blocks.append({"type": "context", "block_id": "note", "elements": [{"type": "mrkdwn", "text": note}]})
    if usage is not None:
        blocks.append({"type": "context", "block_id": "usage",
                       "elements": [{"type": "mrkdwn", "text": usage_text(usage)}]})
    if len(scopes) > 1:
        choices = [_option(s, SCOPE_LABELS[s]) for s in scopes]
        blocks.append({
            "type": "input", "block_id": SCOPE, "label": _text("Apply to"),
            "element": {"type": "radio_buttons", "action_id": SCOPE, "options": choices,
                        "initial_option": choices[scopes.index(scope) if scope in scopes else 0]},
        })
    blocks.append(_select("model", "Model", models, settings.model, MODEL_ACTION, dispatch=True))
    if reasoning:
        blocks.append(_select("reasoning_effort", "Reasoning effort", REASONING_EFFORTS, settings.reasoning_effort))
        blocks.append(_select("verbosity", "Verbosity", VERBOSITIES, settings.verbosity))
    else:
        blocks.append({
            "type": "input", "block_id": "temperature", "label": _text("Temperature (0 = focused, 2 = creative)"),
            "element": {"type": "number_input", "action_id": "temperature", "is_decimal_allowed": True,
                        "initial_value": f"{settings.temperature:g}", "min_value": "0", "max_value": "2"},
        })
    instructions: dict[str, Any] = {
        "type": "plain_text_input", "action_id": "custom_instructions", "multiline": True,
        "max_length": MAX_INSTRUCTIONS,
        "placeholder": _text("For example: answer in French; keep answers short."),
    }
    if settings.custom_instructions:
        instructions["initial_value"] = settings.custom_instructions
    blocks.append({
        "type": "input", "block_id": "custom_instructions", "optional": True,
        "label": _text("Custom instructions"), "element": instructions,
        "hint": _text("Only ever used for your own answers, wherever you save them."),
    })
    features = [_option("streaming", "Stream answers as they are written")]
    if web_search:
        features.append(_option("web_search", "Let the model search the web"))
        features.append(_option("code_interpreter", "Let the model run code (charts, calculations)"))
    feature_input: dict[str, Any] = {"type": "checkboxes", "action_id": FEATURES, "options": features}
    selected = [f for f in features if getattr(settings, f["value"])]
    if selected:
        feature_input["initial_options"] = selected
    feature_block: dict[str, Any] = {"type": "input", "block_id": FEATURES, "optional": True,
                                     "label": _text("Features"), "element": feature_input}
    if not web_search:
        feature_block["hint"] = _text("Web search and running code need OpenAI's Responses API, "
                                      "which this bot's model server does not offer.")
    blocks.append(feature_block)
    if tool_groups:
        groups = [_option(g, g) for g in tool_groups]
        group_input: dict[str, Any] = {"type": "checkboxes", "action_id": TOOL_GROUPS, "options": groups}
        on = [g for g in groups if g["value"] not in settings.tools_off]
        if on:
            group_input["initial_options"] = on
        blocks.append({"type": "input", "block_id": TOOL_GROUPS, "optional": True,
                       "label": _text("Your team's tools"), "element": group_input,
                       "hint": _text("The model may use the tools of the servers ticked here.")})
    blocks.append(_select("image_size", "Image size", IMAGE_SIZES, settings.image_size))
    blocks.append(_select("image_quality", "Image quality", IMAGE_QUALITIES, settings.image_quality))
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": metadata,
        "title": _text("Assistant settings"),
        "submit": _text("Save"),
        "close": _text("Cancel"),
        "blocks": blocks,
    }


def tools_off(raw: dict[str, Any], groups: tuple[str, ...]) -> dict[str, Any]:
    """The window's ticked tool servers as the setting stores them: the ones switched off."""
    if TOOL_GROUPS not in raw:
        return raw
    ticked = set(raw[TOOL_GROUPS])
    return {**raw, "tools_off": [g for g in groups if g not in ticked]}


def read_state(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The raw values of a submitted (or updating) modal, keyed by settings field (+ scope)."""
    raw: dict[str, Any] = {}
    for block_id, actions in values.items():
        for element in actions.values():
            kind = element.get("type")
            if kind in ("static_select", "radio_buttons"):
                option = element.get("selected_option") or {}
                raw[block_id] = option.get("value")
            elif kind == "checkboxes" and block_id == TOOL_GROUPS:
                raw[TOOL_GROUPS] = [o.get("value") for o in element.get("selected_options") or []]
            elif kind == "checkboxes":
                chosen = {o.get("value") for o in element.get("selected_options") or []}
                raw["streaming"] = "streaming" in chosen
                raw["web_search"] = "web_search" in chosen
                raw["code_interpreter"] = "code_interpreter" in chosen
            elif kind in ("plain_text_input", "number_input"):
                raw[block_id] = element.get("value") or ""
    return raw
