"""HTTP feature server: ``fstore serve`` -- online reads behind FastAPI, with API keys.

* ``app`` -- the application: endpoints, error mapping, definitions and keys reloaded live;
* ``auth`` -- API keys (SHA-256 digests), their grants, reloading them without a restart;
* ``limits`` -- request body limits enforced before parsing.
"""

from fstore_spark.server.app import GetOnlineFeaturesRequest, create_app, serve

__all__ = ["GetOnlineFeaturesRequest", "create_app", "serve"]
