"""Turn a pydantic JSON schema into a structural OpenAPI v3 schema for a CRD.

Kubernetes accepts only *structural* schemas: every node has a type, no ``$ref``,
no ``anyOf``/``allOf`` that define types, no ``uniqueItems``, no
``additionalProperties: false``, OpenAPI v3.0 boolean ``exclusiveMinimum``. Pydantic
emits JSON Schema 2020-12, so this module

- inlines every ``$ref`` (the referring node's keys win, CEL rules are merged),
- drops the ``null`` branch of Optionals (an optional field is one not in
  ``required``), and maps ``int | Literal[...]`` to ``x-kubernetes-int-or-string``,
- drops ``title``, ``default: null`` and ``additionalProperties: false``,
- rewrites ``const`` to a one-value ``enum`` and numeric ``exclusiveMinimum`` /
  ``exclusiveMaximum`` to ``minimum`` / ``maximum`` plus ``true``,

and refuses anything else it does not know, so a model change that cannot be
expressed in a CRD fails the generator instead of producing a schema the API
server rejects.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]

VALIDATIONS = "x-kubernetes-validations"
PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"

_KEPT = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "format",
        "default",
        "nullable",
    }
)
_DROPPED = frozenset({"title"})

_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "nullable",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
)
"""Keys of a converted node in this order (then x-kubernetes-* keys, sorted)."""


class SchemaError(ValueError):
    """The model uses a construct that has no structural OpenAPI equivalent."""


def structural_schema(model: type[BaseModel]) -> JsonSchema:
    """The structural OpenAPI v3 schema of ``model``, its fields by alias."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions: dict[str, JsonSchema] = raw.pop("$defs", {})
    return _Converter(definitions).convert(raw, model.__name__)


class _Converter:
    def __init__(self, definitions: dict[str, JsonSchema]) -> None:
        self._definitions = definitions

    def convert(self, node: JsonSchema, path: str) -> JsonSchema:
        if "$ref" in node:
            return self.convert(self._inline(node), path)
        if "allOf" in node:
            return self.convert(self._merge_all_of(node, path), path)
        if "anyOf" in node:
            return self._convert_any_of(node, path)
        return self._convert_plain(node, path)

    def _inline(self, node: JsonSchema) -> JsonSchema:
        name = node["$ref"].removeprefix("#/$defs/")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _merge(self._definitions[name], siblings)

    def _merge_all_of(self, node: JsonSchema, path: str) -> JsonSchema:
        parts = node["allOf"]
        if len(parts) != 1:
            raise SchemaError(f"{path}: allOf with {len(parts)} parts is not structural")
        siblings = {key: value for key, value in node.items() if key != "allOf"}
        return _merge(parts[0], siblings)

    def _convert_any_of(self, node: JsonSchema, path: str) -> JsonSchema:
        siblings = {key: value for key, value in node.items() if key != "anyOf"}
        variants = [variant for variant in node["anyOf"] if variant != {"type": "null"}]
        if len(variants) == 1:
            return self.convert(_merge(variants[0], siblings), path)
        types = sorted(variant.get("type", "?") for variant in variants)
        if types == ["integer", "string"]:
            return self._convert_plain({**siblings, INT_OR_STRING: True}, path)
        raise SchemaError(f"{path}: anyOf of {types} is not structural")

    def _convert_plain(self, node: JsonSchema, path: str) -> JsonSchema:
        out: JsonSchema = {}
        for key, value in node.items():
            if key in _DROPPED or (key == "default" and value is None):
                continue
            if key == "const":
                out["enum"] = [value]
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                out[bound] = value
                out[key] = True
            elif key == "properties":
                out[key] = {
                    name: self.convert(child, f"{path}.{name}") for name, child in value.items()
                }
            elif key == "items":
                out[key] = self.convert(value, f"{path}[]")
            elif key == "additionalProperties":
                if isinstance(value, dict):
                    out[key] = self.convert(value, f"{path}{{}}")
                elif value is True and not node.get(PRESERVE_UNKNOWN):
                    raise SchemaError(f"{path}: free-form object without {PRESERVE_UNKNOWN}")
            elif key in _KEPT or key.startswith("x-kubernetes-"):
                out[key] = value
            else:
                raise SchemaError(f"{path}: {key!r} is not supported in a CRD schema")
        if "type" not in out and not out.get(INT_OR_STRING):
            raise SchemaError(f"{path}: no type")
        return dict(sorted(out.items(), key=lambda item: _key_rank(item[0])))


def _key_rank(key: str) -> tuple[int, str]:
    return (_KEY_ORDER.index(key), "") if key in _KEY_ORDER else (len(_KEY_ORDER), key)


def _merge(base: JsonSchema, override: JsonSchema) -> JsonSchema:
    """``base`` with ``override``'s keys; CEL rules of both are kept."""
    merged = {**base, **override}
    rules = [*base.get(VALIDATIONS, []), *override.get(VALIDATIONS, [])]
    if rules:
        merged[VALIDATIONS] = rules
    return merged


def walk(schema: JsonSchema, path: str = "") -> list[tuple[str, JsonSchema]]:
    """Every node of a converted schema with its path (``.spec.tenants[].namespace``)."""
    nodes = [(path, schema)]
    for name, child in schema.get("properties", {}).items():
        nodes.extend(walk(child, f"{path}.{name}"))
    if isinstance(schema.get("items"), dict):
        nodes.extend(walk(schema["items"], f"{path}[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        nodes.extend(walk(schema["additionalProperties"], f"{path}{{}}"))
    return nodes
