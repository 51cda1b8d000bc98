"""Exceptions that map to the contract's exit codes."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad flags or environment: exits with EXIT_USAGE (a restart will not help)."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read."""
