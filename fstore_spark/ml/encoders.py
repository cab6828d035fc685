"""Encoders fitted once in Spark and applied the same way in training, batch scoring and online.

An :class:`Encoder` says *how* to encode a column; :meth:`Encoder.fit` learns the state from a
training DataFrame with Spark aggregations and returns a :class:`FittedEncoder`, which is plain
data (JSON round trip) and applies that state to

* a Spark DataFrame (:meth:`FittedEncoder.transform`: a broadcast join with the learned
  mapping, no UDF) — training sets and ``store.score_batch``;
* pandas (:meth:`FittedEncoder.transform_pandas`) and single records
  (:meth:`FittedEncoder.transform_record`) — online serving, where a feature vector read from
  Redis is one dict.

Training/serving consistency is by construction: there is one learned state and the three
paths apply the same arithmetic to it (the tests compare them value by value), and
``store.log_model(..., encoders=[...])`` stores the state with the model, so
``score_batch`` encodes with exactly what training used.

The methods:

* ``target`` (``target_encoding``): the smoothed mean of ``target`` per category,
  ``(n * mean + smoothing * prior) / (n + smoothing)``, with ``prior`` the overall mean; an
  unseen or null category gets ``prior``. Encoding the training rows with a state fitted on
  those same rows leaks the target: :meth:`Encoder.fit_transform` encodes each training row
  with the statistics of the *other* folds (out-of-fold), as is standard.
* ``onehot`` (``one_hot``): one 0/1 column per category among the ``max_categories`` most
  frequent; unseen and null categories are all zeros.
* ``ordinal`` (``label``): the category's rank by frequency (ties by value), from 0; unseen and
  null are ``-1``.
* ``standard`` (``standardize``): ``(x - mean) / stddev`` (sample stddev; a constant column
  gives 0); null stays null.

Categories are compared as strings (Spark's cast to string; booleans as ``true``/``false``), so
string, integer, boolean and date columns are accepted; floating-point columns are not
categories (bucket them first).

Example::

    enc = Encoder("target_encoding", column="customer_category", target="converted")
    fitted, train = enc.fit_transform(train_df, folds=5)     # out-of-fold on the training rows
    test = fitted.transform(test_df)                         # the fitted state elsewhere
    fitted.transform_record({"customer_category": "gold"})   # online, same numbers
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

__all__ = ["Encoder", "FittedEncoder", "apply_encoders"]

_METHODS = {
    "target": "target",
    "target_encoding": "target",
    "onehot": "onehot",
    "one_hot": "onehot",
    "ordinal": "ordinal",
    "label": "ordinal",
    "standard": "standard",
    "standardize": "standard",
}
_CATEGORY_TYPES = ("string", "int", "bigint", "smallint", "tinyint", "boolean", "date")
_KEY = "_fs_key"


def _key(value: Any) -> str | None:
    """A category as Spark's ``cast(x as string)`` writes it (booleans ``true``/``false``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        raise DefinitionError("timestamps are not categories; bucket them first.")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars from pandas
        return _key(value.item())
    return str(value)


