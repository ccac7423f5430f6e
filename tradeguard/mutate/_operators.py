"""Single-operator mutants of Python source, located to the exact token.

The source is parsed with libcst, which keeps every byte of the file (comments, blank
lines, quoting, parentheses). A mutation site is the span of one token (an operator,
a literal, ``not``) given by libcst's positions; a mutant is the original text with
that span replaced, so its diff shows the user's own code with one token changed.

What is mutated (:data:`OPERATORS`): comparisons, arithmetic (binary, augmented,
unary minus), boolean operators, and constants (integers, floats, ``True``/``False``).
What is not, because its mutants change messages or declarations rather than
behaviour, or are equivalent almost by construction: strings of any kind (docstrings,
messages, f-strings and the expressions inside them), type annotations, ``__all__`` and
``__slots__``, decorators, ``typing.Literal[...]``, ``raise`` statements, ``assert``
messages, the arguments of ``print``, ``warnings.warn`` and logger calls, and the
``if __name__ == "__main__"`` test.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeguard.errors import InvalidConfig

if TYPE_CHECKING:
    import libcst as cst

__all__ = ["OPERATORS", "Mutant", "mutants_of_source", "require_libcst"]


_COMPARISONS: dict[str, str] = {
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "==": "!=",
    "!=": "==",
    "is": "is not",
    "is not": "is",
    "in": "not in",
    "not in": "in",
}
_ARITHMETIC: dict[str, str] = {
    "+": "-",
    "-": "+",
    "*": "/",
    "/": "*",
    "//": "/",
    "%": "/",
    "**": "*",
    "<<": ">>",
    ">>": "<<",
    "&": "|",
    "|": "&",
    "^": "&",
}
_BOOLEAN: dict[str, str] = {"and": "or", "or": "and"}

OPERATORS: dict[str, str] = {
    "comparison": ", ".join(f"{a} -> {b}" for a, b in _COMPARISONS.items()),
    "arithmetic": ", ".join(f"{a} -> {b}" for a, b in _ARITHMETIC.items())
    + "; the same for augmented assignment (+= -> -=, ...); -x -> x",
    "boolean": "and -> or, or -> and, not x -> x",
    "constant": "0 -> 1, 1 -> 0, n -> n + 1 (integers and floats), True <-> False",
}
"""Every mutation operator, by kind: what ``tradeguard mutate`` changes, one token at a time."""

_LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
_SKIPPED_TARGETS = frozenset({"__all__", "__slots__", "__match_args__"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Mutant:
    """One single-token change of one source file.

    Attributes:
        id: Stable identity, 12 hex digits: a hash of path, line, column and the change.
            The same code gives the same ids on every run and machine (when run from the
            same directory), which is what an equivalents file refers to.
        path: The file as shown: relative to the current directory when inside it.
        line: 1-based line of the changed token.
        column: 1-based column of the changed token.
        kind: ``comparison``, ``arithmetic``, ``boolean`` or ``constant``.
        original: The token as written, e.g. ``">="``.
        replacement: What the mutant has instead, e.g. ``">"`` (``""`` when ``not`` is removed).
        start: Offset of the changed span in the file's text.
        end: Offset just past the changed span.
    """

    id: str
    path: str
    line: int
    column: int
    kind: str
    original: str
    replacement: str
    start: int
    end: int

    @property
    def location(self) -> str:
        """``path:line:column``, as compilers and editors print it."""
        return f"{self.path}:{self.line}:{self.column}"

    @property
    def change(self) -> str:
        """The change in words, e.g. ``>= -> >`` or ``not x -> x``."""
        if self.original == "not" and not self.replacement:
            return "not x -> x"
        if self.original == "-" and not self.replacement:
            return "-x -> x"
        return f"{self.original} -> {self.replacement}"

    def apply(self, text: str) -> str:
        """The mutated file: ``text`` (this mutant's original file) with the one span replaced."""
        return text[: self.start] + self.replacement + text[self.end :]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "kind": self.kind,
            "original": self.original,
            "replacement": self.replacement,
            "change": self.change,
        }


