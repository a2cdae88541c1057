"""Tests of the Alertmanager configuration and templates (alertmanager/)."""
