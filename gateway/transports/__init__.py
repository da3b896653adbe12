"""Transports: send what alerts/ encodes to a hotline. One small base class, one file each."""

from gateway.transports.base import DeliveryError, Transport
from gateway.transports.sms import SmsTransport
from gateway.transports.webhook import WebhookTransport

__all__ = ["DeliveryError", "SmsTransport", "Transport", "WebhookTransport"]
