"""anxin gateway: the composition root (config, runtime, MQTT ingest, store, transports, CLI)."""
