"""The API's response serializers, generated from the shapes the presenters declare
(classifier.presenters.BatchOutput, JobOutput and SignalOutput, TypedDicts).

They only document the schema: the presenters build the JSON, and both follow the one
declaration, so the schema and the answers cannot drift apart.
"""

from __future__ import annotations

from functools import cache
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

from rest_framework import serializers

from classifier.presenters import BatchOutput, Doc, IsoTimestamp, JobOutput, SignalOutput

_SCALARS: dict[Any, type[serializers.Field]] = {
    int: serializers.IntegerField,
    float: serializers.FloatField,
    bool: serializers.BooleanField,
    IsoTimestamp: serializers.DateTimeField,
}


@cache
def serializer_for(shape: type) -> type[serializers.Serializer]:
    """A Serializer class named like `shape` (a TypedDict, hence the schema component's name),
    with one field per declared key, in order."""
    hints = get_type_hints(shape, include_extras=True)
    fields = {name: _field(hint) for name, hint in hints.items()}
    return type(shape.__name__, (serializers.Serializer,), {"__module__": __name__, **fields})


def _field(hint: Any, **options: Any) -> serializers.Field:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        docs = [meta.text for meta in hint.__metadata__ if isinstance(meta, Doc)]
        return _field(args[0], **options, **({"help_text": docs[0]} if docs else {}))
    if origin in (Union, UnionType) and NoneType in args:
        (inner,) = [arg for arg in args if arg is not NoneType]
        return _field(inner, allow_null=True, **options)
    if origin is Literal:
        return serializers.ChoiceField(choices=list(args), **options)
    if origin is list and is_typeddict(args[0]):
        return serializer_for(args[0])(many=True, **options)
    if origin is list:
        return serializers.ListField(child=_field(args[0]), **options)
    if origin is dict:
        return serializers.DictField(child=_field(args[1]), **options)
    if is_typeddict(hint):
        return serializer_for(hint)(**options)
    if hint is str:
        return serializers.CharField(allow_blank=True, **options)
    if hint in _SCALARS:
        return _SCALARS[hint](**options)
    raise TypeError(f"No schema field for {hint!r}: teach classifier.api.schema this type.")


BatchSchema = serializer_for(BatchOutput)
JobSchema = serializer_for(JobOutput)
SignalSchema = serializer_for(SignalOutput)