def mutant_id(path: str, line: int, column: int, original: str, replacement: str) -> str:
    """The stable id of a mutant: 12 hex digits of SHA-256 over its location and change."""
    key = f"{path}:{line}:{column}:{original}->{replacement}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def require_libcst() -> Any:
    """Import libcst, or say how to install it."""
    try:
        import libcst
    except ImportError:
        raise InvalidConfig(
            "tradeguard mutate needs libcst, which is not installed. Install the extra: "
            "pip install 'tradeguard[mutate]' (or pip install libcst)."
        ) from None
    return libcst


def mutants_of_source(text: str, path: str) -> list[Mutant]:
    """Every single-operator mutant of one file's ``text``, in source order.

    Args:
        text: The file's contents.
        path: The file as it should be shown (and hashed into the ids).

    Returns:
        The mutants, ordered by position; each one compiles.

    Raises:
        InvalidConfig: ``text`` is not valid Python (the message names the line), or
            libcst is not installed.

    Example:
        >>> [m.change for m in mutants_of_source("def f(a, b):\\n    return a < b + 1\\n", "f.py")]
        ['< -> <=', '+ -> -', '1 -> 0']
    """
    cst = require_libcst()
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise InvalidConfig(
            f"--source {path!r} is not valid Python: line {exc.raw_line}, column {exc.raw_column}: "
            f"{exc.message}. tradeguard mutate reads the file as Python 3 source; fix the file or "
            "leave it out."
        ) from None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    collector = _collector(positions)
    wrapper.visit(collector)
    lines = _LineOffsets(text)
    mutants: list[Mutant] = []
    seen: set[tuple[int, int, str]] = set()
    for site in sorted(collector.sites, key=lambda s: (s.start_line, s.start_col, s.replacement)):
        start = lines.offset(site.start_line, site.start_col)
        end = lines.offset(site.end_line, site.end_col)
        if site.expect is not None and not _span_matches(text[start:end], site.expect):
            continue  # libcst placed the token elsewhere (never seen): skip rather than mutate blindly
        key = (start, end, site.replacement)
        if key in seen:
            continue
        seen.add(key)
        mutant = Mutant(
            id=mutant_id(path, site.start_line, site.start_col + 1, site.original, site.replacement),
            path=path,
            line=site.start_line,
            column=site.start_col + 1,
            kind=site.kind,
            original=site.original,
            replacement=site.replacement,
            start=start,
            end=end,
        )
        if _may_retokenize(text, start, end, site.replacement):
            try:
                compile(mutant.apply(text), path, "exec", dont_inherit=True)
            except SyntaxError:
                continue  # e.g. "0and" made "0or", which reads as an octal prefix: not a mutant
        mutants.append(mutant)
    return mutants


def _may_retokenize(text: str, start: int, end: int, replacement: str) -> bool:
    """Whether the new token could merge with a neighbour (``0and`` -> ``0or``) or vanish oddly.

    A token replaced by one of its own kind (an operator by an operator, a number by a
    number, ``True`` by ``False``) between spaces or punctuation reads as one token again,
    so only the other sites are compiled to be sure: compiling every mutant of a large
    file costs seconds per hundred.
    """

    def word(ch: str) -> bool:
        return ch.isalnum() or ch in "_.\\"

    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not replacement or "\n" in text[start:end] or word(before) or word(after)


def _span_matches(span: str, expect: str) -> bool:
    """The text at a site is the token we mean (``not  in`` with any spacing is ``not in``)."""
    return " ".join(span.split()) == expect


