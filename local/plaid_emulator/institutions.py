"""The emulator's banks: Plaid's sandbox institutions, with their accounts and routing numbers.

Every account is a depository account (what Auth and a Stripe ACH debit need). Account numbers end
in the account's mask, so the last four digits Stripe shows for the bank account match what Link
showed. First Gingham Credit Union carries Stripe's ACH test account numbers (routing 110000000),
so a Stripe emulator that follows Stripe's test numbers can fail or return those debits.
"""

from __future__ import annotations

from dataclasses import dataclass

# The name and address Plaid's sandbox gives every account holder.
ACCOUNT_HOLDER_NAME = "Alberta Bobbeth Charleson"

SANDBOX_USERNAME = "user_good"
SANDBOX_PASSWORD = "pass_good"

INSTITUTION_PRODUCTS = ("assets", "auth", "balance", "identity", "transactions")


@dataclass(frozen=True)
class AccountSpec:
    """One account every Item at an institution has."""

    name: str
    official_name: str
    subtype: str  # "checking" | "savings"
    mask: str
    account_number: str
    available: float
    current: float


@dataclass(frozen=True)
class Institution:
    institution_id: str
    name: str
    routing_number: str
    url: str
    primary_color: str
    accounts: tuple[AccountSpec, ...]
    requires_recaptcha: bool = False
    # Sign-in fails with ITEM_LOCKED after this many wrong passwords (None: never locks).
    lock_after: int | None = None


PLAID_CHECKING = AccountSpec(
    name="Plaid Checking",
    official_name="Plaid Gold Standard 0% Interest Checking",
    subtype="checking",
    mask="0000",
    account_number="1111222233330000",
    available=100.0,
    current=110.0,
)
PLAID_SAVING = AccountSpec(
    name="Plaid Saving",
    official_name="Plaid Silver Standard 0.1% Interest Saving",
    subtype="savings",
    mask="1111",
    account_number="1111222233331111",
    available=200.0,
    current=210.0,
)


def _stripe_test_account(name: str, number: str) -> AccountSpec:
    return AccountSpec(
        name=name,
        official_name=f"Plaid {name}",
        subtype="checking",
        mask=number[-4:],
        account_number=number,
        available=500.0,
        current=500.0,
    )


INSTITUTIONS: tuple[Institution, ...] = (
    Institution(
        institution_id="ins_109508",
        name="First Platypus Bank",
        routing_number="011401533",
        url="https://www.plaid.com",
        primary_color="#1f1f1f",
        accounts=(PLAID_CHECKING, PLAID_SAVING),
    ),
    Institution(
        institution_id="ins_109509",
        name="First Gingham Credit Union",
        routing_number="110000000",
        url="https://www.plaid.com",
        primary_color="#2e7d32",
        accounts=(
            _stripe_test_account("Success Checking", "000123456789"),
            _stripe_test_account("Insufficient Funds Checking", "000222222227"),
            _stripe_test_account("Closed Account Checking", "000111111113"),
            _stripe_test_account("No Account Checking", "000111111116"),
            _stripe_test_account("Debit Not Authorized Checking", "000333333335"),
        ),
    ),
    Institution(
        institution_id="ins_109510",
        name="Tattersall Federal Credit Union",
        routing_number="231074449",
        url="https://www.plaid.com",
        primary_color="#6a1b9a",
        accounts=(PLAID_CHECKING, PLAID_SAVING),
        lock_after=3,
    ),
    Institution(
        institution_id="ins_109511",
        name="Tartan Bank",
        routing_number="211000705",
        url="https://www.plaid.com",
        primary_color="#b71c1c",
        accounts=(PLAID_CHECKING, PLAID_SAVING),
    ),
    Institution(
        institution_id="ins_109512",
        name="Houndstooth Bank",
        routing_number="061000159",
        url="https://www.plaid.com",
        primary_color="#0d47a1",
        accounts=(PLAID_CHECKING, PLAID_SAVING),
        requires_recaptcha=True,
    ),
)

BY_ID = {i.institution_id: i for i in INSTITUTIONS}


def search(query: str) -> list[Institution]:
    """Institutions whose name contains every word of ``query`` (case-insensitive); all for ``""``."""
    words = query.lower().split()
    return [i for i in INSTITUTIONS if all(w in i.name.lower() for w in words)]


def aba_checksum_ok(routing_number: str) -> bool:
    """Whether ``routing_number`` is nine digits with a valid ABA check digit."""
    if len(routing_number) != 9 or not routing_number.isdigit():
        return False
    d = [int(c) for c in routing_number]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0
