"""The method's SQL, written in DuckDB's dialect, carried to Spark SQL (with sqlglot).

A few constructs mean different things on the two engines; each rewrite below says which:

* ``WITH x AS [NOT] MATERIALIZED``: a DuckDB planning hint, which Spark does not parse.
* ``sum(weight_fx)``: DuckDB sums BIGINT into a 128-bit HUGEINT; Spark into a BIGINT, which
  overflows (an error under ANSI) past 2^63, i.e. 2,048 whole contributions at one
  coordinate in fixed point. The sums of fixed-point weights are taken in DECIMAL(38, 0).
* ``ORDER BY ALL``: not Spark SQL; orders are set on the collected rows.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp

#: Columns of fixed-point weights (``weight_fx``): summed exactly.
_FIXED_POINT_COLUMNS = frozenset({"weight_fx"})


def _drop_materialized(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node.set("materialized", None)
    return node


def _exact_sums(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Sum) and isinstance(node.this, exp.Column) \
            and node.this.name in _FIXED_POINT_COLUMNS:
        node.set("this", exp.cast(node.this, exp.DataType.build("DECIMAL(38, 0)")))
    return node


@functools.lru_cache(maxsize=256)
def to_spark(sql: str) -> str:
    """One statement of DuckDB SQL as Spark SQL.

    Raises
    ------
    ValueError
        The statement uses something this module does not carry over (``ORDER BY ALL``).
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    for order in tree.find_all(exp.Order):
        if any(isinstance(o.this, (exp.Column, exp.Var)) and o.this.name.upper() == "ALL"
               for o in order.expressions):
            raise ValueError("ORDER BY ALL has no Spark SQL form: order the collected rows")
    tree = tree.transform(_drop_materialized).transform(_exact_sums)
    return tree.sql(dialect="spark")