@dataclass(frozen=True)
class Encoder:
    """How to encode one column (see the module docstring for the methods).

    Attributes:
        method: ``target``/``target_encoding``, ``onehot``/``one_hot``,
            ``ordinal``/``label``, ``standard``/``standardize``.
        column: The input column; empty in a template that
            :meth:`FeatureStore.add_transformation` binds to a feature.
        target: The label column (``target`` only); a template may leave it to the fit
            (:meth:`FeatureStore.fit_transformations`).
        output: Output column name (default ``<column>_te`` / ``_ord`` / ``_std``); for
            ``onehot`` the prefix of ``<prefix>__<category>`` (default the column).
        smoothing: Weight of the prior in target encoding (pseudo-count).
        max_categories: Most categories kept (by frequency); fitting fails above it for
            ``target`` and ``ordinal`` (a silent cut would give unseen-category values to
            frequent rows), and keeps the most frequent for ``onehot``.
    """

    method: str
    column: str = ""
    target: str | None = None
    output: str | None = None
    smoothing: float = 10.0
    max_categories: int = 10_000

    def __post_init__(self) -> None:
        """Check the method and its parameters; store the method's canonical name."""
        if self.method not in _METHODS:
            raise DefinitionError(
                f"unknown encoder method {self.method!r}; valid: {', '.join(_METHODS)}."
            )
        object.__setattr__(self, "method", _METHODS[self.method])
        if self.method == "target" and self.column and not self.target:
            raise DefinitionError(f"target encoding of {self.column!r} needs target=<label>.")
        if self.smoothing < 0 or self.max_categories < 1:
            raise DefinitionError("smoothing must be >= 0 and max_categories >= 1.")

    def _check(self, df: DataFrame) -> None:
        """The columns exist, and the encoded column's type fits the method."""
        if not self.column:
            raise DefinitionError(
                f"a {self.method} encoder without a column cannot be fitted. Fix: give "
                "column=..., or attach it with store.add_transformation(feature, encoder)."
            )
        types = dict(df.dtypes)
        for c in [self.column] + ([self.target] if self.target else []):
            if c not in types:
                raise DefinitionError(
                    f"encoder {self.method}({self.column}): column {c!r} is not in the data; "
                    f"columns: {', '.join(df.columns)}."
                )
        dtype = types[self.column]
        if self.method == "standard":
            if not dtype.startswith(
                ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
            ):
                raise DefinitionError(
                    f"standard encoding needs a numeric column; {self.column!r} is {dtype}."
                )
        elif dtype not in _CATEGORY_TYPES:
            raise DefinitionError(
                f"{self.method} encoding needs a categorical column (string, integer, boolean, "
                f"date); {self.column!r} is {dtype}. Bucket it first."
            )

    def fit(self, df: DataFrame) -> FittedEncoder:
        """Learn the state from ``df``.

        Spark aggregations; only the state reaches the driver (at most ``max_categories``
        entries).

        Raises:
            DefinitionError: a column is missing or of the wrong type, or ``target`` and
                ``ordinal`` encodings find more than ``max_categories`` categories.
        """
        self._check(df)
        if self.method == "standard":
            return self._fit_standard(df)
        if self.method == "target":
            return self._fit_target(df)
        return self._fit_ranks(df)

    def _fit_standard(self, df: DataFrame) -> FittedEncoder:
        """Mean and sample stddev; the row count rides on the same single aggregation."""
        from pyspark.sql import functions as F

        col = F.col(f"`{self.column}`")
        r = df.agg(
            F.count(F.lit(1)).alias("n"), F.mean(col).alias("m"), F.stddev_samp(col).alias("s")
        ).first()
        assert r is not None  # a global aggregation always yields one row
        mean = float(r["m"]) if r["m"] is not None else 0.0
        sd = float(r["s"]) if r["s"] is not None else 0.0
        return FittedEncoder(self, int(r["n"]), mean=mean, stddev=sd)

    def _fit_target(self, df: DataFrame) -> FittedEncoder:
        """The prior (mean of the labelled rows) and the smoothed label mean per category."""
        from pyspark.sql import functions as F

        col = F.col(f"`{self.column}`")
        y = F.col(f"`{self.target}`").cast("double")
        labelled = df.where(y.isNotNull())
        # mean() skips null labels: the prior of the labelled rows, with the row count
        head = df.agg(F.count(F.lit(1)).alias("n"), F.mean(y).alias("p")).first()
        assert head is not None
        rows = int(head["n"])
        prior = float(head["p"]) if head["p"] is not None else 0.0
        stats = (
            labelled.where(col.isNotNull())
            .groupBy(col.cast("string").alias(_KEY))
            .agg(F.sum(y).alias("s"), F.count(F.lit(1)).alias("n"))
            .limit(self.max_categories + 1)
            .collect()
        )
        self._bounded(len(stats))
        mapping = {
            r[_KEY]: (float(r["s"]) + self.smoothing * prior) / (int(r["n"]) + self.smoothing)
            for r in stats
        }
        return FittedEncoder(self, rows, prior=prior, mapping=mapping)

    def _fit_ranks(self, df: DataFrame) -> FittedEncoder:
        """Categories ranked by frequency, ties by value (``ordinal`` and ``onehot``).

        One more than ``max_categories`` is fetched so that ``ordinal`` can tell a full set
        from a cut one; ``onehot`` keeps the most frequent.
        """
        from pyspark.sql import functions as F

        col = F.col(f"`{self.column}`")
        rows = df.count()
        counts = (
            df.where(col.isNotNull())
            .groupBy(col.cast("string").alias(_KEY))
            .agg(F.count(F.lit(1)).alias("n"))
            .orderBy(F.col("n").desc(), F.col(_KEY).asc())
            .limit(self.max_categories + 1)
            .collect()
        )
        if self.method == "ordinal":
            self._bounded(len(counts))
        cats = [r[_KEY] for r in counts[: self.max_categories]]
        return FittedEncoder(self, rows, mapping={c: float(i) for i, c in enumerate(cats)})

    def _bounded(self, n: int) -> None:
        """Refuse more categories than kept: a silent cut would mis-encode frequent rows."""
        if n > self.max_categories:
            raise DefinitionError(
                f"{self.method} encoding of {self.column!r}: more than {self.max_categories} "
                "categories. Raise max_categories, or group rare categories first."
            )

    def fit_transform(
        self, df: DataFrame, *, folds: int = 5, seed: int = 0
    ) -> tuple[FittedEncoder, DataFrame]:
        """Fit on ``df`` and encode ``df`` itself.

        For ``target`` encoding each row is encoded out-of-fold: rows are assigned to
        ``folds`` folds by a hash of their content (and ``seed``), and a row's value uses the
        target statistics of the other folds only, with their prior (so a row's own label never
        contributes to its encoding). Other methods do not look at the label:
        ``fit(df).transform(df)``.
        """
        fitted = self.fit(df)
        if self.method != "target" or folds < 2:
            return fitted, fitted.transform(df)
        return fitted, self._out_of_fold(df, fitted, folds, seed)

    def _out_of_fold(
        self, df: DataFrame, fitted: FittedEncoder, folds: int, seed: int
    ) -> DataFrame:
        """``df`` with each row target-encoded by the statistics of the other folds (lazy).

        A category's other-fold sums are its total minus its own fold's, so the plan is a few
        grouped aggregations and joins, never one pass per fold. The prior is the label mean
        of the other folds too (``fitted.prior`` when they hold no labels).
        """
        from pyspark.sql import functions as F

        col = F.col(f"`{self.column}`")
        y = F.col(f"`{self.target}`").cast("double")
        fold = F.pmod(F.xxhash64(F.lit(seed), *[F.col(f"`{c}`") for c in df.columns]), F.lit(folds))
        tagged = df.withColumn("_fs_fold", fold).withColumn(_KEY, col.cast("string"))
        labelled = tagged.where(y.isNotNull())
        per_fold = labelled.groupBy("_fs_fold").agg(
            F.sum(y).alias("_fs_fs"), F.count(F.lit(1)).alias("_fs_fn")
        )
        per_cat = (
            labelled.where(col.isNotNull())
            .groupBy("_fs_fold", _KEY)
            .agg(F.sum(y).alias("_fs_cs"), F.count(F.lit(1)).alias("_fs_cn"))
        )
        cat_total = per_cat.groupBy(_KEY).agg(
            F.sum("_fs_cs").alias("_fs_ts"), F.sum("_fs_cn").alias("_fs_tn")
        )
        totals = labelled.agg(F.sum(y).alias("_fs_as"), F.count(F.lit(1)).alias("_fs_an"))
        m = F.lit(float(self.smoothing))
        out = (
            tagged.join(F.broadcast(per_fold), "_fs_fold", "left")
            .join(per_cat, ["_fs_fold", _KEY], "left")
            .join(cat_total, _KEY, "left")
            .crossJoin(F.broadcast(totals))
        )
        zero = F.lit(0.0)
        rest_n = F.col("_fs_an") - F.coalesce(F.col("_fs_fn"), zero)
        prior = F.when(
            rest_n > 0,
            (F.col("_fs_as") - F.coalesce(F.col("_fs_fs"), zero)) / rest_n,
        ).otherwise(F.lit(fitted.prior))
        cs = F.coalesce(F.col("_fs_ts"), zero) - F.coalesce(F.col("_fs_cs"), zero)
        cn = F.coalesce(F.col("_fs_tn"), zero) - F.coalesce(F.col("_fs_cn"), zero)
        value = (cs + m * prior) / (cn + m)
        value = F.when(cn + m > 0, value).otherwise(prior)
        return out.withColumn(fitted.outputs[0], value.cast("double")).select(
            *[F.col(f"`{c}`") for c in df.columns], fitted.outputs[0]
        )


