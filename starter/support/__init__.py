"""Support tooling: the service layer, CLI commands, HTTP API and console."""
