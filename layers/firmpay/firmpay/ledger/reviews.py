"""Reviews (the amount and method a client confirmed) and what a submit reads before it reserves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase
from firmpay.ledger.errors import dynamodb_errors
from firmpay.models.ledger import Firm, Payable, Review


@dataclass(frozen=True)
class CheckoutState:
    """What a submit needs before it reserves: the review, the payable, the firm, some counters."""

    review: Review | None
    payable: Payable | None
    firm: Firm | None
    counts: dict[tuple[str, str], int]


class ReviewsLedger(LedgerBase):
    """Reviews and the checkout state read with them."""

    def put_review(self, review: Review) -> None:
        with dynamodb_errors():
            self._put_review(review)

    def _put_review(self, review: Review) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=self._put(
                keys.review(review.payable_id, review.review_id),
                "review",
                review,
                expires_at=int(review.expires_at.timestamp()),
            ),
        )

    def get_review_and_payable(self, payable_id: str, review_id: str) -> tuple[Review | None, Payable | None]:
        """A review and its payable in one BatchGetItem."""
        wanted = [keys.review(payable_id, review_id), keys.payable(payable_id)]
        found = {item.pop("entity"): item for item in self._batch_get(wanted).values()}
        review_item = found.get("review")
        return (
            Review.model_validate(review_item) if review_item else None,
            Payable.model_validate(found["payable"]) if "payable" in found else None,
        )

    def get_checkout_state(
        self, payable_id: str, review_id: str, firm_id: str, counters: list[tuple[str, str]]
    ) -> CheckoutState:
        """A review, its payable, the firm and some ``RATE#`` counters, in one BatchGetItem.

        What a card submit reads before it reserves: the whole submit then costs four requests
        (this one, the link, the reserve transaction and the settle transaction).
        """
        wanted = [keys.review(payable_id, review_id), keys.payable(payable_id), keys.firm(firm_id)]
        wanted += [keys.counter(scope, window) for scope, window in counters]
        found = self._batch_get(wanted)

        def load(key: keys.Key) -> dict[str, Any] | None:
            item = found.get((key["pk"]["S"], key["sk"]["S"]))
            return {k: v for k, v in item.items() if k != "entity"} if item else None

        review, payable, firm = (load(k) for k in wanted[:3])
        return CheckoutState(
            review=Review.model_validate(review) if review else None,
            payable=Payable.model_validate(payable) if payable else None,
            firm=Firm.model_validate(firm) if firm else None,
            counts={c: int((load(k) or {}).get("hits", 0)) for c, k in zip(counters, wanted[3:], strict=True)},
        )