@dataclass(frozen=True)
class FittedEncoder:
    """An encoder's learned state: plain data, applied identically by Spark, pandas and Python.

    Attributes:
        encoder: The definition.
        fitted_rows: Rows it was fitted on.
        mapping: Category -> value (``target``: the smoothed mean; ``ordinal``/``onehot``:
            the rank).
        prior: The overall target mean (``target``).
        mean: Mean (``standard``).
        stddev: Sample standard deviation (``standard``).
    """

    encoder: Encoder
    fitted_rows: int
    mapping: dict[str, float] = field(default_factory=dict)
    prior: float = 0.0
    mean: float = 0.0
    stddev: float = 0.0

    @property
    def outputs(self) -> list[str]:
        """The output column names, in order."""
        e = self.encoder
        if e.method == "onehot":
            prefix = e.output or e.column
            names, seen = [], set()
            for cat in sorted(self.mapping, key=lambda c: self.mapping[c]):
                base = f"{prefix}__{re.sub(r'[^0-9A-Za-z_]', '_', cat)}"
                name, i = base, 1
                while name in seen:
                    i += 1
                    name = f"{base}_{i}"
                seen.add(name)
                names.append(name)
            return names
        suffix = {"target": "_te", "ordinal": "_ord", "standard": "_std"}[e.method]
        return [e.output or f"{e.column}{suffix}"]

    def _unseen(self) -> float:
        """The value of an unseen or null category: the prior (target) or -1 (ranks)."""
        return self.prior if self.encoder.method == "target" else -1.0

    def _scale(self, x: float) -> float:
        """``(x - mean) / stddev``; 0 for a constant column (as the Spark path)."""
        return (x - self.mean) / self.stddev if self.stddev > 0 else 0.0

    def transform(self, df: DataFrame) -> DataFrame:
        """Add the output column(s) to a Spark DataFrame.

        Lazy: a broadcast join with the mapping (at most ``max_categories`` rows), no UDF.
        """
        from pyspark.sql import functions as F

        e = self.encoder
        col = F.col(f"`{e.column}`")
        if e.method == "standard":
            value = (col.cast("double") - F.lit(self.mean)) / F.lit(self.stddev)
            if self.stddev <= 0:
                value = F.when(col.isNotNull(), F.lit(0.0))
            return df.withColumn(self.outputs[0], value.cast("double"))
        spark = df.sparkSession
        items = sorted(self.mapping.items(), key=lambda kv: kv[1])
        table = spark.createDataFrame(items or [("", 0.0)], f"{_KEY} string, _fs_v double")
        if not items:
            table = table.limit(0)
        joined = df.withColumn(_KEY, col.cast("string")).join(F.broadcast(table), _KEY, "left")
        if e.method == "onehot":
            out = joined
            for name, (_, rank) in zip(self.outputs, items, strict=True):
                out = out.withColumn(
                    name, (F.coalesce(F.col("_fs_v"), F.lit(-1.0)) == rank).cast("int")
                )
            return out.drop(_KEY, "_fs_v")
        value = F.coalesce(F.col("_fs_v"), F.lit(self._unseen()))
        if e.method == "ordinal":
            value = value.cast("int")
        return joined.withColumn(self.outputs[0], value).drop(_KEY, "_fs_v")

    def transform_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Encode one record (e.g. an online feature vector): a new dict with the outputs."""
        out = dict(record)
        out.update(self._encode(record.get(self.encoder.column)))
        return out

    def transform_pandas(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """Encode a pandas DataFrame (a copy with the output columns)."""
        import pandas as pd

        values = [self._encode(v) for v in pdf[self.encoder.column].tolist()]
        enc = pd.DataFrame(values, index=pdf.index, columns=self.outputs)
        return pd.concat([pdf, enc], axis=1)

    def _encode(self, v: Any) -> dict[str, Any]:
        """Output column -> value for one input value (the pandas and record paths)."""
        e = self.encoder
        if e.method == "standard":
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return {self.outputs[0]: None}
            return {self.outputs[0]: self._scale(float(v))}
        k = _key(v)
        hit = self.mapping.get(k) if k is not None else None
        if e.method == "onehot":
            return {n: int(hit == i) for i, n in enumerate(self.outputs)}
        value = self._unseen() if hit is None else hit
        return {self.outputs[0]: int(value) if e.method == "ordinal" else value}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict; :meth:`from_dict` reverses it exactly."""
        e = self.encoder
        return {
            "method": e.method,
            "column": e.column,
            "target": e.target,
            "output": e.output,
            "smoothing": e.smoothing,
            "max_categories": e.max_categories,
            "fitted_rows": self.fitted_rows,
            "mapping": self.mapping,
            "prior": self.prior,
            "mean": self.mean,
            "stddev": self.stddev,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FittedEncoder:
        """Inverse of :meth:`to_dict`."""
        enc = Encoder(
            d["method"],
            d["column"],
            d.get("target"),
            d.get("output"),
            float(d.get("smoothing", 10.0)),
            int(d.get("max_categories", 10_000)),
        )
        return cls(
            enc,
            int(d["fitted_rows"]),
            {str(k): float(v) for k, v in d.get("mapping", {}).items()},
            float(d.get("prior", 0.0)),
            float(d.get("mean", 0.0)),
            float(d.get("stddev", 0.0)),
        )

    def to_json(self) -> str:
        """The state as JSON (floats round-trip exactly)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FittedEncoder:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def apply_encoders(df: DataFrame, encoders: Sequence[FittedEncoder]) -> DataFrame:
    """Apply fitted encoders in order to a Spark DataFrame (lazy)."""
    for enc in encoders:
        df = enc.transform(df)
    return df
