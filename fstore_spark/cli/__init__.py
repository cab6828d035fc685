"""The ``fstore`` command line (click).

Commands::

    fstore init [FOLDER]                  # a feature repo, config and sample data (like feast init)
    fstore plan | apply [--no-prune]      # compare / register the repo's definitions
    fstore list [--category feature_view] | describe NAME | history NAME
    fstore materialize VIEW --start 2024-01-01 --end 2024-03-01 | --incremental [--end ...]
    fstore replay-quarantine VIEW         # take the late events a lateness cap set aside
    fstore versions VIEW | diff VIEW V1 V2 | stats VIEW [--version N]
    fstore sync [VIEW ...] [--full] | --due [--loop SECONDS]
    fstore serve [--host 127.0.0.1] [--port 6566] [--refresh-seconds 60]
    fstore monitor --rules conf/monitoring.yaml [--view VIEW]   # exit 3 on alerts
    fstore scheduler [--tick 10] [--lease-seconds 60] [--for SECONDS]
    fstore schedule list | run JOB | export --format databricks|crontab [--output FILE]
    fstore policy VIEW [--owner NAME ...] [--reader NAME ...]
    fstore keys new | hash [KEY]

``--config``, ``--repo``, ``--json`` and ``--debug`` go before or after the command;
``fstore --version`` prints the version. Exit codes: 0 success (``monitor``: 3 when an alert
fired), 1 a feature store error (one line on stderr, the traceback only with ``--debug``), 2 bad
usage (one line naming the argument, before Spark starts).

* ``app`` -- the group, common options, error handling, input types;
* ``commands`` -- definitions, feature tables, quality, audit;
* ``operations`` -- sync, serve, the scheduler, keys;
* ``scaffold`` -- ``fstore init``.
"""

from fstore_spark.cli.app import main

__all__ = ["main"]
