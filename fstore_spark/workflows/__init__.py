"""The ML workflow classes: selectors, validators, monitors and A/B tests bound to a store.

Each class is a thin layer over :class:`~fstore_spark.FeatureStore`: it keeps what a workflow
step sets up (expectations, a baseline, metrics) and calls the store's engine to do the
work. A class is bound to the store given as ``store=``, or to the default store built from
the configuration (``$FSTORE_CONFIG`` or ``conf/feature_store.yaml``), see
:func:`default_store`. Feature set ids (``name@vN``) are accepted wherever a set of views
makes sense: validation and drift over a set are over its views at the pinned versions.

The classes are also importable under the workflow guide's module names:
``fstore_spark.transformations`` (``WindowAggregator``, ``Encoder``), ``fstore_spark.analysis``
(``FeatureSelector``), ``fstore_spark.validation`` (``FeatureValidator``),
``fstore_spark.monitoring`` (``DriftMonitor``, ``FeatureMonitor``),
``fstore_spark.experimentation`` (``ABTest``) and ``fstore_spark.utils`` (``temporal_split``).
"""

from fstore_spark.workflows.analysis import FeatureSelector
from fstore_spark.workflows.binding import default_store, set_default_store
from fstore_spark.workflows.experimentation import ABTest
from fstore_spark.workflows.monitoring import DriftMonitor, FeatureMonitor
from fstore_spark.workflows.validation import FeatureValidator

__all__ = [
    "ABTest",
    "DriftMonitor",
    "FeatureMonitor",
    "FeatureSelector",
    "FeatureValidator",
    "default_store",
    "set_default_store",
]
