"""Probe function apps for the dev host's conformance tests (each exercises one trigger family)."""
