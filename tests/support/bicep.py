"""A small reader for Bicep templates, for tests on a machine without the Bicep CLI.

It understands what our templates need: comments, single-quoted strings with escapes and
interpolations, bracket nesting, top-level declarations (param, var, resource, module, output)
and the entries of object literals, kept as raw text. It checks no types and evaluates nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


def strip_comments(text: str) -> str:
    """The text with // and /* */ comments blanked (newlines kept); strings left intact."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("'''", i):
            end = text.find("'''", i + 3)
            end = n if end < 0 else end + 3
            out.append(text[i:end])
            i = end
        elif text[i] == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def matching_block(text: str, start: int) -> str:
    """The bracketed block opening at text[start] ('{' or '['), brackets inside strings ignored."""
    opener = text[start]
    closer = {"{": "}", "[": "]", "(": ")"}[opener]
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char == "'":
            j = i + 1
            while j < len(text) and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if char == opener:
            depth += 1
        elif char == closer:
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
        i += 1
    raise ValueError(f"unbalanced {opener!r} at offset {start}")


def object_entries(block: str) -> dict[str, str]:
    """Top-level `key: value` entries of an object literal block, values as raw text."""
    body = block[1:-1]
    entries: dict[str, str] = {}
    depth, line_start, key, value_start = 0, True, None, 0
    i = 0
    while i < len(body):
        char = body[i]
        if depth == 0 and line_start:
            match = re.match(r"[ \t]*('(?:[^'\\]|\\.)*'|[A-Za-z_][A-Za-z0-9_]*)[ \t]*:", body[i:])
            if match:
                if key is not None:
                    entries[key] = body[value_start:i].strip()
                key = match.group(1).strip("'")
                value_start = i + match.end()
                i += match.end()
                line_start = False
                continue
        if char == "'":
            j = i + 1
            while j < len(body) and body[j] != "'":
                j += 2 if body[j] == "\\" else 1
            i = j + 1
            line_start = False
            continue
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        line_start = char == "\n"
        i += 1
    if key is not None:
        entries[key] = body[value_start:].strip()
    return entries


def array_items(block: str) -> list[str]:
    """Items of a one-item-per-line array literal of plain values."""
    return [line.strip() for line in block[1:-1].splitlines() if line.strip()]


def unquote(value: str) -> str:
    if not (value.startswith("'") and value.endswith("'")) or "${" in value:
        raise ValueError(f"not a plain string literal: {value}")
    return value[1:-1].replace("\\'", "'")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None
    decorators: str


@dataclass(frozen=True)
class Declared:
    """One symbol (resource or module) and its body."""
    symbol: str
    target: str  # resource type@version, or module path
    body: str


class BicepFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = strip_comments(path.read_text(encoding="utf-8"))

    def _declarations(self, keyword: str):
        pattern = re.compile(rf"^{keyword}\s+(\S+)\s+'([^']+)'(\s+existing)?\s*=\s*", re.M)
        for match in pattern.finditer(self.text):
            brace = self.text.index("{", match.end())
            yield Declared(match.group(1), match.group(2), matching_block(self.text, brace))

    @property
    def resources(self) -> list[Declared]:
        return list(self._declarations("resource"))

    @property
    def modules(self) -> list[Declared]:
        return list(self._declarations("module"))

    @property
    def params(self) -> dict[str, Param]:
        found: dict[str, Param] = {}
        lines = self.text.splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"param\s+(\w+)\s+(\w+)(?:\s*=\s*(.+))?\s*$", line)
            if not match:
                continue
            back = index - 1
            while back >= 0 and (lines[back].startswith(("@", " ", "\t", "]", "}", ")")) or lines[back] == ""):
                if lines[back] == "" or re.match(r"(param|var|resource|module|output)\b", lines[back]):
                    break
                back -= 1
            decorators = "\n".join(lines[back + 1:index])
            found[match.group(1)] = Param(match.group(1), match.group(2), match.group(3), decorators)
        return found

    @property
    def outputs(self) -> set[str]:
        return set(re.findall(r"^output\s+(\w+)\s", self.text, re.M))

    def var_block(self, name: str) -> str:
        match = re.search(rf"^var\s+{name}\s*=\s*", self.text, re.M)
        assert match, f"{self.path.name} declares no var {name}"
        return matching_block(self.text, match.end())

    def resources_of_type(self, type_prefix: str) -> list[Declared]:
        return [r for r in self.resources if r.target.split("@")[0] == type_prefix]
