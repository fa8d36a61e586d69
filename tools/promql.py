"""A small PromQL scanner: the series selectors of an expression, each with its matchers, range and
the function it is an argument of. Enough for the dashboard lint and for checking that every metric
a dashboard or an alert rule queries exists; not a full PromQL parser."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_GROUPING = re.compile(r"(?:by|without)\s*\([^)]*\)\s*\(", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9][0-9a-zA-Z_.+]*")
# Keywords followed by a parenthesised list of label names, not of series.
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _LABEL_LIST_KEYWORDS | {"and", "or", "unless", "bool", "offset", "inf", "nan"}


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (operator, value)
    range: str | None = None
    function: str | None = None  # the innermost function call the selector is an argument of


class PromQLError(ValueError):
    pass


def selectors(expr: str) -> list[Selector]:
    found: list[Selector] = []
    calls: list[str | None] = []  # one entry per open parenthesis: the function that opened it
    i, n = 0, len(expr)
    while i < n:
        char = expr[i]
        if char in "\"'`":
            end = expr.find(char, i + 1)
            if end < 0:
                raise PromQLError(f"unterminated string in {expr!r}")
            i = end + 1
        elif char == "(":
            calls.append(None)
            i += 1
        elif char == ")":
            if not calls:
                raise PromQLError(f"unbalanced parenthesis in {expr!r}")
            calls.pop()
            i += 1
        elif char == "[":  # a subquery range after a parenthesis
            end = expr.find("]", i)
            if end < 0:
                raise PromQLError(f"unterminated range in {expr!r}")
            i = end + 1
        elif char == "{":
            raise PromQLError(f"selector without a metric name in {expr!r}")
        elif char.isdigit() or (char == "." and i + 1 < n and expr[i + 1].isdigit()):
            match = _NUMBER.match(expr, i)
            i = match.end() if match else i + 1
        elif match := _IDENTIFIER.match(expr, i):
            name = match.group()
            i = _skip_spaces(expr, match.end())
            if name.lower() in _LABEL_LIST_KEYWORDS and i < n and expr[i] == "(":
                i = expr.index(")", i) + 1
            elif name.lower() in _KEYWORDS:
                continue
            elif grouping := _GROUPING.match(expr, i):  # sum by (le) (...): an aggregation
                calls.append(name)
                i = grouping.end()
            elif i < n and expr[i] == "(":
                calls.append(name)
                i += 1
            else:
                selector, i = _selector(expr, name, i, next((c for c in reversed(calls) if c), None))
                found.append(selector)
        else:
            i += 1
    if calls:
        raise PromQLError(f"unbalanced parenthesis in {expr!r}")
    return found


def metric_names(expr: str) -> set[str]:
    return {selector.metric for selector in selectors(expr)}


def _skip_spaces(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def _selector(expr: str, metric: str, i: int, function: str | None) -> tuple[Selector, int]:
    matchers: dict[str, tuple[str, str]] = {}
    if i < len(expr) and expr[i] == "{":
        end = i + 1
        while True:
            end = _skip_spaces(expr, end)
            if end < len(expr) and expr[end] == "}":
                break
            match = _MATCHER.match(expr, end)
            if match is None:
                raise PromQLError(f"bad matcher in {expr!r} at {end}")
            matchers[match.group(1)] = (match.group(2), match.group(3))
            end = match.end()
        i = _skip_spaces(expr, end + 1)
    range_ = None
    if i < len(expr) and expr[i] == "[":
        end = expr.index("]", i)
        range_ = expr[i + 1 : end]
        i = end + 1
    # The innermost call only counts when the selector is its direct argument (rate(x[5m])).
    return Selector(metric, matchers, range_, function), i
