"""Every setting the code reads is documented where operators look."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_read_by_config() -> set[str]:
    source = (ROOT / "config.py").read_text()
    return set(re.findall(r'r\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_config_reads_the_settings_we_expect() -> None:
    names = settings_read_by_config()
    assert {"SLACK_BOT_TOKEN", "OPENAI_TIMEOUT_SECONDS", "AVAILABLE_MODELS"} <= names


def test_every_setting_is_in_env_example_and_configuration_doc() -> None:
    env_example = (ROOT / ".env.example").read_text()
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    names = settings_read_by_config()
    missing_example = sorted(n for n in names if not re.search(rf"^{n}=", env_example, re.M))
    missing_doc = sorted(n for n in names if f"`{n}`" not in configuration)
    assert missing_example == [] and missing_doc == []
