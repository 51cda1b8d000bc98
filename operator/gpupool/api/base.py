"""Base model of every gpupool API object, and the CEL rules attached to models.

Fields are snake_case in Python and camelCase on the wire (``gpus_per_replica`` ->
``gpusPerReplica``, with Kubernetes' capitalised acronyms: ``guaranteed_gpus`` ->
``guaranteedGPUs``, ``gpu_memory_mib`` -> ``gpuMemoryMiB``). Models accept both
spellings and dump by alias, so

    spec = TrainingJobSpec.model_validate(body["spec"])
    patch = {"status": status.model_dump(exclude_none=True)}

round-trips with the API server.

A cross-field rule is written once as a method decorated with :func:`cel_rule`:
the CEL expression goes into the CRD as ``x-kubernetes-validations`` (enforced by
the API server), and the method body is its Python twin, run by the model
validator (so the operator, the simulator and unit tests reject the same objects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

_ACRONYMS = {"gpu": "GPU", "gpus": "GPUs", "mib": "MiB", "id": "ID", "ip": "IP"}


def to_camel(name: str) -> str:
    """``guaranteed_gpus`` -> ``guaranteedGPUs``; the first word stays lower-case."""
    first, *rest = name.split("_")
    return first + "".join(_ACRONYMS.get(word, word.capitalize()) for word in rest)


@dataclass(frozen=True)
class CelRule:
    """One entry of ``x-kubernetes-validations`` on the schema of a model."""

    rule: str
    message: str
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        return entry


M = TypeVar("M", bound="ApiModel")
Check = Callable[[M], bool]

_RULE_ATTR = "__gpupool_cel_rule__"


def cel_rule(
    rule: str, *, message: str, field_path: str | None = None
) -> Callable[[Check[M]], Check[M]]:
    """Attach a CEL rule to a model; the decorated method is its Python twin.

    The method returns True when the object is valid. ``field_path`` (e.g.
    ``".elastic.minReplicas"``) is where the API server reports the error.
    """

    def mark(check: Check[M]) -> Check[M]:
        setattr(check, _RULE_ATTR, CelRule(rule=rule, message=message, field_path=field_path))
        return check

    return mark


def _cel_checks(cls: type[ApiModel]) -> list[tuple[CelRule, Check[Any]]]:
    """Rules of ``cls`` and its bases, base classes first, in definition order."""
    checks: list[tuple[CelRule, Check[Any]]] = []
    for klass in reversed(cls.__mro__):
        for member in vars(klass).values():
            rule = getattr(member, _RULE_ATTR, None)
            if isinstance(rule, CelRule):
                checks.append((rule, member))
    return checks


def _add_cel_rules(schema: dict[str, Any], cls: type[Any]) -> None:
    rules = [rule.to_schema() for rule, _ in _cel_checks(cls)]
    if rules:
        schema["x-kubernetes-validations"] = rules


class ApiModel(BaseModel):
    """Base of every gpupool API model: camelCase aliases, no unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        json_schema_extra=_add_cel_rules,
    )

    cel_checks: ClassVar[tuple[tuple[CelRule, Check[Any]], ...]] = ()
    """The CEL rules of this model with their Python twins (set per subclass)."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.cel_checks = tuple(_cel_checks(cls))

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        for rule, check in self.cel_checks:
            if not check(self):
                raise ValueError(rule.message)
        return self