class _LineOffsets:
    """(line, column) to offset in the text, as libcst counts them (1-based lines, 0-based columns)."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._starts.append(i + 1)

    def offset(self, line: int, column: int) -> int:
        return self._starts[line - 1] + column

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


@dataclass(frozen=True, slots=True)
class _Site:
    kind: str
    original: str
    replacement: str
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    expect: str | None
    """The text the span must hold (whitespace-normalised); ``None``: not checked."""


_COLLECTOR: Any = None


def _collector(positions: Any) -> Any:
    """A :class:`_Collector` (the class is built on first use: libcst is an optional extra)."""
    global _COLLECTOR
    if _COLLECTOR is None:
        _COLLECTOR = type("_Collector", (_CollectorMixin, require_libcst().CSTVisitor), {})
    return _COLLECTOR(positions)


class _CollectorMixin:
    """Walks a module and records every mutation site outside the skipped constructs.

    Mixed into libcst's ``CSTVisitor`` by :func:`_collector`; ``visit_X`` returning False
    keeps libcst out of the node's subtree.
    """

    def __init__(self, positions: Any) -> None:
        super().__init__()
        self.positions = positions
        self.sites: list[_Site] = []

    def _as_visitor(self) -> Any:
        return self  # a CSTVisitor once mixed in (see _collector)

    # -- what is not mutated -------------------------------------------------------------

    def visit_Annotation(self, node: cst.Annotation) -> bool:
        return False

    def visit_Decorator(self, node: cst.Decorator) -> bool:
        return False

    def visit_FormattedString(self, node: cst.FormattedString) -> bool:
        return False

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
        return False

    def visit_Raise(self, node: cst.Raise) -> bool:
        return False

    def visit_Assert(self, node: cst.Assert) -> bool:
        node.test.visit(self._as_visitor())  # the condition is behaviour; the message is not
        return False

    def visit_Assign(self, node: cst.Assign) -> bool:
        import libcst as cst

        return not any(
            isinstance(t.target, cst.Name) and t.target.value in _SKIPPED_TARGETS for t in node.targets
        )

    def visit_AnnAssign(self, node: cst.AnnAssign) -> bool:
        import libcst as cst

        return not (isinstance(node.target, cst.Name) and node.target.value in _SKIPPED_TARGETS)

    def visit_AugAssign(self, node: cst.AugAssign) -> bool:
        import libcst as cst

        if isinstance(node.target, cst.Name) and node.target.value in _SKIPPED_TARGETS:
            return False
        token = type(node.operator).__name__
        op = _AUG_TOKENS.get(token)
        if op is not None and op in _ARITHMETIC:
            self._add_node("arithmetic", node.operator, f"{op}=", f"{_ARITHMETIC[op]}=")
        return True

    def visit_Call(self, node: cst.Call) -> bool:
        return not _is_message_call(node.func)

    def visit_Subscript(self, node: cst.Subscript) -> bool:
        return _dotted_name(node.value).rpartition(".")[2] != "Literal"

    def visit_If(self, node: cst.If) -> bool:
        if _is_main_guard(node.test):
            node.body.visit(self._as_visitor())
            if node.orelse is not None:
                node.orelse.visit(self._as_visitor())
            return False
        return True

    # -- what is mutated -------------------------------------------------------------------

    def visit_Comparison(self, node: cst.Comparison) -> bool:
        for target in node.comparisons:
            token = _COMPARISON_TOKENS[type(target.operator).__name__]
            self._add_node("comparison", target.operator, token, _COMPARISONS[token])
        return True

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> bool:
        token = _BINARY_TOKENS.get(type(node.operator).__name__)
        if token in _ARITHMETIC and not (_is_text(node.left) or _is_text(node.right)):
            self._add_node("arithmetic", node.operator, token, _ARITHMETIC[token])
        return True

    def visit_BooleanOperation(self, node: cst.BooleanOperation) -> bool:
        token = "and" if type(node.operator).__name__ == "And" else "or"
        self._add_node("boolean", node.operator, token, _BOOLEAN[token])
        return True

    def visit_UnaryOperation(self, node: cst.UnaryOperation) -> bool:
        name = type(node.operator).__name__
        if name in ("Not", "Minus"):
            op_pos = self.positions[node.operator]
            operand = node.expression
            # The operand's own position leaves its parentheses out: start at the first "(".
            inner = self.positions[operand.lpar[0] if operand.lpar else operand]
            token = "not" if name == "Not" else "-"
            kind = "boolean" if name == "Not" else "arithmetic"
            # The span runs from the operator to its operand, spaces included: "not x" -> "x".
            self.sites.append(
                _Site(kind, token, "", op_pos.start.line, op_pos.start.column, inner.start.line, inner.start.column, None)
            )
        return True

    def visit_Integer(self, node: cst.Integer) -> bool:
        value = node.evaluated_value
        new = {0: "1", 1: "0"}.get(value, str(value + 1))
        self._add_node("constant", node, node.value, new)
        return True

    def visit_Float(self, node: cst.Float) -> bool:
        value = node.evaluated_value
        if not math.isfinite(value + 1.0):
            return True
        new = {0.0: "1.0", 1.0: "0.0"}.get(value, repr(value + 1.0))
        self._add_node("constant", node, node.value, new)
        return True

    def visit_Name(self, node: cst.Name) -> bool:
        if node.value in ("True", "False"):
            self._add_node("constant", node, node.value, "False" if node.value == "True" else "True")
        return True

    def _add_node(self, kind: str, node: cst.CSTNode, original: str, replacement: str) -> None:
        pos = self.positions[node]  # the token itself: libcst leaves parentheses out
        start, end = pos.start, pos.end
        self.sites.append(_Site(kind, original, replacement, start.line, start.column, end.line, end.column, original))


_COMPARISON_TOKENS = {
    "LessThan": "<",
    "LessThanEqual": "<=",
    "GreaterThan": ">",
    "GreaterThanEqual": ">=",
    "Equal": "==",
    "NotEqual": "!=",
    "Is": "is",
    "IsNot": "is not",
    "In": "in",
    "NotIn": "not in",
}
_BINARY_TOKENS = {
    "Add": "+",
    "Subtract": "-",
    "Multiply": "*",
    "Divide": "/",
    "FloorDivide": "//",
    "Modulo": "%",
    "Power": "**",
    "LeftShift": "<<",
    "RightShift": ">>",
    "BitAnd": "&",
    "BitOr": "|",
    "BitXor": "^",
    "MatrixMultiply": "@",
}
_AUG_TOKENS = {f"{name}Assign": token for name, token in _BINARY_TOKENS.items()}


def _dotted_name(node: Any) -> str:
    """``a.b.c`` for a Name/Attribute chain (a call in it as ``f()``: ``logging.getLogger().info``), else ``""``."""
    import libcst as cst

    parts: list[str] = []
    while isinstance(node, (cst.Attribute, cst.Call)):
        if isinstance(node, cst.Call):
            parts.append("()")
            node = node.func
        else:
            parts.append(f".{node.attr.value}")
            node = node.value
    if isinstance(node, cst.Name):
        return (node.value + "".join(reversed(parts))).replace(".()", "()")
    return ""


def _is_message_call(func: Any) -> bool:
    """``print(...)``, ``warn(...)``, ``warnings.warn(...)``, ``logger.info(...)``: messages only."""
    name = _dotted_name(func)
    if name in ("print", "warn", "warnings.warn"):
        return True
    receiver, _, method = name.rpartition(".")
    return method in _LOG_METHODS and "log" in receiver.lower()


def _is_text(node: Any) -> bool:
    """A string literal of any kind: ``"a" + x`` builds text (a message), not a number."""
    import libcst as cst

    return isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))


def _is_main_guard(test: Any) -> bool:
    import libcst as cst

    return (
        isinstance(test, cst.Comparison)
        and isinstance(test.left, cst.Name)
        and test.left.value == "__name__"
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].comparator, cst.SimpleString)
    )


def sample_mutants(mutants: Sequence[Mutant], n: int, seed: int) -> list[Mutant]:
    """``n`` of ``mutants`` chosen by ``seed``, in source order; all of them if ``n`` is not smaller.

    The choice depends only on the mutants' ids, ``n`` and ``seed``: the same code gives
    the same sample on every machine, whatever order the files were listed in.
    """
    import random

    ordered = sorted(mutants, key=lambda m: m.id)
    chosen = ordered if n >= len(ordered) else random.Random(seed).sample(ordered, n)
    return sorted(chosen, key=lambda m: (m.path, m.line, m.column, m.id))
