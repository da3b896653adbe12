"""What the hotline needs from its store, as an interface: SQLite serves a district centre,
another database (PostgreSQL for a city-scale centre) can serve the same console.

`hotline.store.HotlineStore` is the SQLite implementation. Its SQL keeps to what PostgreSQL
also reads where that costs nothing (`INSERT … ON CONFLICT`, `RETURNING`, `coalesce`, no
SQLite date functions; percentiles are computed in Python, not in SQL), so a PostgreSQL
implementation is mostly the same statements with `%s` placeholders and its own migrations.
No PostgreSQL driver is a dependency of anxin: a centre that needs one adds it with its store.

Every method is called on one thread (`AsyncHotlineStore` runs them off the event loop);
times are Unix seconds; rows are plain dicts (see `HotlineStore` for their keys).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

Row = dict[str, Any]


@runtime_checkable
class ConsoleStore(Protocol):
    """The operations the receiver, the MQTT link and the operator console use."""

    # --- alerts in, and the receiver's records
    def record(self, body: Row, now: float) -> tuple[Row, bool]:
        """Store a verified alert once (dedupe on alert_id); (row, duplicate)."""
    def reject(self, remote: str | None, reason: str, detail: str, raw: bytes,
               now: float) -> None:
        """Keep a refused message with the reason."""
    def rejections(self, limit: int = 200) -> list[Row]:
        """Refused messages, newest first."""
    def notified(self, msg: Row, now: float) -> Row:
        """Keep an `anxin.notify/1` request (the SMS/voice stand-in)."""
    def notifications(self, limit: int = 200) -> list[Row]:
        """SMS/voice requests received, newest first."""
    def record_intercom(self, body: Row, now: float) -> tuple[Row, bool]:
        """Keep an `anxin.intercom/1` event once (dedupe on event_id); (row, duplicate)."""

    # --- supervision
    def seen(self, gateway_id: str, home_id: str, now: float, *, heartbeat: bool
             ) -> Row | None:
        """A gateway was heard from; the closed loss-of-supervision alert, if any."""
    def gone_silent(self, now: float, after_s: float, tz: ZoneInfo) -> list[Row]:
        """New loss-of-supervision alerts for gateways silent `after_s`."""
    def went_offline(self, gateway_id: str, now: float, tz: ZoneInfo) -> Row | None:
        """A gateway's uplink died (last will): its loss-of-supervision alert."""
    def gateways(self) -> list[Row]:
        """Every gateway heard from, most recently seen first."""

    # --- operator actions (the audit trail) and the feedback gateways read
    def act(self, alert_id: str, action: str, operator: str, outcome: str | None, note: str,
            now: float, detail: Row | None = None) -> Row:
        """Apply and audit an action; the alert as it now stands (ActionError if not allowed)."""
    def look_in(self, home_id: str, alert_id: str, operator: str, request_id: str,
                now: float) -> Row:
        """Audit a video look-in request and queue it for the home's gateway."""
    def feedback(self, gateway_id: str, after: int, limit: int = 100
                 ) -> tuple[list[Row], int]:
        """Feedback events for a gateway after a cursor, and the new cursor."""
    def unsent_feedback(self) -> list[tuple[str, list[Row], int]]:
        """Per gateway, feedback not yet published over MQTT, and its cursor."""
    def feedback_sent(self, gateway_id: str, cursor: int) -> None:
        """Feedback up to `cursor` was published to the gateway."""

    # --- what the console shows
    def alerts(self, limit: int = 200) -> list[Row]:
        """All alerts, newest first."""
    def get(self, alert_id: str) -> Row | None:
        """One alert."""
    def queue(self, limit: int = 500) -> list[Row]:
        """Unresolved alerts, most severe then oldest first."""
    def history(self, limit: int = 200, offset: int = 0) -> list[Row]:
        """Resolved alerts, most recently resolved first."""
    def home_alerts(self, home_id: str, limit: int = 20) -> list[Row]:
        """A home's alerts, newest first."""
    def audit(self, alert_id: str) -> list[Row]:
        """Every action on an alert, in order."""
    def home_look_ins(self, home_id: str, limit: int = 20) -> list[Row]:
        """Look-ins asked of a home, newest first."""
    def intercom_events(self, home_id: str, limit: int = 50) -> list[Row]:
        """A home's intercom events, newest first."""
    def between(self, start: float, end: float) -> list[Row]:
        """Real alerts received in [start, end) with the fields statistics need."""

    # --- operators and sessions
    def add_operator(self, username: str, role: str, password_hash: str, now: float) -> None:
        """Create an operator (ValueError if the name is taken)."""
    def operator(self, username: str) -> Row | None:
        """One operator, with the password hash."""
    def operators(self) -> list[Row]:
        """Every operator, without password hashes."""
    def update_operator(self, username: str, *, role: str | None = None,
                        password_hash: str | None = None, disabled_at: float | None = None,
                        enable: bool = False) -> bool:
        """Change role/password/state (a password change or disabling ends their sessions)."""
    def count_operators(self) -> int:
        """How many operators exist."""
    def open_session(self, token_hash: str, username: str, csrf: str, now: float,
                     expires_at: float) -> None:
        """Keep a new session by the hash of its token."""
    def session(self, token_hash: str, now: float) -> Row | None:
        """The live session (username, role, csrf), or None."""
    def close_session(self, token_hash: str) -> None:
        """End a session."""

    def close(self) -> None:
        """Release the database."""
