"""Decode Stripe's form encoding (`a[b][0][c]=v`, `expand[]=x`) into nested dicts and lists.

Stripe's v1 API takes `application/x-www-form-urlencoded` bodies (and query strings for GET)
where nesting is expressed with brackets; arrays are either indexed (`items[0][price]`, what
stripe-python sends) or appended (`expand[]=customer`, what curl examples in the docs use).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_TOKEN = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    """A key whose bracket structure cannot be decoded."""


def split_key(key: str) -> list[str]:
    head, sep, rest = key.partition("[")
    if not sep:
        return [key]
    rest = "[" + rest
    tokens = _TOKEN.findall(rest)
    if "".join(f"[{t}]" for t in tokens) != rest or not head:
        raise FormError(f"Invalid parameter name: {key}")
    return [head, *tokens]


def _insert(root: dict[str, Any], tokens: list[str], value: str) -> None:
    node: dict[str, Any] = root
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        if token == "":
            # `[]` appends: give it the next free index in this container.
            token = str(len(node))
        if last:
            node[token] = value
            return
        child = node.get(token)
        if not isinstance(child, dict):
            child = {}
            node[token] = child
        node = child


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        _insert(root, split_key(key), value)
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def decode(body: str) -> dict[str, Any]:
    return decode_pairs(parse_qsl(body, keep_blank_values=True))
