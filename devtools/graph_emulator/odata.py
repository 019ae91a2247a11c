"""The OData query options the emulator understands: $filter, $select, $top, $skip, $orderby, $expand.

``$filter`` is parsed into a small AST (comparisons, and/or/not, parentheses, ``startswith``,
``contains`` and ``any`` lambdas) and evaluated against the JSON an item renders to. String
comparisons ignore case, as Exchange and Entra ID do, except extended property values, which
compare exactly (the harsher choice). Extended property ids compare by their parsed key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import GraphError

Node = tuple[Any, ...]
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),:])|(?P<word>[A-Za-z_@$][\w@$./-]*(?::\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?)"
    r"|(?P<num>-?\d[\w.:+-]*))"
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
EXT_MARK = "_extKey"


def query_error(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise query_error(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1].lower() != value):
            raise query_error(f"Invalid filter clause: expected '{value or 'more'}' in '{self.text}'.")
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise query_error(f"Invalid filter clause: unexpected '{self.peek()[1]}' in '{self.text}'.")  # type: ignore[index]
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while (t := self.peek()) and t[1].lower() == "or":
            self.take()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while (t := self.peek()) and t[1].lower() == "and":
            self.take()
            node = ("and", node, self.unary())
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token and token[1].lower() == "not":
            self.take()
            return ("not", self.unary())
        if token and token[1] == "(":
            self.take()
            node = self.or_expr()
            self.take(")")
            return node
        return self.primary()

    def primary(self) -> Node:
        kind, word = self.take()
        if kind != "word":
            raise query_error(f"Invalid filter clause near '{word}' in '{self.text}'.")
        if word.lower() in ("startswith", "contains", "endswith"):
            self.take("(")
            path = self.take()[1]
            self.take(",")
            literal = self.literal()
            self.take(")")
            return ("func", word.lower(), path.split("/"), literal)
        lowered = word.lower()
        if lowered.endswith("/any") and (t := self.peek()) and t[1] == "(":
            self.take("(")
            var = self.take()[1]
            self.take(":")
            body = self.or_expr()
            self.take(")")
            return ("any", word[: -len("/any")].split("/"), var, body)
        op = self.take()[1].lower()
        if op not in _COMPARE:
            raise query_error(f"Invalid filter clause: unsupported operator '{op}' in '{self.text}'.")
        return ("cmp", op, word.split("/"), self.literal())

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "null":
            return None
        if kind == "num":
            try:
                return int(value)
            except ValueError:
                try:
                    return float(value)
                except ValueError:
                    return value  # an unquoted date-time
        if kind == "word" and re.match(r"^\d", value):
            return value
        raise query_error(f"Invalid filter clause: '{value}' is not a literal.")


def parse_filter(text: str) -> Node:
    return _Parser(text).parse()


def _resolve(path: list[str], doc: Any, scope: dict[str, Any]) -> tuple[Any, Any, str]:
    """(value, containing object, last segment) for a path like ``ep/id`` or ``start/dateTime``."""
    if path[0] in scope:
        current, rest = scope[path[0]], path[1:]
    else:
        current, rest = doc, path
    parent: Any = None
    last = ""
    for segment in rest:
        parent, last = current, segment
        if isinstance(current, dict):
            match = next((k for k in current if k.lower() == segment.lower()), None)
            current = current.get(match) if match else None
        else:
            current = None
    return current, parent, last


def _equal_text(left: Any, right: Any, exact: bool) -> int:
    if isinstance(left, str) and isinstance(right, str):
        a, b = (left, right) if exact else (left.lower(), right.lower())
        return (a > b) - (a < b)
    if left is None or right is None:
        return 0 if left is right else 1
    try:
        return int(left > right) - int(left < right)
    except TypeError:
        return 1


def evaluate(node: Node, doc: dict[str, Any], ext_key: Callable[[Any], Any], scope: dict[str, Any] | None = None) -> bool:
    scope = scope or {}
    kind = node[0]
    if kind == "and":
        return evaluate(node[1], doc, ext_key, scope) and evaluate(node[2], doc, ext_key, scope)
    if kind == "or":
        return evaluate(node[1], doc, ext_key, scope) or evaluate(node[2], doc, ext_key, scope)
    if kind == "not":
        return not evaluate(node[1], doc, ext_key, scope)
    if kind == "any":
        items, _, _ = _resolve(node[1], doc, scope)
        return any(evaluate(node[3], doc, ext_key, {**scope, node[2]: item}) for item in items or [])
    if kind == "func":
        value, _, _ = _resolve(node[2], doc, scope)
        if not isinstance(value, str) or not isinstance(node[3], str):
            return False
        text, needle = value.lower(), node[3].lower()
        return bool({"startswith": text.startswith, "endswith": text.endswith, "contains": text.__contains__}[node[1]](needle))
    op, path, literal = node[1], node[2], node[3]
    value, parent, last = _resolve(path, doc, scope)
    is_ext = isinstance(parent, dict) and EXT_MARK in parent
    if is_ext and last.lower() == "id":
        order = 0 if parent[EXT_MARK] == ext_key(literal) else 1
    else:
        order = _equal_text(value, literal, exact=is_ext)
    if op in ("eq", "ne"):
        return bool((order == 0) == (op == "eq"))
    return {"gt": order > 0, "ge": order >= 0, "lt": order < 0, "le": order <= 0}[op]


@dataclass
class ListOptions:
    """Parsed query options of a list request."""

    filter: Node | None = None
    select: list[str] | None = None
    top: int | None = None
    skip: int = 0
    orderby: tuple[list[str], bool] | None = None  # (path, descending)
    expand_ext: Node | None = None  # the $filter inside $expand=singleValueExtendedProperties(...)


KNOWN_OPTIONS = {"$filter", "$select", "$top", "$skip", "$orderby", "$expand", "$count", "$search", "$skiptoken",
                 "$deltatoken", "$format"}


def parse_options(query: Any, selectable: set[str], orderable: set[str], allow_expand: bool) -> ListOptions:
    options = ListOptions()
    for name in query:
        if name.startswith("$") and name.lower() not in KNOWN_OPTIONS:
            raise query_error(f"Query option '{name}' is not allowed.")
    if "$search" in query or "$count" in query:
        raise query_error("The Graph emulator does not support $search or $count on this resource.")
    if text := query.get("$filter"):
        options.filter = parse_filter(text)
    if text := query.get("$select"):
        names = [n.strip() for n in text.split(",") if n.strip()]
        lookup = {s.lower(): s for s in selectable}
        for name in names:
            if name.lower() not in lookup:
                raise GraphError(400, "RequestBroker--ParseUri", f"Could not find a property named '{name}'.")
        options.select = [lookup[n.lower()] for n in names]
    for name, attr in (("$top", "top"), ("$skip", "skip")):
        if (text := query.get(name)) is not None:
            if not (text.isascii() and text.isdigit()) or (name == "$top" and int(text) < 1):
                raise query_error(f"Invalid value '{text}' for query option '{name}'.")
            setattr(options, attr, int(text))
    if text := query.get("$orderby"):
        field, _, direction = text.strip().partition(" ")
        if field.lower() not in {o.lower() for o in orderable} or direction.strip().lower() not in ("", "asc", "desc"):
            raise query_error(f"The $orderby '{text}' is not supported.")
        options.orderby = (field.split("/"), direction.strip().lower() == "desc")
    if text := query.get("$expand"):
        if not allow_expand:
            raise query_error("$expand is not supported on this resource.")
        match = re.fullmatch(r"\s*singleValueExtendedProperties\s*(?:\(\s*\$filter\s*=(.*)\)\s*)?", text, re.I)
        if not match:
            raise query_error(f"The Graph emulator only expands singleValueExtendedProperties, not '{text}'.")
        if match.group(1) is None:
            raise query_error("Expanding singleValueExtendedProperties needs a $filter on id.")
        options.expand_ext = parse_filter(match.group(1))
    return options


def sort_key(path: list[str]) -> Callable[[dict[str, Any]], Any]:
    def key(doc: dict[str, Any]) -> Any:
        value, _, _ = _resolve(path, doc, {})
        return (value is not None, str(value).lower() if isinstance(value, str) else value or 0)

    return key
