"""Typed custom search attributes of dunning cases (registered by the worker on startup)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

DUNNING_STATUS = SearchAttributeKey.for_keyword("DunningStatus")
DUNNING_STEP = SearchAttributeKey.for_int("DunningStep")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
INVOICE_ID = SearchAttributeKey.for_keyword("InvoiceId")
SUBSCRIPTION_ID = SearchAttributeKey.for_keyword("SubscriptionId")
AMOUNT_DUE = SearchAttributeKey.for_int("AmountDue")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
DECLINE_CODE = SearchAttributeKey.for_keyword("DeclineCode")
NEXT_ACTION_AT = SearchAttributeKey.for_datetime("NextActionAt")
# Set on cases that opened under segment rules (DUNNING_RULES): the rule and the policy.
DUNNING_SEGMENT = SearchAttributeKey.for_keyword("DunningSegment")
DUNNING_POLICY = SearchAttributeKey.for_keyword("DunningPolicy")
# The experiment arm of a case whose rule names an experiment (policies/experiments.py).
DUNNING_VARIANT = SearchAttributeKey.for_keyword("DunningVariant")

ALL_KEYS = (
    DUNNING_STATUS,
    DUNNING_STEP,
    CUSTOMER_ID,
    INVOICE_ID,
    SUBSCRIPTION_ID,
    AMOUNT_DUE,
    CURRENCY,
    DECLINE_CODE,
    NEXT_ACTION_AT,
    DUNNING_SEGMENT,
    DUNNING_POLICY,
    DUNNING_VARIANT,
)


def workflow_id_for(invoice_id: str) -> str:
    return f"dunning-{invoice_id}"
