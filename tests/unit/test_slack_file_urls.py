"""Where the bot token may go when a shared file is downloaded."""

from __future__ import annotations

import pytest

from slack_client.utilities import is_slack_file_url

SLACK = "https://slack.com/api/"
LOOPBACK = "http://127.0.0.1:8123/api/"


@pytest.mark.parametrize(
    ("url", "api_url", "trusted"),
    [
        ("https://files.slack.com/files-pri/T0-F0/report.pdf", SLACK, True),
        ("https://FILES.slack.com:443/files-pri/T0-F0/report.pdf", SLACK, True),
        ("http://files.slack.com/files-pri/T0-F0/report.pdf", SLACK, False),  # not over https
        ("https://files.slack.com:8443/files-pri/report.pdf", SLACK, False),
        ("https://files.slack.com.evil.example/report.pdf", SLACK, False),
        ("https://evil.example/files.slack.com/report.pdf", SLACK, False),
        ("https://user@files.slack.com/report.pdf", SLACK, False),
        ("https://[files.slack.com/report.pdf", SLACK, False),  # malformed: no ValueError
        ("https://files.slack.com:99999/report.pdf", SLACK, False),
        ("https://slack.com/files/report.pdf", SLACK, True),  # the configured API itself
        ("http://slack.com/files/report.pdf", SLACK, False),
        ("ftp://files.slack.com/report.pdf", SLACK, False),
        ("", SLACK, False),
        # The configured API is trusted as it is (the loopback test bed), but only exactly it.
        ("http://127.0.0.1:8123/files/F0/notes.txt", LOOPBACK, True),
        ("http://127.0.0.1:8124/files/F0/notes.txt", LOOPBACK, False),
        ("http://127.0.0.2:8123/files/F0/notes.txt", LOOPBACK, False),
        ("https://files.slack.com/files-pri/T0-F0/report.pdf", LOOPBACK, True),
    ],
)
def test_the_token_goes_only_over_https_to_slack_or_to_the_configured_api(
    url: str, api_url: str, trusted: bool
) -> None:
    assert is_slack_file_url(url, api_url) is trusted
