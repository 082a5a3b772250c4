"""The customer's payment page, `/pay/{token}`: what is due and what they can do about it.

Links come from `models.pay_links` (signed, naming only the invoice). Actions are the case's
`customer_*` Updates (the workflow's validators decide); feedback after the outcome goes
straight to the ledger. Mounted by `starter.app.create_app`.
"""

from starter.pay.routes import pay_router

__all__ = ["pay_router"]
