"""A SCIM filter (RFC 7644 §3.4.2.2) as a PostgreSQL condition with ``$n`` parameters.

The filter is parsed and checked against the resource's schema by scim2-models (a lark grammar,
``ScimFilter``): nothing here reads filter text. This module only walks the parsed tree
(``FilterVisitor``) and writes SQL:

* columns come from a fixed allow-list keyed by the attribute as scim2-models *resolves* it, so
  ``userName``, ``USERNAME`` and the URN-qualified name reach the same column, and an attribute
  not on the list is a 400 ``invalidFilter``, never a condition silently dropped;
* values only ever travel as parameters (``$n::text``, ``$n::boolean``);
* ``co``/``sw``/``ew`` use ``strpos``/``starts_with``/``right``, not LIKE, so ``%`` and ``_`` in a
  value are literal;
* case follows the schema's ``caseExact`` (``lower()`` on both sides otherwise);
* a multi-valued attribute kept as a jsonb array (emails) is an ``EXISTS`` over its elements, and a
  value path ``emails[type eq "work" and value co "x"]`` puts all its conditions on one element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scim2_models import InvalidFilterException, ScimFilter
from scim2_models.path import (
    AttrPath, CompareOperator, Comparison, FilterNode, FilterVisitor, LogicalExpr,
    LogicalOperator, Not, Present, ValuePath, coerce_value,
)


@dataclass(frozen=True)
class Col:
    """A scalar SQL expression (a column of the joined rows)."""

    sql: str


@dataclass(frozen=True)
class JsonItems:
    """A multi-valued attribute kept as a jsonb array of objects, e.g. emails."""

    sql: str  # the jsonb array expression, e.g. m.scim_emails


Column = Col | JsonItems
# keys: (field_name, sub_field_name) as scim2-models resolves them (python names)
ColumnMap = dict[tuple[str, str | None], Column]


@dataclass
class SqlFilter(FilterVisitor[str]):
    """The visitor: each node of the tree as SQL, its values collected in ``params``."""

    scim_filter: ScimFilter  # bound to a model: ScimFilter[Model], e.g. SearchRequest[Model].filter
    columns: ColumnMap
    first_param: int = 1
    params: list[Any] = field(default_factory=list)
    _item: str | None = None    # inside EXISTS(jsonb_array_elements(...) AS item)

    # -- helpers ---------------------------------------------------------------------------
    def _p(self, value: Any) -> str:
        if isinstance(value, str):
            value = str(value)  # StrEnum (e.g. Email.Type.work) -> plain str for asyncpg
        self.params.append(value)
        return f"${self.first_param + len(self.params) - 1}"

    def _bind(self, attr_path: AttrPath, *, comparison: bool):
        resolve = self.scim_filter.resolve_comparison if comparison else self.scim_filter.resolve
        b = resolve(attr_path, strict=True)
        col = self.columns.get((b.field_name, b.sub_field_name))
        if col is None and b.sub_field_name is None:
            col = self.columns.get((b.field_name, None))
        if col is None:
            raise InvalidFilterException(detail=f"Filtering on '{attr_path}' is not supported")
        return b, col

    def _text_of(self, b, col: Column) -> tuple[str, str | None]:
        """(SQL text expression, jsonb array to iterate or None)."""
        if isinstance(col, JsonItems):
            return f"(item->>'{b.sub_field_name or 'value'}')", col.sql
        return col.sql, None

    @staticmethod
    def _exists(array_sql: str, cond: str) -> str:
        items = f"CASE jsonb_typeof({array_sql}) WHEN 'array' THEN {array_sql} ELSE '[]'::jsonb END"  # NULL, a JSON null: none
        return f"EXISTS (SELECT 1 FROM jsonb_array_elements({items}) AS item WHERE {cond})"

    def _compare(self, expr: str, b, op: CompareOperator, value: Any) -> str:
        if b.target_type is bool:
            if op not in (CompareOperator.eq, CompareOperator.ne):
                raise InvalidFilterException(detail=f"'{op}' cannot compare a boolean")
            sql = f"({expr})::boolean IS NOT DISTINCT FROM {self._p(bool(value))}::boolean"
            return sql if op == CompareOperator.eq else f"NOT ({sql})"
        if not isinstance(value, str):
            raise InvalidFilterException(detail="Only string comparisons are supported here")
        param = f"{self._p(value)}::text"
        lhs, rhs = (expr, param) if b.case_exact else (f"lower({expr})", f"lower({param})")
        match op:
            case CompareOperator.eq: return f"{lhs} = {rhs}"
            case CompareOperator.ne: return f"{lhs} IS DISTINCT FROM {rhs}"
            case CompareOperator.co: return f"strpos({lhs}, {rhs}) > 0"        # no LIKE: nothing to escape
            case CompareOperator.sw: return f"starts_with({lhs}, {rhs})"
            case CompareOperator.ew: return f"right({lhs}, length({rhs})) = {rhs}"
            case CompareOperator.gt: return f"{lhs} > {rhs}"
            case CompareOperator.ge: return f"{lhs} >= {rhs}"
            case CompareOperator.lt: return f"{lhs} < {rhs}"
            case CompareOperator.le: return f"{lhs} <= {rhs}"
        raise InvalidFilterException(detail=f"Unsupported operator {op}")

    # -- visitor ---------------------------------------------------------------------------
    def visit_comparison(self, node: Comparison) -> str:
        b, col = self._bind(node.attr_path, comparison=True)
        value = coerce_value(b, node.value, node.op)   # typed per the schema; raises invalidFilter
        expr, array = self._text_of(b, col)
        if array is not None and self._item is None and node.op == CompareOperator.ne:
            # multi-valued 'ne': no value equals (the reading scim2-models' ScimFilter.match uses)
            return f"(NOT {self._exists(array, self._compare(expr, b, CompareOperator.eq, value))})"
        cond = f"COALESCE({self._compare(expr, b, node.op, value)}, false)"
        if array is None or self._item is not None:
            return f"({cond})"
        return self._exists(array, cond)

    def visit_present(self, node: Present) -> str:
        b, col = self._bind(node.attr_path, comparison=False)
        expr, array = self._text_of(b, col)
        cond = f"({expr} IS NOT NULL AND {expr}::text <> '')"
        if array is None or self._item is not None:
            return cond
        return self._exists(array, cond)

    def visit_not(self, node: Not) -> str:
        return f"(NOT {self.visit(node.expr)})"

    def visit_logical_expr(self, node: LogicalExpr) -> str:
        joiner = " AND " if node.op == LogicalOperator.and_ else " OR "
        return "(" + joiner.join(self.visit(t) for t in node.terms) + ")"

    def visit_value_path(self, node: ValuePath) -> str:
        """emails[type eq "work" and value co "x"]: every condition on the *same* entry."""
        b, col = self._bind(node.attr_path, comparison=False)
        outer = node.attr_path

        def qualify(n: FilterNode) -> FilterNode:
            if isinstance(n, Comparison):
                return Comparison(AttrPath(outer.attr, n.attr_path.attr, outer.uri), n.op, n.value)
            if isinstance(n, Present):
                return Present(AttrPath(outer.attr, n.attr_path.attr, outer.uri))
            if isinstance(n, Not):
                return Not(qualify(n.expr))
            if isinstance(n, LogicalExpr):
                return LogicalExpr(n.op, tuple(qualify(t) for t in n.terms))
            raise InvalidFilterException(detail="Nested value filters are not supported")

        inner = qualify(node.val_filter)
        if not isinstance(col, JsonItems):      # a single-valued stand-in: plain conditions
            return self.visit(inner)
        self._item = "item"
        try:
            cond = self.visit(inner)
        finally:
            self._item = None
        return self._exists(col.sql, cond)


def where_clause(scim_filter: ScimFilter | None, columns: ColumnMap, first_param: int = 1) -> tuple[str, list[Any]]:
    """The condition and its parameters (numbered from ``first_param``); ``TRUE`` without a filter."""
    if scim_filter is None:
        return "TRUE", []
    v = SqlFilter(scim_filter, columns, first_param=first_param)
    return v.visit(scim_filter.ast), v.params
