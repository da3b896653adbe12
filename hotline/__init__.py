"""Hotline: a reference monitoring-centre receiver for anxin alerts."""
