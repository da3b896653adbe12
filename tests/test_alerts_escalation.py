"""Escalation until a person takes charge: tiers add, acceptance stops, tests never escalate."""

from __future__ import annotations

from itertools import count

import pytest

from alerts.alert import AlertState
from alerts.escalation import Policy, Tier, single_tier
from alerts.manager import Change, FeedbackError, Manager, ManagerConfig
from detectors.finding import Finding

POLICY = Policy(
    tiers=(Tier("primary", ("hotline-a",)),
           Tier("backup", ("hotline-b",), after_s=(60, 300, 0, 0)),
           Tier("family", ("daughter-sms", "hotline-a"), after_s=(120, 600, 0, 0))),
    renotify_s=(30, 0, 0, 0))


def finding(severity=1, event="sos", code=101, at=0.0, test=False, device="btn"):
    return Finding(detector="instant", home="h1", code=code, event=event, severity=severity,
                   at=at, device=device, room="bedroom", test=test)


def manager(policy=POLICY):
    n = count()
    return Manager(ManagerConfig(policy=policy), new_id=lambda now: f"A{next(n)}")


def changes(pairs):
    return [(a.id, c, a.tier) for a, c in pairs]


def test_tiers_add_in_order_with_reminders_between():
    m = manager()
    ((alert, c),) = m.on_finding(finding(), 0.0)
    assert c is Change.RAISED and alert.tier == 0 and m.next_deadline() == 30.0
    assert m.tick(29.0) == []
    assert changes(m.tick(30.0)) == [("A0", Change.REMINDED, 0)]
    assert alert.reminders == 1
    assert changes(m.tick(60.0)) == [("A0", Change.ESCALATED, 1)]  # backup told, primary kept
    assert POLICY.targets(alert.tier) == ("hotline-a", "hotline-b")
    assert changes(m.tick(90.0)) == [("A0", Change.REMINDED, 1)]
    assert changes(m.tick(180.0)) == [("A0", Change.ESCALATED, 2)]
    assert POLICY.targets(alert.tier) == ("hotline-a", "hotline-b", "daughter-sms")
    # no tier left: reminders go on until someone accepts
    assert changes(m.tick(210.0)) == [("A0", Change.REMINDED, 2)]
    assert any("escalated to tier 2 (family)" in h[2] for h in alert.history)


def test_acceptance_stops_escalation_and_resolution_closes():
    m = manager()
    ((alert, _),) = m.on_finding(finding(), 0.0)
    assert changes(m.on_feedback(alert, "accepted", 10.0, operator="王接警员")) == [
        ("A0", Change.ACCEPTED, 0)]
    assert alert.state is AlertState.ACCEPTED and alert.taken_by == "王接警员"
    assert m.tick(1000.0) == [] and m.next_deadline() is None
    assert m.on_feedback(alert, "accepted", 11.0) == []  # a second acceptance changes nothing
    assert changes(m.on_feedback(alert, "resolved", 300.0, outcome="false_alarm")) == [
        ("A0", Change.RESOLVED, 0)]
    assert alert.outcome == "false_alarm" and not alert.is_open


def test_resolution_without_acceptance_also_stops_everything():
    m = manager()
    ((alert, _),) = m.on_finding(finding(), 0.0)
    m.on_feedback(alert, "resolved", 5.0, outcome="real_emergency", operator="op")
    assert m.tick(1000.0) == [] and alert.state is AlertState.RESOLVED


@pytest.mark.parametrize(("action", "kw", "message"), [
    ("resolved", {"outcome": "fine"}, "outcome 'fine'"),
    ("closed", {}, "unknown action"),
])
def test_bad_feedback_is_refused_with_reason(action, kw, message):
    m = manager()
    ((alert, _),) = m.on_finding(finding(), 0.0)
    with pytest.raises(FeedbackError, match=message):
        m.on_feedback(alert, action, 1.0, **kw)


def test_pending_fall_cannot_be_accepted():
    m = Manager(ManagerConfig(fall_cancel_window_s=30, policy=POLICY))
    ((alert, _),) = m.on_finding(finding(event="fall", code=100), 0.0)
    with pytest.raises(FeedbackError, match="cannot be accepted"):
        m.on_feedback(alert, "accepted", 1.0)


def test_escalation_clock_starts_when_the_fall_is_raised_not_detected():
    m = Manager(ManagerConfig(fall_cancel_window_s=30, policy=POLICY))
    ((alert, _),) = m.on_finding(finding(event="fall", code=100), 0.0)
    assert changes(m.tick(30.0)) == [(alert.id, Change.RAISED, 0)]
    assert changes(m.tick(89.0)) == [(alert.id, Change.REMINDED, 0)]
    assert changes(m.tick(90.0)) == [(alert.id, Change.ESCALATED, 1)]


def test_severity_decides_the_waits():
    m = manager()
    m.on_finding(finding(severity=2, event="water_leak", code=154), 0.0)
    assert m.tick(299.0) == []  # no reminders for severity 2 in this policy
    assert changes(m.tick(300.0)) == [("A0", Change.ESCALATED, 1)]
    ((tech, _),) = m.on_finding(finding(severity=4, event="low_battery", code=384,
                                        device="x"), 0.0)
    assert tech.id not in m.watch  # technical: tier 0 only, nothing further


def test_test_alerts_never_escalate_or_repeat():
    m = manager()
    ((alert, c),) = m.on_finding(finding(test=True), 0.0)
    assert c is Change.RAISED and alert.id not in m.watch
    assert m.tick(10_000.0) == []


def test_restart_resumes_escalation_where_it_was():
    m = manager()
    ((alert, _),) = m.on_finding(finding(), 0.0)
    m.tick(60.0)  # escalated to tier 1
    m2 = manager()
    # 200 s later the gateway is back: the family tier is overdue
    assert changes(m2.restore([alert], 200.0)) == [("A0", Change.ESCALATED, 2)]


def test_single_tier_policy_tells_everyone_once():
    m = manager(single_tier(("a", "b")))
    ((alert, _),) = m.on_finding(finding(), 0.0)
    assert m.tick(10_000.0) == [] and alert.id not in m.watch
