"""``python -m fstore_spark.cli``: the ``fstore`` command."""

import sys

from fstore_spark.cli import main

sys.exit(main())
