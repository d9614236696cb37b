"""HTTP route templates in the ASP.NET syntax the Functions host uses.

`{id}` one segment, `{id:int}` with constraints (several may be chained: `{n:int:min(1)}`),
`{id?}` optional, `{id=7}` with a default, `{*rest}` / `{**rest}` catch-all to the end.
Literal text matches case-insensitively. `{{` and `}}` are literal braces.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Callable


class RouteError(ValueError):
    """A route template the host cannot serve; the message names the template."""


def _is_int(value: str, bits: int) -> bool:
    if not re.fullmatch(r"-?\d+", value):
        return False
    return -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _number_args(text: str, count: int, name: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != count:
        raise ValueError(f"{name} takes {count} argument(s)")
    return [float(p) for p in parts]


def _constraint(name: str, argument: str | None) -> Callable[[str], bool]:
    """The check for one constraint such as `int` or `range(1,10)`."""
    simple = {
        "int": lambda v: _is_int(v, 32),
        "long": lambda v: _is_int(v, 64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "datetime": _is_datetime,
        "decimal": _is_number,
        "double": _is_number,
        "float": _is_number,
        "guid": _is_guid,
        "alpha": lambda v: bool(re.fullmatch(r"[A-Za-z]+", v)),
        "required": lambda v: v != "",
    }
    key = name.lower()
    if key in simple:
        if argument is not None:
            raise ValueError(f"constraint {name} takes no argument")
        return simple[key]
    if argument is None:
        raise ValueError(f"unknown constraint '{name}'")
    if key == "regex":
        pattern = re.compile(argument, re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    if key == "minlength":
        (low,) = _number_args(argument, 1, name)
        return lambda v: len(v) >= low
    if key == "maxlength":
        (high,) = _number_args(argument, 1, name)
        return lambda v: len(v) <= high
    if key == "length":
        bounds = _number_args(argument, argument.count(",") + 1, name)
        low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else bounds[:2]
        return lambda v: low <= len(v) <= high
    if key in ("min", "max", "range"):
        bounds = _number_args(argument, 2 if key == "range" else 1, name)
        low = bounds[0] if key in ("min", "range") else float("-inf")
        high = bounds[-1] if key in ("max", "range") else float("inf")
        return lambda v: _is_int(v, 64) and low <= int(v) <= high
    raise ValueError(f"unknown constraint '{name}'")


@dataclass(frozen=True)
class Parameter:
    name: str
    optional: bool
    catch_all: bool
    default: str | None
    checks: tuple[Callable[[str], bool], ...]

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


def _split_constraints(text: str) -> list[str]:
    """Split `int:min(1):regex(a:b)` on colons that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _parse_parameter(text: str, template: str) -> Parameter:
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    default = None
    name_and_constraints, equals, default_text = text.partition("=")
    if equals:
        default = default_text
    optional = name_and_constraints.endswith("?")
    name_and_constraints = name_and_constraints.rstrip("?")
    name, *constraints = _split_constraints(name_and_constraints)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RouteError(f"route '{template}': '{name}' is not a valid parameter name")
    checks = []
    for constraint in constraints:
        match = re.fullmatch(r"(\w+)(?:\((.*)\))?", constraint, re.DOTALL)
        if not match:
            raise RouteError(f"route '{template}': constraint '{constraint}' of {{{name}}} cannot be read")
        try:
            checks.append(_constraint(match.group(1), match.group(2)))
        except (ValueError, re.error) as exc:
            raise RouteError(f"route '{template}': constraint '{constraint}' of {{{name}}}: {exc}") from None
    return Parameter(name, optional or default is not None or catch_all, catch_all, default, tuple(checks))


