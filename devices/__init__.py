"""Devices: the catalogue of real models, payload adapters and the canonical Observation."""

from devices.observation import KINDS, Observation, PayloadError
from devices.registry import Device

__all__ = ["KINDS", "Device", "Observation", "PayloadError"]
