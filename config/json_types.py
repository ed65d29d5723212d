"""The shape of JSON documents (model cards, reports, events, benchmark results) as types.

``JSONValue`` is what ``json.loads`` can return and ``json.dumps`` can write without a
``default``; ``JSONObject`` is one JSON object. A reader narrows a value with ``isinstance``
before using it as a number, text, list or object.
"""

from __future__ import annotations

from typing import TypeAlias

JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"
JSONObject: TypeAlias = "dict[str, JSONValue]"
