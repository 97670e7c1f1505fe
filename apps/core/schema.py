"""What the OpenAPI schema says about values plugins extend: job kinds, dataset types and
each dataset type's options.

Those registries fill while the apps load (plugins add kinds and types), after the
serializers are defined, so their names are read when the schema is generated, not when
a serializer class is. Validation stays with the serializers (their messages list the
choices); the schema only tells clients the truth about what will be accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.core import validators
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers


class RegistryField(serializers.CharField):
    """A name from a registry that plugins extend. ``request_names`` are those a client may
    send (e.g. job kinds a user may submit); an answer may carry any string (an object made
    by a kind or type whose plugin is gone since)."""

    def __init__(self, request_names: Callable[[], Iterable[str]], **kwargs: Any):
        self.request_names = request_names
        super().__init__(**kwargs)


class RegistryFieldExtension(OpenApiSerializerFieldExtension):
    target_class = RegistryField

    def map_serializer_field(self, auto_schema, direction):
        if direction == "request":
            return {"type": "string", "enum": sorted(set(self.target.request_names()))}
        return {"type": "string"}


class FormOptionsField(serializers.JSONField):
    """A JSON object of a form's values, the form picked by a sibling field (a dataset's
    ``options`` by its ``type``). In the schema: one JSON Schema per form, any of them."""

    def __init__(self, forms_by_name: Callable[[], dict[str, type[forms.Form]]], **kwargs: Any):
        self.forms_by_name = forms_by_name
        super().__init__(**kwargs)


class FormOptionsFieldExtension(OpenApiSerializerFieldExtension):
    target_class = FormOptionsField

    def map_serializer_field(self, auto_schema, direction):
        if direction != "request":
            return {"type": "object", "additionalProperties": True}
        schemas = [
            {**form_json_schema(form_class), "title": f"{name} options"}
            for name, form_class in sorted(self.target.forms_by_name().items())
        ]
        return {"anyOf": schemas} if schemas else {"type": "object"}


# --- Django form → JSON Schema -----------------------------------------------------------
def form_json_schema(form_class: type[forms.Form]) -> dict[str, Any]:
    """The JSON Schema of the values ``form_class`` takes as JSON (file fields are parts of a
    multipart request instead, so they are left out)."""
    form = form_class()
    properties: dict[str, Any] = {}
    required = []
    for name, field in form.fields.items():
        if isinstance(field, forms.FileField):
            continue
        properties[name] = field_json_schema(field)
        if field.required:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def field_json_schema(field: forms.Field) -> dict[str, Any]:
    schema = _base_schema(field)
    if field.help_text:
        schema["description"] = str(field.help_text)
    if isinstance(field.initial, str | int | float | bool) and not isinstance(
        field, forms.FileField
    ):
        schema["default"] = field.initial
    return schema


def _base_schema(field: forms.Field) -> dict[str, Any]:
    if isinstance(field, forms.MultipleChoiceField):
        return {"type": "array", "items": {"enum": _choice_values(field)}}
    if isinstance(field, forms.ChoiceField):
        return {"enum": _choice_values(field)}
    if isinstance(field, forms.BooleanField):
        return {"type": "boolean"}
    if isinstance(field, forms.IntegerField):
        return {"type": "integer", **_bounds(field)}
    if isinstance(field, forms.FloatField | forms.DecimalField):
        return {"type": "number", **_bounds(field)}
    if isinstance(field, forms.CharField):
        return {"type": "string", **_lengths(field)}
    return {}


def _choice_values(field: forms.ChoiceField) -> list[Any]:
    values = []
    for value, label in field.choices:
        if isinstance(label, list | tuple):  # an option group
            values += [v for v, _ in label]
        else:
            values.append(value)
    if not field.required and "" not in values:
        values.append("")
    return values


def _bounds(field: forms.Field) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for validator in field.validators:
        if isinstance(validator, validators.MinValueValidator):
            bounds["minimum"] = validator.limit_value
        elif isinstance(validator, validators.MaxValueValidator):
            bounds["maximum"] = validator.limit_value
    return bounds


def _lengths(field: forms.CharField) -> dict[str, Any]:
    lengths = {}
    if field.max_length is not None:
        lengths["maxLength"] = field.max_length
    if field.min_length is not None:
        lengths["minLength"] = field.min_length
    return lengths
