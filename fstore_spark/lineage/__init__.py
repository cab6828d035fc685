"""MLflow lineage: feature specs, training-set logging, models and reproduction."""

