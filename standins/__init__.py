"""Local stand-ins for Stripe and SendGrid, used by tests, benchmarks and `make dev`.

They follow the providers' documented behaviour (error shapes, idempotency, signatures)
so that the real SDKs can talk to them over HTTP.
"""
