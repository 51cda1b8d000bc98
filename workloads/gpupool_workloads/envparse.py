"""Typed readers for environment variables, with errors that name the variable."""

from __future__ import annotations

from collections.abc import Mapping

from gpupool_workloads.errors import ConfigError


def env_str(environ: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = environ.get(name, "").strip()
    return value or default


def env_int(environ: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    raw = env_str(environ, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None


def env_float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = env_str(environ, name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def env_int_list(environ: Mapping[str, str], name: str) -> tuple[int, ...]:
    raw = env_str(environ, name)
    if raw is None:
        return ()
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a comma-separated list of integers") from None
