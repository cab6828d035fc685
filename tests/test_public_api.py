"""The public surface: every error type exported, every FeatureStore method's parameters pinned.

A change here is a change users see: update the snapshot only together with the CHANGELOG.
"""

from __future__ import annotations

import inspect

import fstore_spark
from fstore_spark import FeatureStore, errors

FEATURE_STORE_API = {
    "__init__": "(self, repo_path=None, config=None, *, spark=None)",
    "ab_test_results": "(self, test, labels, *, label_column='label', join_on=None, now=None, log_to_mlflow=False)",
    "apply": "(self, objects=None, *, prune=None)",
    "assign_ab_variants": "(self, test, entity_df, *, key_columns=None)",
    "configure_online_serving": "(self, feature_set, update_frequency='1h', cache_ttl=None)",
    "create_feature_set": "(self, name, features, metadata=None, *, description='')",
    "describe": "(self, name, category=None)",
    "add_transformation": "(self, feature, transformation)",
    "create_feature_group": "(self, name, source_table, transformations, entity, *, backfill=True)",
    "fit_transformations": "(self, training_set, *, target=None)",
    "detect_drift": "(self, view, *, baseline_version=None, baseline_window=None, version=None, window=None, current=None, features=None, method='ks', threshold=None, **options)",
    "diff_versions": "(self, view, v1, v2)",
    "export_feature_set": "(self, feature_set, format='parquet', path=None, *, version=None)",
    "feature_statistics": "(self, view, *, version=None, recompute=False)",
    "get_ab_online_features": "(self, test, entity_row)",
    "get_ab_test": "(self, name)",
    "get_data_source": "(self, name)",
    "get_entity": "(self, name)",
    "get_feature_set": "(self, name, *, as_of_version=None)",
    "get_feature_set_version": "(self, feature_set, version=None)",
    "get_feature_view": "(self, name, *, as_of_version=None)",
    "get_historical_features": "(self, entity_df, features=None, *, feature_set=None, timestamp_column='event_timestamp', as_of=None, full_feature_names=False, log_to_mlflow=None, feature_service=None, label_time_exact=False)",
    "get_online_features": "(self, features=None, entity_rows=None, *, feature_set=None, entity_keys=None, full_feature_names=False)",
    "get_online_serving": "(self, feature_set)",
    "get_training_features": "(self, feature_list, entity_df, timestamp_column='event_timestamp', start_date=None, end_date=None)",
    "get_training_set": "(self, feature_set, entity_df, *, version=None, latest=False, timestamp_column='event_timestamp', full_feature_names=False, log_to_mlflow=None, label_time_exact=False)",
    "list_entities": "(self)",
    "list_feature_set_versions": "(self, name)",
    "list_feature_sets": "(self)",
    "list_feature_views": "(self, *, as_of_version=None)",
    "list_versions": "(self, view)",
    "load_definitions": "(self)",
    "log_ab_predictions": "(self, test, predictions, *, prediction_column='prediction', timestamp_column='event_timestamp', key_columns=None)",
    "log_model": "(self, model, artifact_path, flavor, training_set, *, feature_columns=None, encoders=None, **kwargs)",
    "materialize": "(self, view=None, start=None, end=None, *, start_date=None, end_date=None, online=True)",
    "materialize_incremental": "(self, view, *, end=None, lateness=None)",
    "monitor": "(self, view, rules, *, version=None, baseline_version=None, baseline_window=None, channels=('log',), now=None)",
    "online_store": "property",
    "plan": "(self, objects=None, *, prune=None)",
    "project": "property",
    "identity": "property",
    "read_view": "(self, view, *, as_of_version=None, as_of_timestamp=None)",
    "refresh_online_cache": "(self)",
    "registry": "property",
    "replay_quarantine": "(self, view)",
    "report": "(self, view, *, baseline_version=None, version=None, path=None, expectations=None)",
    "reproduce_training_set": "(self, run_id, *, entity_df=None, verify=True)",
    "run_monitoring": "(self, plan, *, views=None)",
    "runs_using": "(self, ref, *, experiment_names=None, max_results=1000)",
    "score_ab_test": "(self, test, entity_df, *, timestamp_column='event_timestamp', score_index=None, log=True)",
    "score_batch": "(self, model_uri, entity_df, *, result_type='double', prediction_column='prediction', timestamp_column=None)",
    "spark": "property",
    "start_ab_test": "(self, test, *, start=None)",
    "sync_online": "(self, view=None, *, mode='incremental', now=None, partitions=None)",
    "sync_online_due": "(self, now=None)",
    "table_path": "(self, name)",
    "validate": "(self, view, expectations, *, version=None, window=None, fail=False)",
}


def _surface() -> dict[str, str]:
    out = {}
    for name, member in sorted(vars(FeatureStore).items()):
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(member, property):
            out[name] = "property"
        elif callable(member):
            sig = inspect.signature(member)
            params = [
                p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()
            ]
            bare = sig.replace(parameters=params, return_annotation=inspect.Signature.empty)
            out[name] = str(bare)
    return out


def test_feature_store_methods_keep_their_parameters() -> None:
    assert _surface() == FEATURE_STORE_API


def test_every_error_type_is_exported() -> None:
    types = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.FstoreError)
    }
    assert types <= set(fstore_spark.__all__)


def test_public_names_resolve() -> None:
    missing = [n for n in fstore_spark.__all__ if not hasattr(fstore_spark, n)]
    assert missing == []
