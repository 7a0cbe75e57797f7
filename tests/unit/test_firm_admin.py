"""The firm API's use cases against DynamoDB (DynamoDB Local) through the real ledger: who may manage a firm,
bills and trust requests, void, pay links — and the ledger's invariant after each change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from firmpay.errors import (
    Conflict,
    CurrencyNotAccepted,
    Forbidden,
    NotFound,
    PayableClosed,
    PayLinkExpired,
)
from firmpay.ledger import Ledger
from firmpay.models.api import (
    CreateBillRequest,
    CreateClientRequest,
    CreateFirmRequest,
    CreateTrustRequestRequest,
    IssueLinkRequest,
)
from firmpay.models.ledger import Client, Firm, Payable, Payment
from firmpay.payments import firm_admin as admin
from firmpay.payments.links import resolve_link
from tests.support.factories import CA_FIRM_PRINCIPAL, US_FIRM_PRINCIPAL, Billed, card_payment, create_billed

NOW = datetime(2026, 11, 25, 15, tzinfo=UTC)
BASE_URL = "https://pay.firmpay.example"
ROLE_SESSION = "arn:aws:sts::000000000000:assumed-role/BillingSync/i-0a1b2c3d4e5f"

FIRM_BODY: dict[str, Any] = {
    "name": "Okafor & Lin LLP",
    "country": "US",
    "region": "NY",
    "currency": "USD",
    "operating_account": {"name": "Operating", "last4": "5521"},
    "trust_account": {"name": "IOLTA Trust", "last4": "8830"},
    "reply_to_email": "billing@okaforlin.example",
}


def bill_request(client_id: str, number: str = "B-1", **changes: Any) -> CreateBillRequest:
    body: dict[str, Any] = {
        "client_id": client_id,
        "number": number,
        "issued_on": "2026-11-02",
        "due_on": "2026-12-02",
        "currency": "USD",
        "line_items": [
            {"description": "Drafting", "amount_minor": 120_000},
            {"description": "Filing", "amount_minor": 30_050},
        ],
    }
    return CreateBillRequest.model_validate(body | changes)


def trust_request(client_id: str, number: str = "TR-1", amount: int = 500_000) -> CreateTrustRequestRequest:
    return CreateTrustRequestRequest.model_validate(
        {
            "client_id": client_id,
            "number": number,
            "issued_on": "2026-11-02",
            "due_on": "2026-11-30",
            "currency": "USD",
            "amount_minor": amount,
            "memo": "Retainer",
        }
    )


def payment_for(billed: Billed, amount: int) -> Payment:
    return card_payment(billed, amount)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


class RecordingMailer:
    """A ``PayLinkMailer`` that remembers what it would have sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[Firm, Client, Payable, str]] = []

    def send_payable(self, firm: Firm, client: Client, payable: Payable, pay_url: str) -> str:
        self.sent.append((firm, client, payable, pay_url))
        return "msg-1"


# -- firms and who may manage them ----------------------------------------------------------------


def test_given_a_signed_caller_when_it_creates_a_firm_then_its_principal_manages_the_firm(ledger: Ledger) -> None:
    created = admin.create_firm(ledger, CreateFirmRequest.model_validate(FIRM_BODY), US_FIRM_PRINCIPAL, NOW)

    assert created.principals == [US_FIRM_PRINCIPAL]
    assert admin.authorized_firm(ledger, created.firm_id, US_FIRM_PRINCIPAL).name == "Okafor & Lin LLP"


def test_given_an_assumed_role_when_it_creates_a_firm_then_every_session_of_the_role_manages_it(
    ledger: Ledger,
) -> None:
    created = admin.create_firm(ledger, CreateFirmRequest.model_validate(FIRM_BODY), ROLE_SESSION, NOW)

    assert created.principals == ["arn:aws:sts::000000000000:assumed-role/BillingSync"]
    later_session = "arn:aws:sts::000000000000:assumed-role/BillingSync/i-0ffffffffffff"
    assert admin.authorized_firm(ledger, created.firm_id, later_session).firm_id == created.firm_id


@pytest.mark.parametrize("firm_id", ["firm_doesNotExist0", "../FIRM", "x" * 81, ""])
def test_given_an_unknown_or_malformed_firm_id_when_asked_for_then_not_found(ledger: Ledger, firm_id: str) -> None:
    with pytest.raises(NotFound):
        admin.authorized_firm(ledger, firm_id, US_FIRM_PRINCIPAL)


