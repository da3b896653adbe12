"""Alerts: the Alert lifecycle, the alert manager, and the wire formats (pure encode/decode)."""

from alerts.alert import Alert, AlertState

__all__ = ["Alert", "AlertState"]
