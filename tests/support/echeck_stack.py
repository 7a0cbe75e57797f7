"""Helpers for the eCheck integration tests: a pay link on the local stack, Plaid Link driven over
HTTP exactly as the stand-in Link page drives it, the eCheck routes, and the Stripe emulator's test
controls that settle or return an ACH debit (which then sends Stripe's signed webhooks)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from firmpay.payments.links import issue_pay_link
from local.stack import STRIPE_SECRET, LocalStack
from tests.support.card_stack import StackLink
from tests.support.factories import create_billed

PLATYPUS = "ins_109508"  # First Platypus Bank: Plaid Checking ••••0000, Plaid Saving ••••1111
HOUNDSTOOTH = "ins_109512"  # always asks for reCAPTCHA
HOLDER = "Jordan Client"


@dataclass
class LinkedBank:
    public_token: str
    account_id: str
    institution: str
    accounts: list[dict[str, Any]]


@dataclass
class EcheckLink(StackLink):
    """A seeded payable of a US firm, its pay link, and the eCheck steps against the running stack."""

    def echeck_url(self, route: str) -> str:
        return f"{self.stack.urls['gateway']}/api/pay/{self.token}/echeck/{route}"

    def post_echeck(self, route: str, body: Any, **headers: str) -> requests.Response:
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return requests.post(
            self.echeck_url(route),
            data=data,
            headers={"Content-Type": "application/json", "User-Agent": "echeck-tests/1.0", **headers},
            timeout=30,
        )

    def link_token(self) -> str:
        answer = self.post_echeck("link-token", {"holder_name": HOLDER})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["link_token"])

    def link_bank(self, institution: str = PLATYPUS, mask: str = "0000") -> LinkedBank:
        """Sign in to the bank in Link (as the client does in the browser) and choose the account."""
        return drive_link(self.stack.urls["plaid"], self.link_token(), institution, mask)

    def exchange(self, bank: LinkedBank, account_id: str | None = None) -> requests.Response:
        body = {"public_token": bank.public_token, "account_id": account_id or bank.account_id, "holder_name": HOLDER}
        return self.post_echeck("exchange", body)

    def connect(self, institution: str = PLATYPUS, mask: str = "0000") -> dict[str, Any]:
        answer = self.exchange(self.link_bank(institution, mask))
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def review_echeck(self, connection_id: str, amount: int | None = None) -> requests.Response:
        amount_minor = self.billed.payable.balance_minor if amount is None else amount
        return self.post_echeck("review", {"amount_minor": amount_minor, "connection_id": connection_id})

    def submit_echeck(self, review_id: str, authorize: bool = True, store: bool = False) -> requests.Response:
        return self.post_echeck("submit", {"review_id": review_id, "authorize_debit": authorize, "store_method": store})

    def pay_echeck(self, amount: int | None = None, store: bool = False, mask: str = "0000") -> dict[str, Any]:
        connection = self.connect(mask=mask)
        reviewed = self.review_echeck(connection["connection_id"], amount)
        assert reviewed.status_code == 200, reviewed.text
        submitted = self.submit_echeck(reviewed.json()["review_id"], store=store)
        assert submitted.status_code == 200, submitted.text
        return submitted.json()  # type: ignore[no-any-return]

    def intent_of(self, payment_id: str) -> str:
        payment = self.ledger.get_payment(self.payable_id, payment_id)
        assert payment is not None
        assert payment.processor_intent_id is not None
        return payment.processor_intent_id


def open_echeck_link(stack: LocalStack, **billed: Any) -> EcheckLink:
    made = create_billed(stack.ledger, **billed)
    url, _ = issue_pay_link(stack.ledger, made.payable, stack.urls["gateway"], datetime.now(UTC))
    return EcheckLink(stack, made, url.rsplit("/", 1)[1])


def _link_call(plaid: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{plaid}/link/api/{path}", json=body, timeout=10)
    assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text}"
    return answer.json()  # type: ignore[no-any-return]


def drive_link(plaid: str, link_token: str, institution: str, mask: str) -> LinkedBank:
    session = _link_call(plaid, "session", {"link_token": link_token})["link_session_id"]
    chosen = _link_call(plaid, "institutions/select", {"link_session_id": session, "institution_id": institution})
    if chosen["institution"]["requires_recaptcha"]:
        _link_call(plaid, "recaptcha", {"link_session_id": session, "checked": True})
    signed_in = _link_call(
        plaid, "credentials", {"link_session_id": session, "username": "user_good", "password": "pass_good"}
    )
    accounts = signed_in["accounts"]
    account = next(a for a in accounts if a["mask"] == mask)
    done = _link_call(plaid, "accounts/select", {"link_session_id": session, "account_id": account["id"]})
    return LinkedBank(done["public_token"], account["id"], institution, accounts)


def stripe_test_control(stack: LocalStack, intent_id: str, action: str, code: str | None = None) -> requests.Response:
    """The Stripe emulator settles (``settle``) or returns (``return`` with an ACH code) a processing debit."""
    body = {"code": code} if code else {}
    return requests.post(
        f"{stack.urls['stripe']}/_test/payment_intents/{intent_id}/{action}",
        json=body,
        headers={"Authorization": f"Bearer {STRIPE_SECRET}"},
        timeout=10,
    )
