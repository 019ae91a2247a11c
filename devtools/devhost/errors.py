"""Errors the dev host raises at start-up (bad configuration) rather than at request time."""

from __future__ import annotations


class DevHostError(RuntimeError):
    """A configuration problem that stops the dev host from starting (missing setting, bad route...)."""