def test_given_someone_elses_firm_when_a_principal_asks_for_it_then_forbidden(ledger: Ledger) -> None:
    billed = create_billed(ledger)

    with pytest.raises(Forbidden):
        admin.authorized_firm(ledger, billed.firm.firm_id, CA_FIRM_PRINCIPAL)


def test_given_a_client_of_another_firm_when_read_through_my_firm_then_not_found(ledger: Ledger) -> None:
    mine, theirs = create_billed(ledger), create_billed(ledger, country="CA")

    with pytest.raises(NotFound):
        admin.get_client(ledger, mine.firm, theirs.client.client_id)
    assert admin.get_client(ledger, mine.firm, mine.client.client_id).email == "jordan@example.com"


def test_given_a_firm_when_it_adds_a_client_then_the_client_belongs_to_it(ledger: Ledger) -> None:
    billed = create_billed(ledger)

    created = admin.create_client(
        ledger, billed.firm, CreateClientRequest(name="  Ada Park ", email="ada@example.com"), NOW
    )

    assert (created.name, created.firm_id) == ("Ada Park", billed.firm.firm_id)
    assert admin.get_client(ledger, billed.firm, created.client_id) == created


# -- bills and trust requests ---------------------------------------------------------------------


def test_given_line_items_when_a_bill_is_created_then_its_total_and_balance_are_their_sum(ledger: Ledger) -> None:
    billed = create_billed(ledger)

    bill = admin.create_bill(ledger, billed.firm, bill_request(billed.client.client_id, "B-SUM"), NOW)

    assert (bill.total.amount_minor, bill.balance.amount_minor, bill.total.currency) == (150_050, 150_050, "USD")
    assert (bill.kind, bill.status, bill.has_active_link) == ("bill", "open", False)
    assert [i.amount.amount_minor for i in bill.line_items] == [120_000, 30_050]
    ledger.check_invariant(bill.payable_id)


