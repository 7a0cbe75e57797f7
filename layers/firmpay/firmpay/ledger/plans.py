"""Autopay: firms' idempotency keys and payment plans (one plan slot per payable, the ``PLANDUE`` index)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase, _iso, _load, _values
from firmpay.ledger.codec import to_attr
from firmpay.ledger.errors import dynamodb_errors
from firmpay.models.ledger import IdempotencyRecord, PaymentPlan, PlanStatus


def _plan_due_sort_key(plan: PaymentPlan) -> str:
    return f"{_iso(plan.next_due_at)}#{plan.payable_id}#{plan.plan_id}"


class PlansLedger(LedgerBase):
    """Idempotency records and payment plans."""

    def get_idempotency(self, firm_id: str, idempotency_key: str) -> IdempotencyRecord | None:
        item = self._get(keys.idempotency(firm_id, idempotency_key))
        return IdempotencyRecord.model_validate(item) if item else None

    def _plan_item(self, plan: PaymentPlan) -> dict[str, Any]:
        extra = (
            {"gsi1pk": keys.PLAN_DUE_INDEX_PK, "gsi1sk": _plan_due_sort_key(plan)}
            if plan.status is PlanStatus.ACTIVE
            else {}
        )
        return self._put(keys.plan(plan.payable_id, plan.plan_id), "plan", plan, **extra)

    def plan_slot(self, payable_id: str) -> str | None:
        """The id of the payable's latest plan, as its plan slot names it (None: no plan yet)."""
        item = self._get(keys.plan_slot(payable_id))
        return str(item["plan_id"]) if item else None

    def create_plan(self, plan: PaymentPlan, slot_was: str | None) -> bool:
        """Write the plan and take the payable's plan slot, in one conditional transaction.

        ``slot_was`` is the plan the slot named when the caller checked that no plan is running
        (None: no slot yet). Two creations racing on one payable both read the same slot; only one
        moves it, the other gets False (a 409 for the firm).
        """
        slot = {**keys.plan_slot(plan.payable_id), "entity": to_attr("plan_slot"), "plan_id": to_attr(plan.plan_id)}
        taken: dict[str, Any] = {"TableName": self._table, "Item": slot}
        if slot_was is None:
            taken["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            taken |= {"ConditionExpression": "plan_id = :was", "ExpressionAttributeValues": _values(was=slot_was)}
        plan_put = {
            "TableName": self._table,
            "Item": self._plan_item(plan),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        return not self._transact([{"Put": taken}, {"Put": plan_put}])

    def get_plan(self, payable_id: str, plan_id: str) -> PaymentPlan | None:
        item = self._get(keys.plan(payable_id, plan_id))
        return PaymentPlan.model_validate(item) if item else None

    def list_plans(self, payable_id: str) -> list[PaymentPlan]:
        plans = [_load(PaymentPlan, i) for i in self._query_partition(f"PAYABLE#{payable_id}", "PLAN#")]
        return sorted(plans, key=lambda p: p.created_at)

    def update_plan(self, plan: PaymentPlan, **changes: Any) -> PaymentPlan | None:
        """Replace the plan with ``changes`` applied if nobody changed it since it was read.

        Returns the new plan, or None when its version moved on (a concurrent run, pause or
        cancel): the caller reads it again. An active plan stays on the ``PLANDUE`` index.
        """
        from botocore.exceptions import ClientError

        updated = plan.model_copy(update={**changes, "version": plan.version + 1})
        try:
            with dynamodb_errors():
                self._db.put_item(
                    TableName=self._table,
                    Item=self._plan_item(updated),
                    ConditionExpression="version = :version",
                    ExpressionAttributeValues=_values(version=plan.version),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return updated

    def due_plans(self, now: datetime, after: str | None = None) -> Iterator[tuple[str, PaymentPlan]]:
        """Active plans whose next installment is due at ``now`` or earlier, longest due first, each
        with its position on the index (resume with ``after``), read again by key, page after page."""
        for position, item in self._walk_index(keys.PLAN_DUE_INDEX_PK, _iso(now) + "~", after, keys.plan):
            plan = _load(PaymentPlan, item)
            if plan.status is PlanStatus.ACTIVE and plan.next_due_at <= now:
                yield position, plan
