"""Data shapes: settings, workflow and activity inputs/results, and the ledger's ORM tables."""
