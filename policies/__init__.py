"""Dunning policies: the YAML schema, the pure decision engine and the file loader.

`policies.schema` and `policies.engine` do no I/O and import nothing from Temporal, so the
workflow can interpret them deterministically and tests can explore them with hypothesis.
"""
