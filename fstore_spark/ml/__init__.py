"""ML workflows on features: encoders, feature selection, A/B tests of feature sets."""

from fstore_spark.ml.ab_results import ABTestResults
from fstore_spark.ml.ab_test import ABTest
from fstore_spark.ml.encoders import (
    Encoder,
    FittedEncoder,
    apply_encoders,
)
from fstore_spark.ml.selection import (
    correlation_matrix,
    mutual_information,
    select_features,
)

__all__ = [
    "ABTest",
    "ABTestResults",
    "Encoder",
    "FittedEncoder",
    "apply_encoders",
    "correlation_matrix",
    "mutual_information",
    "select_features",
]