def _tokens(segment: str, template: str) -> list[str | Parameter]:
    """A segment as literal strings and parameters, honouring `{{` / `}}` escapes."""
    tokens: list[str | Parameter] = []
    literal, i = "", 0
    while i < len(segment):
        char = segment[i]
        if segment.startswith("{{", i) or segment.startswith("}}", i):
            literal += char
            i += 2
        elif char == "{":
            j, inner = i + 1, ""
            while j < len(segment):
                if segment.startswith("}}", j):
                    inner += "}"
                    j += 2
                elif segment[j] == "}":
                    break
                elif segment.startswith("{{", j):
                    inner += "{"
                    j += 2
                else:
                    inner += segment[j]
                    j += 1
            if j >= len(segment):
                raise RouteError(f"route '{template}': unclosed '{{'")
            if literal:
                tokens.append(literal)
                literal = ""
            tokens.append(_parse_parameter(inner, template))
            i = j + 1
        elif char == "}":
            raise RouteError(f"route '{template}': unmatched '}}'")
        else:
            literal += char
            i += 1
    if literal:
        tokens.append(literal)
    return tokens


def _split_segments(template: str) -> list[str]:
    """Split on '/' outside braces (a regex constraint may contain slashes)."""
    segments, depth, current = [], 0, ""
    for char in template:
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        if char == "/" and depth == 0:
            segments.append(current)
            current = ""
        else:
            current += char
    segments.append(current)
    return [s for s in segments if s != ""]


class RouteTemplate:
    """A compiled template: `match(path)` gives the route parameters or None."""

    def __init__(self, template: str):
        self.template = template
        self.parameters: list[Parameter] = []
        pattern = ""
        self._rank: list[int] = []
        segments = [_tokens(s, template) for s in _split_segments(template)]
        for index, tokens in enumerate(segments):
            is_last = index == len(segments) - 1
            pattern += self._segment_pattern(tokens, is_last)
        self._regex = re.compile(f"^{pattern}/?$", re.IGNORECASE | re.DOTALL)

    def _segment_pattern(self, tokens: list, is_last: bool) -> str:
        if len(tokens) == 1 and isinstance(tokens[0], Parameter):
            parameter = tokens[0]
            self._add(parameter, is_last)
            body = ".*" if parameter.catch_all else "[^/]+"
            group = f"(?P<{parameter.name}>{body})"
            if parameter.optional:
                self._rank.append(5 if parameter.catch_all else 4)
                return f"(?:/{group})?"
            self._rank.append(2 if parameter.checks else 3)
            return f"/{group}"
        parts = []
        for token in tokens:
            if isinstance(token, str):
                parts.append(re.escape(token))
            else:
                if token.catch_all:
                    raise RouteError(f"route '{self.template}': a catch-all must be a whole segment")
                self._add(token, is_last)
                parts.append(f"(?P<{token.name}>[^/]+)" + ("?" if token.optional else ""))
        self._rank.append(0 if all(isinstance(t, str) for t in tokens) else 1)
        return "/" + "".join(parts)

    def _add(self, parameter: Parameter, is_last: bool) -> None:
        if any(p.name.lower() == parameter.name.lower() for p in self.parameters):
            raise RouteError(f"route '{self.template}': parameter {{{parameter.name}}} appears twice")
        if parameter.catch_all and not is_last:
            raise RouteError(f"route '{self.template}': catch-all {{*{parameter.name}}} must be the last segment")
        self.parameters.append(parameter)

    @property
    def precedence(self) -> tuple:
        """Sort key: literal segments before constrained ones, before plain, optional, catch-all."""
        return tuple(self._rank) + (9,)

    def match(self, path: str) -> dict[str, str] | None:
        path = "/" + path.strip("/") if path.strip("/") else ""
        found = self._regex.match(path)
        if not found:
            return None
        values: dict[str, str] = {}
        for parameter in self.parameters:
            value = found.group(parameter.name)
            if value is None or value == "":
                if not parameter.optional:
                    return None
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            if not parameter.accepts(value):
                return None
            values[parameter.name] = value
        return values


def join_route(prefix: str, route: str) -> str:
    """The full template under the route prefix (an empty prefix serves the route at the root)."""
    parts = [p.strip("/") for p in (prefix, route) if p and p.strip("/")]
    return "/".join(parts)
