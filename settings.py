"""What a person can tune, and how the layers combine. Pure: no I/O.

Precedence, resolved on every turn by `resolve`: environment defaults < everyone's defaults
(set by admins) < a person's defaults < the thread's settings for everyone (set by the person
who started the thread, or an admin) < that person's own settings in the thread. Layers store
only what differs from the layer below (`overrides`), so a default changed in the environment
later still reaches everyone who never touched it. A thread's layer for everyone is a diff
against everyone's layers (never against its saver's own defaults), and never holds custom
instructions: one person's instructions reach only their own answers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, Mapping, Protocol

REASONING_EFFORTS = ("minimal", "low", "medium", "high")
VERBOSITIES = ("low", "medium", "high")
IMAGE_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
IMAGE_QUALITIES = ("auto", "low", "medium", "high")
MAX_INSTRUCTIONS = 3000

LABELS = {
    "model": "Model",
    "reasoning_effort": "Reasoning effort",
    "verbosity": "Verbosity",
    "temperature": "Temperature",
    "custom_instructions": "Custom instructions",
    "streaming": "Streaming",
    "web_search": "Web search",
    "code_interpreter": "Running code",
    "image_size": "Image size",
    "image_quality": "Image quality",
    "tools_off": "Team tools switched off",
}
# A tool group's name (an MCP server's), as settings store it.
_GROUP = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_GROUPS = 100


@dataclass(frozen=True)
class Settings:
    model: str
    reasoning_effort: str = "low"
    verbosity: str = "medium"
    temperature: float = 1.0
    custom_instructions: str = ""
    streaming: bool = True
    web_search: bool = False
    code_interpreter: bool = False
    image_size: str = "auto"
    image_quality: str = "auto"
    # The team's tool groups (MCP servers) this person does not want offered to the model.
    tools_off: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELD_NAMES = tuple(f.name for f in fields(Settings))

# Where a settings window saves: a person's defaults, a thread for everyone in it, one
# person's own answers in a thread, or everyone's defaults.
Scope = Literal["user", "thread", "thread_mine", "workspace"]
# What a layer for other people may set: everything but a person's own instructions.
PERSONAL_FIELDS = ("custom_instructions",)


def shared(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` without what is personal: what may apply to other people's answers."""
    return {name: value for name, value in values.items() if name not in PERSONAL_FIELDS}


@dataclass(frozen=True)
class UsageSummary:
    """A person's tokens, shown in their settings window."""

    today: int
    last_30_days: int
    daily_budget: int = 0


class SettingsSource(Protocol):
    """What the settings modal needs from storage (implemented by the processor's store)."""

    async def for_user(self, user_id: str) -> Settings: ...

    async def for_workspace(self) -> Settings: ...

    async def usage(self, user_id: str) -> UsageSummary: ...

    async def effective(self, user_id: str, channel_id: str | None, thread_ts: str | None) -> Settings: ...

    async def for_thread(self, channel_id: str, thread_ts: str) -> Settings: ...

    def available_models(self) -> tuple[str, ...]: ...

    def accepted_models(self) -> tuple[str, ...] | None: ...

    async def save(
        self, user_id: str, scope: Scope, values: dict[str, Any],
        channel_id: str | None = None, thread_ts: str | None = None,
    ) -> tuple[Settings, Settings]: ...


# A model id longer than this is not one (a forged submission).
MAX_MODEL_ID = 200


def is_reasoning_model(model: str, prefixes: tuple[str, ...]) -> bool:
    """Reasoning models take effort/verbosity instead of temperature ("-chat" variants don't)."""
    return model.startswith(prefixes) and "-chat" not in model


def validate(
    raw: Mapping[str, Any], available_models: tuple[str, ...] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check submitted values field by field: (clean values, {field: problem}).

    `available_models` None: the models are not known yet, so any model id is taken.
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    choices: dict[str, tuple[str, ...]] = {
        "model": available_models or (),
        "reasoning_effort": REASONING_EFFORTS,
        "verbosity": VERBOSITIES,
        "image_size": IMAGE_SIZES,
        "image_quality": IMAGE_QUALITIES,
    }
    for name, value in raw.items():
        if name not in FIELD_NAMES:
            continue
        if name == "model" and available_models is None:
            if isinstance(value, str) and 0 < len(value) <= MAX_MODEL_ID:
                values[name] = value
            else:
                errors[name] = "Choose a model."
        elif name in choices:
            if value not in choices[name]:
                errors[name] = f"Choose one of: {', '.join(choices[name])}."
            else:
                values[name] = value
        elif name == "temperature":
            try:
                number = float(value)
            except (TypeError, ValueError):
                errors[name] = "Enter a number from 0 to 2."
                continue
            if not 0 <= number <= 2:
                errors[name] = "Enter a number from 0 to 2."
            else:
                values[name] = number
        elif name == "custom_instructions":
            text = (value or "").strip()
            if len(text) > MAX_INSTRUCTIONS:
                errors[name] = f"Keep it under {MAX_INSTRUCTIONS} characters (now {len(text)})."
            else:
                values[name] = text
        elif name in ("streaming", "web_search", "code_interpreter"):
            values[name] = bool(value)
        elif name == "tools_off":
            names = value if isinstance(value, (list, tuple)) else []
            groups = sorted({str(n) for n in names if _GROUP.match(str(n))})
            values[name] = tuple(groups[:MAX_GROUPS])
    return values, errors


def resolve(
    defaults: Settings, *layers: Mapping[str, Any], available_models: tuple[str, ...] | None
) -> Settings:
    """Apply override layers in order; a stored value that is no longer valid is ignored."""
    settings = defaults
    for layer in layers:
        clean, _ = validate(layer, available_models)
        settings = replace(settings, **clean)
    return settings


def overrides(settings: Mapping[str, Any], base: Settings) -> dict[str, Any]:
    """Only the values that differ from `base`: what a layer needs to store."""
    current = base.as_dict()
    return {name: value for name, value in settings.items() if name in current and current[name] != value}


def describe_changes(before: Settings, after: Settings) -> list[str]:
    """Human lines for a confirmation, e.g. "Model: gpt-5.5 → gpt-5.5-mini"."""
    lines = []
    for name in FIELD_NAMES:
        old, new = getattr(before, name), getattr(after, name)
        if old == new:
            continue
        if name == "custom_instructions":
            lines.append("Custom instructions: " + ("updated" if new else "removed"))
        elif name == "tools_off":
            lines.append(f"{LABELS[name]}: " + (", ".join(new) if new else "none"))
        elif isinstance(new, bool):
            lines.append(f"{LABELS[name]}: {'on' if new else 'off'}")
        else:
            lines.append(f"{LABELS[name]}: {old} → {new}")
    return lines
