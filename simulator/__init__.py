"""Simulator: virtual homes whose devices speak each model's native payloads."""
