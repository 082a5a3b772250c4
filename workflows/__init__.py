"""Temporal workflows: one workflow class per module."""
