"""Starting and signalling dunning cases from code (and later the webhook API and CLI)."""
