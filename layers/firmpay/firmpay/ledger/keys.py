"""Key layout of the single ledger table (``pk``/``sk``, sparse GSI ``gsi1``).

| item      | pk                    | sk                          | gsi1pk / gsi1sk            |
|-----------|-----------------------|-----------------------------|----------------------------|
| firm      | FIRM#<firm>           | FIRM                        |                            |
| client    | FIRM#<firm>           | CLIENT#<client>             |                            |
| number    | FIRM#<firm>           | NUMBER#<kind>#<number>      | (uniqueness guard)         |
| method    | FIRM#<firm>           | METHOD#<client>#<method>    |                            |
| payable   | PAYABLE#<payable>     | PAYABLE                     | FIRM#<firm> / PAYABLE#<ts> |
| payment   | PAYABLE#<payable>     | PAYMENT#<payment>           | PENDING / <ts> while reserved |
| review    | PAYABLE#<payable>     | REVIEW#<review>             | (TTL expires_at)           |
| bank conn | PAYABLE#<payable>     | BANK#<connection>           | (TTL expires_at)           |
| plan      | PAYABLE#<payable>     | PLAN#<plan>                 | PLANDUE / <next due>       |
| plan slot | PAYABLE#<payable>     | PLANSLOT                    | (the last plan created)    |
| refund    | PAYABLE#<payable>     | REFUND#<refund>             |                            |
| link      | LINK#<sha256(token)>  | LINK                        |                            |
| removal   | REMOVE#<sha256(token)> | REMOVE                     | (TTL expires_at)           |
| email     | EMAIL#<payment>       | <kind>                      | EMAILSENDING / <ts> while `sending` |
| counter   | RATE#<scope>          | <window>                    | (TTL expires_at)           |
| idem      | IDEM#<firm>#<key>     | IDEM                        |                            |
| cursor    | CURSOR#<walk>         | CURSOR                      | (where a scheduled walk stopped) |
"""

from __future__ import annotations

Key = dict[str, dict[str, str]]


def key(pk: str, sk: str) -> Key:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def firm(firm_id: str) -> Key:
    return key(f"FIRM#{firm_id}", "FIRM")


def client(firm_id: str, client_id: str) -> Key:
    return key(f"FIRM#{firm_id}", f"CLIENT#{client_id}")


def payable_number(firm_id: str, kind: str, number: str) -> Key:
    return key(f"FIRM#{firm_id}", f"NUMBER#{kind}#{number}")


def method(firm_id: str, client_id: str, method_id: str) -> Key:
    return key(f"FIRM#{firm_id}", f"METHOD#{client_id}#{method_id}")


def payable(payable_id: str) -> Key:
    return key(f"PAYABLE#{payable_id}", "PAYABLE")


def payment(payable_id: str, payment_id: str) -> Key:
    return key(f"PAYABLE#{payable_id}", f"PAYMENT#{payment_id}")


def review(payable_id: str, review_id: str) -> Key:
    return key(f"PAYABLE#{payable_id}", f"REVIEW#{review_id}")


def bank_connection(payable_id: str, connection_id: str) -> Key:
    return key(f"PAYABLE#{payable_id}", f"BANK#{connection_id}")


def plan(payable_id: str, plan_id: str) -> Key:
    return key(f"PAYABLE#{payable_id}", f"PLAN#{plan_id}")


def plan_slot(payable_id: str) -> Key:
    """Names the payable's latest plan: creating a plan takes it conditionally (one running plan)."""
    return key(f"PAYABLE#{payable_id}", "PLANSLOT")


def refund(payable_id: str, refund_id: str) -> Key:
    return key(f"PAYABLE#{payable_id}", f"REFUND#{refund_id}")


def link(token_hash: str) -> Key:
    return key(f"LINK#{token_hash}", "LINK")


def method_removal(token_hash: str) -> Key:
    """A client's "remove this stored method" link from a confirmation email."""
    return key(f"REMOVE#{token_hash}", "REMOVE")


def email_marker(payment_id: str, kind: str) -> Key:
    return key(f"EMAIL#{payment_id}", kind)


def counter(scope: str, window: str) -> Key:
    return key(f"RATE#{scope}", window)


def idempotency(firm_id: str, idempotency_key: str) -> Key:
    return key(f"IDEM#{firm_id}#{idempotency_key}", "IDEM")


def cursor(walk: str) -> Key:
    """Where a scheduled walk of an index (the sweep, the plan run) stopped for lack of time."""
    return key(f"CURSOR#{walk}", "CURSOR")


PENDING_INDEX_PK = "PENDING"
PLAN_DUE_INDEX_PK = "PLANDUE"
# Sent-once markers handed to SES and not (yet) marked sent: the sweep counts those older than
# their lease (the email may or may not have gone; an operator decides).
EMAIL_SENDING_INDEX_PK = "EMAILSENDING"
