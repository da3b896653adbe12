"""The alert manager: cancel window, cancellation, dedupe, restore after restart."""

from itertools import count

from alerts.alert import AlertState
from alerts.manager import Change, Manager, ManagerConfig
from detectors.finding import Finding
from devices.observation import Observation


def finding(event="smoke", code=111, at=100.0, device="d1", test=False, room="kitchen"):
    return Finding(detector="instant", home="h1", code=code, event=event, severity=1, at=at,
                   device=device, room=room, test=test, evidence={"device": device})


def manager(**kw):
    n = count()
    return Manager(ManagerConfig(**kw), new_id=lambda now: f"A{next(n)}")


def cancel(at):
    return Observation(home="h1", device="btn", kind="cancel", value=True, at=at)


def test_smoke_is_raised_at_once():
    ((alert, change),) = manager().on_finding(finding(), 100.0)
    assert change is Change.RAISED
    assert alert.state is AlertState.RAISED
    assert [h[0] for h in alert.history] == ["pending_local", "raised"]
    assert alert.raised_at == 100.0


def test_fall_waits_then_raises_when_window_runs_out():
    m = manager(fall_cancel_window_s=30)
    ((alert, change),) = m.on_finding(finding("fall", 100), 100.0)
    assert change is Change.PENDING and alert.cancel_deadline == 130.0
    assert m.next_deadline() == 130.0
    assert m.tick(129.9) == []
    ((same, change),) = m.tick(130.0)
    assert same is alert and change is Change.RAISED
    assert m.next_deadline() is None
    assert m.on_observation(cancel(131.0), 131.0) == []  # too late to cancel


def test_fall_cancelled_inside_window_is_recorded_not_sent():
    m = manager(fall_cancel_window_s=30)
    m.on_finding(finding("fall", 100), 100.0)
    ((same, change),) = m.on_observation(cancel(110.0), 110.0)
    assert change is Change.CANCELLED and same.state is AlertState.CANCELLED
    assert same.history[-1][1] == 110.0 and "btn" in same.history[-1][2]
    assert m.tick(200.0) == []


def test_zero_window_sends_fall_at_once():
    ((_, change),) = manager(fall_cancel_window_s=0).on_finding(finding("fall", 100), 1.0)
    assert change is Change.RAISED


def test_cancel_does_not_touch_smoke_or_sos():
    m = manager()
    m.on_finding(finding("sos", 101), 100.0)
    assert m.on_observation(cancel(101.0), 101.0) == []


def test_repeated_presses_fold_into_one_alert_within_window():
    m = manager(dedupe_window_s=120)
    ((a, _),) = m.on_finding(finding("sos", 101), 100.0)
    ((b, change),) = m.on_finding(finding("sos", 101), 150.0)
    assert b is a and change is Change.REPEATED and a.repeats == 1
    ((c, change),) = m.on_finding(finding("sos", 101), 400.0)
    assert c is not a and change is Change.RAISED


def test_test_alarm_and_real_alarm_are_not_folded_together():
    m = manager()
    m.on_finding(finding(test=True), 100.0)
    ((_, change),) = m.on_finding(finding(test=False), 101.0)
    assert change is Change.RAISED


def test_restore_raises_overdue_pending_and_keeps_others():
    m = manager(fall_cancel_window_s=30)
    ((overdue, _),) = m.on_finding(finding("fall", 100, device="r1", room="bathroom"), 100.0)
    ((waiting, _),) = m.on_finding(finding("fall", 100, device="r2", room="bedroom"), 120.0)
    fresh = manager(fall_cancel_window_s=30)
    changes = fresh.restore([overdue, waiting], 140.0)
    assert [(a.id, c) for a, c in changes] == [(overdue.id, Change.RAISED)]
    assert fresh.next_deadline() == 150.0
    assert fresh.known(waiting.id) is waiting



def test_one_cause_one_alert_two_smoke_detectors_in_one_kitchen():
    m = manager()
    ((alert, change),) = m.on_finding(finding(device="smoke-1"), 100.0)
    ((same, change2),) = m.on_finding(finding(device="smoke-2"), 103.0)
    assert same is alert and (change, change2) == (Change.RAISED, Change.REPEATED)
    ev = alert.finding.evidence
    assert ev["devices"] == ["smoke-1", "smoke-2"] and ev["repeats"] == 1
    assert ev["latest"] == {"device": "smoke-2"} and ev["latest_at"] == 100.0
    # the fire reaching another room is news: a second alert
    ((other, change3),) = m.on_finding(finding(device="smoke-3", room="living_room"), 104.0)
    assert other is not alert and change3 is Change.RAISED


def test_one_resident_one_fall_the_radar_and_the_pendant_page_once():
    m = manager(fall_cancel_window_s=30, single_occupant=True)
    ((alert, change),) = m.on_finding(finding("fall", 100, device="radar-bath",
                                              room="bathroom"), 100.0)
    ((same, change2),) = m.on_finding(finding("fall", 100, device="pendant",
                                              room="living_room"), 103.0)
    assert same is alert and (change, change2) == (Change.PENDING, Change.REPEATED)
    assert alert.finding.evidence["devices"] == ["radar-bath", "pendant"]
    # a couple: two people may fall at once; each fall in its own room is its own alert
    m = manager(fall_cancel_window_s=30)
    ((a, _),) = m.on_finding(finding("fall", 100, device="radar-bath", room="bathroom"), 100.0)
    ((b, _),) = m.on_finding(finding("fall", 100, device="pendant", room="living_room"), 103.0)
    assert a is not b
