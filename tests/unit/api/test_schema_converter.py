"""pydantic JSON Schema -> structural OpenAPI v3, on small models."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from gpupool.api.base import ApiModel, cel_rule
from gpupool.api.schema import SchemaError, structural_schema


class Inner(ApiModel):
    """An inner block."""

    size_mib: int = Field(default=1, ge=1, description="Size.")

    @cel_rule("self.sizeMiB < 100", message="sizeMiB must stay below 100")
    def small(self) -> bool:
        return self.size_mib < 100


class Outer(ApiModel):
    """An outer object."""

    name: str = Field(max_length=10, description="A name.")
    share: float = Field(default=1.0, gt=0, lt=2, description="A share.")
    inner: Inner | None = Field(default=None, description="Optional inner block.")
    mode: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(default="auto", description="N.")
    fixed: Literal["only"] = Field(default="only", description="A constant.")
    blob: dict[str, Any] = Field(
        default_factory=dict,
        description="Anything.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


def test_refs_are_inlined_with_the_field_description_and_the_rules_of_the_block() -> None:
    inner = structural_schema(Outer)["properties"]["inner"]
    assert inner == {
        "description": "Optional inner block.",
        "type": "object",
        "properties": {
            "sizeMiB": {"description": "Size.", "type": "integer", "default": 1, "minimum": 1}
        },
        "x-kubernetes-validations": [
            {"rule": "self.sizeMiB < 100", "message": "sizeMiB must stay below 100"}
        ],
    }


def test_optional_fields_are_simply_not_required() -> None:
    schema = structural_schema(Outer)
    assert schema["required"] == ["name"]
    assert "default" not in schema["properties"]["inner"]


def test_exclusive_bounds_become_openapi_v3_booleans() -> None:
    share = structural_schema(Outer)["properties"]["share"]
    assert share["minimum"] == 0
    assert share["exclusiveMinimum"] is True
    assert share["maximum"] == 2
    assert share["exclusiveMaximum"] is True


def test_int_or_literal_string_becomes_int_or_string() -> None:
    mode = structural_schema(Outer)["properties"]["mode"]
    assert mode == {"description": "N.", "default": "auto", "x-kubernetes-int-or-string": True}


def test_const_becomes_a_one_value_enum() -> None:
    assert structural_schema(Outer)["properties"]["fixed"]["enum"] == ["only"]


def test_free_form_object_keeps_only_type_and_preserve_unknown_fields() -> None:
    assert structural_schema(Outer)["properties"]["blob"] == {
        "description": "Anything.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_no_titles_anywhere() -> None:
    assert "title" not in repr(structural_schema(Outer))


class WithSet(BaseModel):
    ids: set[int]


class WithUnion(BaseModel):
    value: int | float | str


class WithFreeForm(BaseModel):
    anything: dict[str, Any]


class WithTuple(BaseModel):
    pair: tuple[int, str]


@pytest.mark.parametrize(
    ("model", "complaint"),
    [
        (WithSet, "'uniqueItems' is not supported"),
        (WithUnion, "anyOf of ['integer', 'number', 'string'] is not structural"),
        (WithFreeForm, "free-form object without x-kubernetes-preserve-unknown-fields"),
        (WithTuple, "'prefixItems' is not supported"),
    ],
)
def test_constructs_without_a_structural_equivalent_are_refused(
    model: type[BaseModel], complaint: str
) -> None:
    with pytest.raises(SchemaError, match=re.escape(complaint)):
        structural_schema(model)
