"""MLflow lineage: feature specs, training-set logging, models and reproduction.

* ``spec`` — :class:`FeatureSpec`, what a training set was built from (no MLflow, no Spark);
* ``datasets`` — the Delta tables a training set read, as MLflow dataset inputs;
* ``tracking`` — the tracking URI, the run to log to, logging a training set, search filters;
* ``artifacts`` — reading run specs and model metadata back, model URIs, local model copies;
* ``service`` — :class:`Lineage`, the store's training-set, reproduction and search calls.
"""
