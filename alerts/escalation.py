"""Escalation policy: who is told, in what order, and how long each gets to take charge.

A home has ordered tiers (hotline primary → hotline backup → family → community worker,
网格员). Tier 0 is told when an alert is raised. If nobody *accepts* the alert (an operator's
"I take this", not a transport acknowledgement) within the next tier's wait for that
severity, the next tier is told as well: escalation adds, it never moves an alert away from
anyone already holding it. While unaccepted, everyone told so far is reminded every
`renotify_s` for the severity. Acceptance or resolution stops both.

Test alerts (drills, commissioning) go to tier 0 only and are never escalated or repeated.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = (1, 2, 3, 4)


@dataclass(frozen=True, slots=True)
class Tier:
    """One escalation step: the targets told together, and how long the tier before gets."""

    name: str
    targets: tuple[str, ...]
    # Per severity 1..4: seconds without acceptance after the previous tier was told before
    # this tier is told too. 0 = this tier is never told for that severity.
    after_s: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def wait(self, severity: int) -> float:
        """Seconds the previous tier gets for an alert of `severity`; 0 = never escalate."""
        return self.after_s[min(max(severity, 1), 4) - 1]


@dataclass(frozen=True, slots=True)
class Policy:
    """The escalation policy of one home."""

    tiers: tuple[Tier, ...] = ()
    # Per severity 1..4: remind everyone told so far this often while unaccepted; 0 = never.
    renotify_s: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def targets(self, upto_tier: int) -> tuple[str, ...]:
        """Every target of tiers 0..upto_tier, in tier order, each once."""
        seen: dict[str, None] = {}
        for tier in self.tiers[:upto_tier + 1]:
            seen.update(dict.fromkeys(tier.targets))
        return tuple(seen)

    def next_tier_at(self, tier: int, tier_at: float, severity: int) -> float | None:
        """When tier `tier + 1` is due if nobody accepts, or None if it never is."""
        if tier + 1 >= len(self.tiers):
            return None
        wait = self.tiers[tier + 1].wait(severity)
        return tier_at + wait if wait > 0 else None

    def renotify_every(self, severity: int) -> float:
        """Seconds between reminders for `severity`; 0 = no reminders."""
        return self.renotify_s[min(max(severity, 1), 4) - 1]


def single_tier(targets: tuple[str, ...]) -> Policy:
    """Everyone told at once, no escalation, no reminders (a home without a policy)."""
    return Policy((Tier("all", targets),))
