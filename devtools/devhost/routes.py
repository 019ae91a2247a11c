"""ASP.NET-style route templates, as the Functions host matches them.

Supported: literal segments (case-insensitive), ``{name}``, constraints ``{id:int}``, ``{id:guid}``,
``{x:alpha}`` (also bool, long, double, float, decimal, datetime, minlength(n), maxlength(n),
length(n), length(a,b), min(n), max(n), range(a,b), regex(...)), optional ``{name?}``, defaults
``{name=value}``, catch-all ``{*path}``, and several parameters in one segment (``{a}.{b}``).
A constraint that fails means "no match" (404), as in ASP.NET.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from .errors import DevHostError

Check = Callable[[str], bool]


def _parses(kind: Callable[[str], object]) -> Check:
    def check(value: str) -> bool:
        try:
            kind(value)
        except (ValueError, InvalidOperation):
            return False
        return True

    return check


def _int_range(lo: int, hi: int) -> Check:
    return lambda v: bool(re.fullmatch(r"[+-]?\d+", v)) and lo <= int(v) <= hi


_SIMPLE: dict[str, Check] = {
    "int": _int_range(-(2**31), 2**31 - 1),
    "long": _int_range(-(2**63), 2**63 - 1),
    "bool": lambda v: v.lower() in ("true", "false"),
    "guid": _parses(uuid.UUID),
    "alpha": lambda v: bool(re.fullmatch(r"[A-Za-z]+", v)),
    "double": _parses(float),
    "float": _parses(float),
    "decimal": _parses(Decimal),
    "datetime": _parses(datetime.fromisoformat),
}


def _constraint(text: str) -> Check:
    m = re.fullmatch(r"(\w+)(?:\((.*)\))?", text, re.S)
    if not m:
        raise DevHostError(f"bad route constraint {text!r}")
    kind, arg = m.group(1).lower(), m.group(2)
    if arg is None and kind in _SIMPLE:
        return _SIMPLE[kind]
    if arg is not None:
        if kind == "regex":
            pattern = re.compile(arg, re.IGNORECASE)
            return lambda v: pattern.search(v) is not None
        nums = [int(a) for a in arg.split(",")]
        if kind == "minlength":
            return lambda v: len(v) >= nums[0]
        if kind == "maxlength":
            return lambda v: len(v) <= nums[0]
        if kind == "length":
            lo, hi = (nums[0], nums[0]) if len(nums) == 1 else (nums[0], nums[1])
            return lambda v: lo <= len(v) <= hi
        if kind in ("min", "max", "range"):
            lo = nums[0] if kind != "max" else -(2**63)
            hi = nums[-1] if kind != "min" else 2**63 - 1
            return _int_range(lo, hi)
    raise DevHostError(f"unsupported route constraint {text!r}")


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses (regex constraints may contain ':')."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


@dataclass
class Param:
    name: str
    checks: list[Check] = field(default_factory=list)
    optional: bool = False
    catch_all: bool = False
    default: str | None = None


def _parse_param(body: str) -> Param:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default = None
    if "=" in body and "(" not in body.split("=", 1)[0]:
        body, default = body.split("=", 1)
    optional = body.endswith("?")
    body = body.rstrip("?")
    name, *constraints = _split_top(body, ":")
    if not re.fullmatch(r"\w+", name):
        raise DevHostError(f"bad route parameter name {name!r}")
    optional = optional or catch_all or default is not None  # a default makes the segment optional
    return Param(name, [_constraint(c) for c in constraints], optional, catch_all, default)


def _segment_tokens(segment: str) -> list[str | Param]:
    """A segment is literals and ``{params}``; ``{{``/``}}`` are escaped braces."""
    tokens: list[str | Param] = []
    i, literal = 0, ""
    while i < len(segment):
        two = segment[i : i + 2]
        if two in ("{{", "}}"):
            literal += two[0]
            i += 2
        elif segment[i] == "{":
            body, j = "", i + 1
            while j < len(segment):  # inside a parameter too, {{ and }} are escaped braces (regex quantifiers)
                if segment[j : j + 2] in ("{{", "}}"):
                    body += segment[j]
                    j += 2
                elif segment[j] == "}":
                    break
                else:
                    body += segment[j]
                    j += 1
            else:
                raise DevHostError(f"unclosed parameter in route segment {segment!r}")
            if literal:
                tokens.append(literal)
                literal = ""
            tokens.append(_parse_param(body))
            i = j + 1
        else:
            literal += segment[i]
            i += 1
    if literal:
        tokens.append(literal)
    return tokens


class RouteTemplate:
    """A compiled template; :meth:`match` returns route params or ``None``."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.params: list[Param] = []
        pattern = ""
        self.precedence: list[int] = []  # per segment: lower = more specific, as ASP.NET orders routes
        for segment in self.template.split("/") if self.template else []:
            tokens = _segment_tokens(segment)
            if len(tokens) == 1 and isinstance(tokens[0], Param) and tokens[0].optional:
                p = tokens[0]
                self.params.append(p)
                inner = ".*" if p.catch_all else "[^/]+"
                pattern += f"(?:/(?P<{p.name}>{inner}))?"
                self.precedence.append(5 if p.catch_all else 4)
                continue
            pattern += "/"
            for tok in tokens:
                if isinstance(tok, str):
                    pattern += re.escape(tok)
                else:
                    self.params.append(tok)
                    pattern += f"(?P<{tok.name}>{'.*' if tok.catch_all else '[^/]+?'})"
            if all(isinstance(t, str) for t in tokens):
                self.precedence.append(0)
            elif len(tokens) > 1:
                self.precedence.append(1)
            else:
                self.precedence.append(2 if tokens[0].checks else 3)  # type: ignore[union-attr]
        self._regex = re.compile(pattern + "/?", re.IGNORECASE)

    def sort_key(self) -> tuple[list[int], int]:
        return self.precedence, -len(self.precedence)

    def match(self, path: str) -> dict[str, str] | None:
        """Match a path relative to the route prefix, with a leading slash (``/items/5``)."""
        m = self._regex.fullmatch(path)
        if m is None:
            return None
        values: dict[str, str] = {}
        for p in self.params:
            value = m.group(p.name)
            if value is None or value == "":
                if p.default is not None:
                    values[p.name] = p.default
                continue
            if not all(check(value) for check in p.checks):
                return None
            values[p.name] = value
        return values
