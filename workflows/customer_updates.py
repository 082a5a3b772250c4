"""The payment page's Updates as the Temporal UI lists them, each with its description.

DunningWorkflow inherits these declarations (Temporal reads handlers from the class); what
each one does is `CustomerActions`', which the workflow holds as `self.customer`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models import customer_actions as names
    from models.customer_actions import (
        CustomerActionResult,
        CustomerCancelInput,
        CustomerContactInput,
        CustomerMoreTimeInput,
        CustomerNewCardInput,
        CustomerPauseInput,
        CustomerPayNowInput,
    )
    from workflows.customer import CustomerActions


class CustomerUpdates:
    customer: CustomerActions

    @workflow.update(
        name=names.CUSTOMER_NEW_CARD,
        description="Payment page: charge the card the customer just added {payment_method_id}.",
    )
    def customer_new_card(self, input: CustomerNewCardInput) -> CustomerActionResult:
        return self.customer.new_card(input)

    @customer_new_card.validator
    def _validate_customer_new_card(self, input: CustomerNewCardInput) -> None:
        self.customer.check_new_card(input)

    @workflow.update(
        name=names.CUSTOMER_PAY_NOW, description="Payment page: charge the card on file now."
    )
    def customer_pay_now(self, input: CustomerPayNowInput) -> CustomerActionResult:
        return self.customer.pay_now(input)

    @customer_pay_now.validator
    def _validate_customer_pay_now(self, input: CustomerPayNowInput) -> None:
        self.customer.check_pay_now(input)

    @workflow.update(
        name=names.CUSTOMER_MORE_TIME,
        description="Payment page: grace until {until}, once, within the policy's limit.",
    )
    def customer_more_time(self, input: CustomerMoreTimeInput) -> CustomerActionResult:
        return self.customer.more_time(input)

    @customer_more_time.validator
    def _validate_customer_more_time(self, input: CustomerMoreTimeInput) -> None:
        self.customer.check_more_time(input)

    @workflow.update(
        name=names.CUSTOMER_PAUSE,
        description="Payment page: pause the subscription (pause_collection); ends the case.",
    )
    async def customer_pause_subscription(self, input: CustomerPauseInput) -> CustomerActionResult:
        return await self.customer.pause_subscription(input)

    @customer_pause_subscription.validator
    def _validate_customer_pause(self, input: CustomerPauseInput) -> None:
        self.customer.check_pause(input)

    @workflow.update(
        name=names.CUSTOMER_CANCEL,
        description="Payment page: the policy's final action now (confirmed by the customer).",
    )
    async def customer_cancel(self, input: CustomerCancelInput) -> CustomerActionResult:
        return await self.customer.cancel(input)

    @customer_cancel.validator
    def _validate_customer_cancel(self, input: CustomerCancelInput) -> None:
        self.customer.check_cancel(input)

    @workflow.update(
        name=names.CUSTOMER_CONTACT,
        description="Payment page: a message for support {message}; holds automated messages.",
    )
    def customer_contact(self, input: CustomerContactInput) -> CustomerActionResult:
        return self.customer.contact(input)

    @customer_contact.validator
    def _validate_customer_contact(self, input: CustomerContactInput) -> None:
        self.customer.check_contact(input)
