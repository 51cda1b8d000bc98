"""Models the trainer and the server can build by name.

A model is named either from the built-in registry (``mlp``, ``tinycnn``) or by an
import path ``package.module:ClassName``. Built-in factories take the input shape
and the number of classes; imported classes are called with ``model_kwargs`` only
(the input shape must then be given to the trainer for the synthetic dataset).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Everything needed to rebuild a model: saved inside every checkpoint."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "kwargs": dict(self.kwargs),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelSpec:
        return cls(
            name=str(raw["name"]),
            input_shape=tuple(int(d) for d in raw["input_shape"]),
            num_classes=int(raw["num_classes"]),
            kwargs=dict(raw.get("kwargs", {})),
        )


def _mlp(input_shape: tuple[int, ...], num_classes: int, hidden: int = 128) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def _tinycnn(input_shape: tuple[int, ...], num_classes: int, channels: int = 16) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(f"tinycnn needs a (channels, height, width) input, got {input_shape}")
    in_channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, channels * 2, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels * 2, num_classes),
    )


BuiltinFactory = Callable[..., nn.Module]

BUILTIN_MODELS: Mapping[str, BuiltinFactory] = {"mlp": _mlp, "tinycnn": _tinycnn}
DEFAULT_INPUT_SHAPES: Mapping[str, tuple[int, ...]] = {"mlp": (32,), "tinycnn": (1, 16, 16)}


def build_model(spec: ModelSpec) -> nn.Module:
    """A fresh module for ``spec`` (built-in name or ``pkg.mod:Class``)."""
    if spec.name in BUILTIN_MODELS:
        return BUILTIN_MODELS[spec.name](spec.input_shape, spec.num_classes, **spec.kwargs)
    if ":" not in spec.name:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise ValueError(f"unknown model {spec.name!r}: use one of {known} or 'pkg.mod:Class'")
    module_name, _, attribute = spec.name.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    model = target(**spec.kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{spec.name} built a {type(model).__name__}, not a torch.nn.Module")
    return model
