"""Feature engineering building blocks: window aggregators and encoders.

``WindowAggregator`` defines the aggregations of :meth:`FeatureStore.create_feature_group`;
``Encoder`` is attached to a feature with :meth:`FeatureStore.add_transformation`.
"""

from fstore_spark.core import WindowAggregator
from fstore_spark.ml import Encoder

__all__ = ["Encoder", "WindowAggregator"]
