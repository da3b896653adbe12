"""Detectors: the anomaly-detection core that turns Observations into Findings."""

from detectors.finding import Finding

__all__ = ["Finding"]
