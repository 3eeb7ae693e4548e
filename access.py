"""Who may talk to the bot, and who may change everyone's defaults. Pure: no I/O.

Empty allow-lists mean everyone. Direct messages are governed by the people list alone (a DM is
not a channel a team would list); admins are always admitted.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import Config

PERSON_REFUSED = (
    ":lock: Sorry, I'm not available to you. The team that runs this assistant has limited it "
    "to certain people; ask them if you need access."
)
EXTERNAL_REFUSED = (
    ":lock: Sorry, I only answer people of this workspace's organization. Ask the team that "
    "runs this assistant if people from other organizations should be able to use it."
)
CHANNEL_REFUSED = (
    ":lock: Sorry, I'm not enabled in this channel. Ask the team that runs this assistant to add "
    "it, or message me directly."
)


@dataclass(frozen=True)
class AccessPolicy:
    allowed_users: frozenset[str] = frozenset()
    allowed_channels: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    # People of another organization (a Slack Connect channel) are refused unless this is set.
    allow_external: bool = False

    @classmethod
    def from_config(cls, config: Config) -> AccessPolicy:
        return cls(frozenset(config.allowed_user_ids), frozenset(config.allowed_channel_ids),
                   frozenset(config.admin_user_ids), config.allow_external_users)

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    def person_refusal(self, user_id: str, external: bool = False) -> str | None:
        """None when the person may use the bot at all (settings included), else why not.

        `external`: the person belongs to another organization than the app's workspace."""
        if external and not self.allow_external:
            return EXTERNAL_REFUSED
        if self.is_admin(user_id) or not self.allowed_users or user_id in self.allowed_users:
            return None
        return PERSON_REFUSED

    def refusal(self, user_id: str, channel_id: str, is_direct: bool, external: bool = False) -> str | None:
        """None when the person may be answered here, else the polite reason why not."""
        if external and not self.allow_external:
            return EXTERNAL_REFUSED
        if self.is_admin(user_id):
            return None
        if not is_direct and self.allowed_channels and channel_id not in self.allowed_channels:
            return CHANNEL_REFUSED
        return self.person_refusal(user_id)
