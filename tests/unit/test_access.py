"""Who is admitted where (pure rules)."""

from __future__ import annotations

from access import CHANNEL_REFUSED, PERSON_REFUSED, AccessPolicy


def test_empty_lists_admit_everyone() -> None:
    assert AccessPolicy().refusal("U1", "C1", is_direct=False) is None


def test_people_list_applies_everywhere_and_channel_list_only_outside_dms() -> None:
    policy = AccessPolicy(frozenset({"U1"}), frozenset({"C1"}))
    assert policy.refusal("U1", "C1", is_direct=False) is None
    assert policy.refusal("U1", "D9", is_direct=True) is None
    assert policy.refusal("U1", "C2", is_direct=False) == CHANNEL_REFUSED
    assert policy.refusal("U2", "C1", is_direct=False) == PERSON_REFUSED
    assert policy.refusal("U2", "D8", is_direct=True) == PERSON_REFUSED


def test_admins_are_always_admitted() -> None:
    policy = AccessPolicy(frozenset({"U1"}), frozenset({"C1"}), admins=frozenset({"U9"}))
    assert policy.refusal("U9", "C2", is_direct=False) is None
    assert policy.person_refusal("U9") is None
    assert policy.is_admin("U9") and not policy.is_admin("U1")