def test_given_a_bill_number_in_use_when_another_bill_takes_it_then_conflict(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    admin.create_bill(ledger, billed.firm, bill_request(billed.client.client_id, "B-DUP"), NOW)

    other = bill_request(billed.client.client_id, "B-DUP", memo="another matter")
    with pytest.raises(Conflict):
        admin.create_bill(ledger, billed.firm, other, NOW)


def test_given_a_bill_created_when_the_same_request_comes_again_then_the_same_bill(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    first = admin.create_bill(ledger, billed.firm, bill_request(billed.client.client_id, "B-AGAIN"), NOW)

    again = admin.create_bill(ledger, billed.firm, bill_request(billed.client.client_id, "B-AGAIN"), NOW)

    assert again.payable_id == first.payable_id
    ledger.check_invariant(first.payable_id)


def test_given_a_usd_firm_when_it_bills_in_cad_then_currency_mismatch(ledger: Ledger) -> None:
    billed = create_billed(ledger)

    with pytest.raises(CurrencyNotAccepted) as refused:
        admin.create_bill(ledger, billed.firm, bill_request(billed.client.client_id, currency="CAD"), NOW)
    assert refused.value.code == "currency_mismatch"


def test_given_another_firms_client_when_billed_then_not_found(ledger: Ledger) -> None:
    mine, theirs = create_billed(ledger), create_billed(ledger)

    with pytest.raises(NotFound):
        admin.create_bill(ledger, mine.firm, bill_request(theirs.client.client_id), NOW)


def test_given_a_trust_request_when_created_then_it_asks_for_a_deposit_of_its_amount(ledger: Ledger) -> None:
    billed = create_billed(ledger)

    created = admin.create_trust_request(ledger, billed.firm, trust_request(billed.client.client_id), NOW)

    assert (created.kind, created.total.amount_minor, created.balance.amount_minor) == (
        "trust_request",
        500_000,
        500_000,
    )
    assert created.line_items == []
    stored = ledger.check_invariant(created.payable_id)
    assert stored.destination == "trust"


def test_given_a_payable_of_another_firm_when_read_then_not_found(ledger: Ledger) -> None:
    mine, theirs = create_billed(ledger), create_billed(ledger)

    with pytest.raises(NotFound):
        admin.get_payable(ledger, mine.firm, theirs.payable.payable_id)


def test_given_payments_on_a_bill_when_read_then_they_are_listed_oldest_first(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    settled, pending = payment_for(billed, 4_000), payment_for(billed, 1_000)
    ledger.reserve(settled)
    ledger.settle(settled)
    ledger.reserve(pending.model_copy(update={"created_at": settled.created_at + timedelta(seconds=1)}))

    read = admin.get_payable(ledger, billed.firm, billed.payable.payable_id)

    assert (read.paid.amount_minor, read.pending.amount_minor, read.balance.amount_minor) == (4_000, 1_000, 5_000)
    assert read.status == "partially_paid"
    assert [(p.amount.amount_minor, p.status) for p in read.payments] == [(4_000, "succeeded"), (1_000, "pending")]
    assert read.payments[0].method == "Visa \u2022\u2022\u2022\u20224242"


# -- void -----------------------------------------------------------------------------------------


def test_given_an_open_bill_when_voided_then_it_is_void_and_voiding_again_changes_nothing(ledger: Ledger) -> None:
    billed = create_billed(ledger)

    voided = admin.void_payable(ledger, billed.firm, billed.payable.payable_id, NOW)
    again = admin.void_payable(ledger, billed.firm, billed.payable.payable_id, NOW + timedelta(hours=1))

    assert voided.status == again.status == "void"
    assert voided.voided_at == again.voided_at == NOW


def test_given_a_payment_in_flight_when_the_bill_is_voided_then_conflict_and_it_stays_open(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    ledger.reserve(payment_for(billed, 2_500))

    with pytest.raises(Conflict):
        admin.void_payable(ledger, billed.firm, billed.payable.payable_id, NOW)
    assert ledger.check_invariant(billed.payable.payable_id).voided_at is None


def test_given_a_bill_paid_in_full_when_voided_then_payable_closed(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    full = payment_for(billed, 10_000)
    ledger.reserve(full)
    ledger.settle(full)

    with pytest.raises(PayableClosed):
        admin.void_payable(ledger, billed.firm, billed.payable.payable_id, NOW)


# -- pay links ------------------------------------------------------------------------------------


def test_given_an_open_bill_when_a_link_is_issued_then_it_resolves_until_it_expires(ledger: Ledger) -> None:
    billed = create_billed(ledger)

    link = admin.issue_link(ledger, billed.firm, billed.payable.payable_id, BASE_URL, NOW, 7)

    assert link.url.startswith(f"{BASE_URL}/pay/")
    assert link.expires_at == NOW + timedelta(days=7)
    assert resolve_link(ledger, token_of(link.url), NOW).payable.payable_id == billed.payable.payable_id
    with pytest.raises(PayLinkExpired):
        resolve_link(ledger, token_of(link.url), NOW + timedelta(days=7))
    assert admin.get_payable(ledger, billed.firm, billed.payable.payable_id).has_active_link


def test_given_a_link_when_another_is_issued_then_only_the_new_one_works(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    first = admin.issue_link(ledger, billed.firm, billed.payable.payable_id, BASE_URL, NOW, 90)

    second = admin.issue_link(ledger, billed.firm, billed.payable.payable_id, BASE_URL, NOW, 90)

    with pytest.raises(PayLinkExpired):
        resolve_link(ledger, token_of(first.url), NOW)
    assert resolve_link(ledger, token_of(second.url), NOW).link.revoked_at is None


def test_given_a_void_bill_when_a_link_is_asked_for_then_payable_closed(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    admin.void_payable(ledger, billed.firm, billed.payable.payable_id, NOW)

    with pytest.raises(PayableClosed) as refused:
        admin.issue_link(ledger, billed.firm, billed.payable.payable_id, BASE_URL, NOW, 90)
    assert refused.value.code == "payable_closed"


def test_given_a_bill_paid_in_full_when_a_link_is_asked_for_then_payable_closed(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    full = payment_for(billed, 10_000)
    ledger.reserve(full)
    ledger.settle(full)

    with pytest.raises(PayableClosed):
        admin.issue_link(ledger, billed.firm, billed.payable.payable_id, BASE_URL, NOW, 90)


def test_given_a_link_when_revoked_then_it_stops_working_and_a_second_revoke_is_not_found(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    link = admin.issue_link(ledger, billed.firm, billed.payable.payable_id, BASE_URL, NOW, 90)

    revoked = admin.revoke_link(ledger, billed.firm, billed.payable.payable_id, NOW)

    assert revoked.has_active_link is False
    with pytest.raises(PayLinkExpired):
        resolve_link(ledger, token_of(link.url), NOW)
    with pytest.raises(NotFound):
        admin.revoke_link(ledger, billed.firm, billed.payable.payable_id, NOW)


def test_given_a_bill_when_sent_then_its_client_gets_a_fresh_link_that_works(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    mailer = RecordingMailer()

    sent = admin.send_payable(ledger, mailer, billed.firm, billed.payable.payable_id, BASE_URL, NOW, 90)

    [(firm, client, payable, url)] = mailer.sent
    assert (firm.firm_id, client.client_id, payable.payable_id, url) == (
        billed.firm.firm_id,
        billed.client.client_id,
        billed.payable.payable_id,
        sent.url,
    )
    assert resolve_link(ledger, token_of(url), NOW).client.email == "jordan@example.com"


def test_given_a_void_bill_when_sent_then_payable_closed_and_nothing_is_mailed(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    admin.void_payable(ledger, billed.firm, billed.payable.payable_id, NOW)
    mailer = RecordingMailer()

    with pytest.raises(PayableClosed):
        admin.send_payable(ledger, mailer, billed.firm, billed.payable.payable_id, BASE_URL, NOW, 90)
    assert mailer.sent == []


# -- request models (the edge refuses these before any use case runs) ---------------------------

BAD_BILL_CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("fractional amount", {"line_items": [{"description": "x", "amount_minor": 10.5}]}),
    ("string amount", {"line_items": [{"description": "x", "amount_minor": "100"}]}),
    ("boolean amount", {"line_items": [{"description": "x", "amount_minor": True}]}),
    ("zero amount", {"line_items": [{"description": "x", "amount_minor": 0}]}),
    ("negative amount", {"line_items": [{"description": "x", "amount_minor": -1}]}),
    ("total over the maximum", {"line_items": [{"description": "x", "amount_minor": 1_000_000_000}] * 2}),
    ("101 line items", {"line_items": [{"description": "x", "amount_minor": 1}] * 101}),
    ("unknown currency", {"currency": "EUR"}),
    ("number too long", {"number": "B" * 65}),
    ("number with spaces", {"number": "B 1"}),
    ("description too long", {"line_items": [{"description": "d" * 501, "amount_minor": 1}]}),
    ("control character", {"line_items": [{"description": "a\u0000b", "amount_minor": 1}]}),
    ("due before issue", {"due_on": "2026-11-01"}),
    ("seconds since 1970 as a date", {"issued_on": 1_790_000_000}),
    ("unknown field", {"discount": 5}),
]


@pytest.mark.parametrize("changes", [c for _, c in BAD_BILL_CHANGES], ids=[n for n, _ in BAD_BILL_CHANGES])
def test_given_a_bad_bill_body_when_validated_then_it_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        bill_request("cli_x", **changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"currency": "CAD"},
        {"language": "fr"},
        {"reply_to_email": "billing@@example"},
        {"reply_to_email": "Billing <billing@example.com>"},
        {"name": "Okafor\r\nBcc: x@example.com"},
        {"echeck_daily_limit": 0},
        {"region": "QC"},
        {"region": "ny"},
        {"region": "XX"},
    ],
)
def test_given_a_bad_firm_body_when_validated_then_it_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CreateFirmRequest.model_validate(FIRM_BODY | changes)


def test_given_a_french_canadian_firm_when_validated_then_it_is_accepted() -> None:
    body = FIRM_BODY | {"country": "CA", "region": "QC", "currency": "CAD", "language": "fr"}

    assert CreateFirmRequest.model_validate(body).language == "fr"


def test_given_a_new_firm_without_its_state_or_province_then_it_is_refused() -> None:
    body = {k: v for k, v in FIRM_BODY.items() if k != "region"}

    with pytest.raises(ValidationError, match="region"):
        CreateFirmRequest.model_validate(body)


@pytest.mark.parametrize("days", [0, 366, "7", 7.0])
def test_given_a_link_lifetime_out_of_range_or_not_an_integer_then_it_is_refused(days: Any) -> None:
    with pytest.raises(ValidationError):
        IssueLinkRequest.model_validate({"expires_in_days": days})
