"""A small OData `$filter` parser and evaluator for event collections.

Supports comparisons (`eq ne gt ge lt le`), `and`/`or`/`not`, parentheses, `contains`,
`startswith`, `endswith`, lambda `any`/`all` over collections (e.g.
`singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')`) and literals
(strings with '' escapes, numbers, true/false/null, bare ISO datetimes). Outlook compares
strings case-insensitively; an extended property's id compares with its Name part
case-sensitive (GRAPH.md 4.5). Property names match case-insensitively.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.time_zones import normalize_graph_datetime

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_@$][\w.@$]*)
  | (?P<punct>[()/:,])
""", re.X)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith"}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def filter_error(message: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {message}")


@dataclass(frozen=True)
class PropertyId:
    """An extended property id; equality goes through `normalise`."""
    key: str


@dataclass(frozen=True)
class ExtendedProperty:
    id: PropertyId
    value: str


@dataclass
class Token:
    kind: str
    text: str


def _tokens(text: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise filter_error(f"unexpected text at position {pos}: {text[pos:pos + 20]!r}")
        pos = match.end()
        if match.lastgroup != "space":
            out.append(Token(match.lastgroup, match.group()))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token.text.lower() != text):
            raise filter_error(f"expected {text or 'more input'}")
        self.pos += 1
        return token

    def at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in ("name", "punct") and token.text.lower() == text

    def parse(self) -> tuple:
        node = self.or_expr()
        if self.peek() is not None:
            raise filter_error(f"unexpected '{self.peek().text}'")
        return node

    def or_expr(self) -> tuple:
        node = self.and_expr()
        while self.at("or"):
            self.take()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> tuple:
        node = self.unary()
        while self.at("and"):
            self.take()
            node = ("and", node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.at("not"):
            self.take()
            return ("not", self.unary())
        return self.comparison()

    def comparison(self) -> tuple:
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.lower() in _COMPARISONS:
            self.take()
            return ("cmp", token.text.lower(), left, self.operand())
        return ("truthy", left)

    def operand(self) -> tuple:
        token = self.peek()
        if token is None:
            raise filter_error("unexpected end of expression")
        if token.text == "(":
            self.take()
            node = self.or_expr()
            self.take(")")
            return node
        if token.kind == "string":
            self.take()
            return ("lit", token.text[1:-1].replace("''", "'"))
        if token.kind == "datetime":
            self.take()
            return ("lit", _as_datetime(token.text))
        if token.kind == "number":
            self.take()
            return ("lit", float(token.text) if "." in token.text else int(token.text))
        if token.kind == "name":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                self.take()
                return ("lit", lowered == "true")
            if lowered == "null":
                self.take()
                return ("lit", None)
            if lowered in _FUNCTIONS and self.peek(1) is not None and self.peek(1).text == "(":
                return self.function()
            return self.path()
        raise filter_error(f"unexpected '{token.text}'")

    def function(self) -> tuple:
        name = self.take().text.lower()
        self.take("(")
        args = [self.operand()]
        while self.at(","):
            self.take()
            args.append(self.operand())
        self.take(")")
        return ("fn", name, args)

    def path(self) -> tuple:
        segments = [self.take().text]
        while self.at("/"):
            self.take()
            name = self.take()
            if name.text.lower() in ("any", "all") and self.at("("):
                self.take("(")
                variable = self.take().text
                self.take(":")
                body = self.or_expr()
                self.take(")")
                return ("lambda", name.text.lower(), segments, variable, body)
            segments.append(name.text)
        return ("path", segments)


def _as_datetime(text: str) -> datetime | str:
    try:
        parsed = datetime.fromisoformat(normalize_graph_datetime(text))
    except ValueError:
        return text
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _get(value: Any, name: str) -> Any:
    if isinstance(value, ExtendedProperty):
        return {"id": value.id, "value": value.value}.get(name.lower())
    if isinstance(value, dict):
        if name in value:
            return value[name]
        lowered = name.lower()
        for key, item in value.items():
            if key.lower() == lowered:
                return item
    return None


def _coerce(left: Any, right: Any, normalise: Callable[[str], str]) -> tuple[Any, Any]:
    if isinstance(left, PropertyId) or isinstance(right, PropertyId):
        def key(v: Any) -> Any:
            if isinstance(v, PropertyId):
                return v.key
            try:
                return normalise(v)
            except GraphError:
                return object()
        return key(left), key(right)
    if isinstance(left, datetime) or isinstance(right, datetime) or (
            isinstance(left, str) and isinstance(right, str) and _ISO.match(left) and _ISO.match(right)):
        left = _as_datetime(left) if isinstance(left, str) else left
        right = _as_datetime(right) if isinstance(right, str) else right
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold(), right.casefold()
    return left, right


def _compare(op: str, left: Any, right: Any, normalise: Callable[[str], str]) -> bool:
    left, right = _coerce(left, right, normalise)
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]
    except TypeError:
        return False


class CompiledFilter:
    """`matches(document)` for a parsed `$filter`; `document` is an event's JSON representation
    with `singleValueExtendedProperties` as ExtendedProperty items."""

    def __init__(self, text: str, normalise_id: Callable[[str], str]) -> None:
        self.text = text
        self.tree = _Parser(text).parse()
        self.normalise_id = normalise_id

    def matches(self, document: dict) -> bool:
        return bool(self._eval(self.tree, document, {}))

    def _eval(self, node: tuple, doc: dict, scope: dict) -> Any:
        kind = node[0]
        if kind == "or":
            return bool(self._eval(node[1], doc, scope)) or bool(self._eval(node[2], doc, scope))
        if kind == "and":
            return bool(self._eval(node[1], doc, scope)) and bool(self._eval(node[2], doc, scope))
        if kind == "not":
            return not self._eval(node[1], doc, scope)
        if kind == "truthy":
            return self._eval(node[1], doc, scope) is True
        if kind == "cmp":
            return _compare(node[1], self._eval(node[2], doc, scope), self._eval(node[3], doc, scope),
                            self.normalise_id)
        if kind == "lit":
            return node[1]
        if kind == "path":
            return self._resolve(node[1], doc, scope)
        if kind == "fn":
            args = [self._eval(a, doc, scope) for a in node[2]]
            if len(args) != 2 or not all(isinstance(a, str) for a in args):
                return False
            haystack, needle = args[0].casefold(), args[1].casefold()
            return {"contains": needle in haystack, "startswith": haystack.startswith(needle),
                    "endswith": haystack.endswith(needle)}[node[1]]
        if kind == "lambda":
            _, quantifier, segments, variable, body = node
            items = self._resolve(segments, doc, scope) or []
            if not isinstance(items, list):
                return False
            results = (bool(self._eval(body, doc, {**scope, variable: item})) for item in items)
            return any(results) if quantifier == "any" else all(results)
        raise filter_error(f"unsupported expression {kind}")

    def _resolve(self, segments: list[str], doc: dict, scope: dict) -> Any:
        value: Any = doc
        rest = segments
        if segments[0] in scope:
            value, rest = scope[segments[0]], segments[1:]
        for segment in rest:
            value = _get(value, segment)
            if value is None:
                return None
        return value
