"""Prometheus exporter for the operational backbone of an electronic-trading platform."""
