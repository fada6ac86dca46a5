"""The shape of a JSON body: the types a value takes and its keys, recursively. An array's
shape is the union of its elements', so answers about other agents, and lists of other
lengths, still compare."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mock_server.live.recording import Message
from schemas.contract import is_json_media_type


@dataclass
class Shape:
    """The JSON types a value (or every element of an array) takes, keys and items merged."""

    types: set[str] = field(default_factory=set)
    keys: dict[str, Shape] = field(default_factory=dict)
    items: Shape | None = None

    def merge(self, other: Shape) -> Shape:
        self.types |= other.types
        for key, shape in other.keys.items():
            self.keys[key] = self.keys[key].merge(shape) if key in self.keys else shape
        if other.items is not None:
            self.items = other.items if self.items is None else self.items.merge(other.items)
        return self

    def describe(self) -> str:
        return " or ".join(sorted(self.types))


def shape_of(value: Any) -> Shape:
    if isinstance(value, dict):
        return Shape({"object"}, {str(key): shape_of(item) for key, item in value.items()})
    if isinstance(value, list):
        items: Shape | None = None
        for element in value:
            items = shape_of(element) if items is None else items.merge(shape_of(element))
        return Shape({"array"}, items=items)
    if value is None:
        return Shape({"null"})
    if isinstance(value, bool):
        return Shape({"boolean"})
    if isinstance(value, int):
        return Shape({"integer"})
    if isinstance(value, float):
        return Shape({"number"})
    return Shape({"string"})


def body_shape(message: Message) -> tuple[Shape, Any]:
    """The shape of a body and its JSON value (None when it is no JSON)."""
    if not message.body:
        return Shape({"empty"}), None
    if is_json_media_type(message.media_type):
        try:
            value = json.loads(message.body)
        except ValueError:
            return Shape({"text"}), None
        return shape_of(value), value
    return Shape({"text"}), None
