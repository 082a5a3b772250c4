"""Stripe webhook ingress: signature check, payload models, event routing, the FastAPI router."""
