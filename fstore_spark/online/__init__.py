"""Online features: Redis codec, executor writer, read client, sync job, serving catalog."""

