"""Pay links: one valid link per payable, revocation, and what the pay page reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firmpay.errors import Conflict, NotFound
from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase, _iso, _values
from firmpay.models.ledger import Client, Firm, Payable, PayLink


@dataclass(frozen=True)
class LinkContext:
    """Everything the pay page needs, read in two requests."""

    link: PayLink
    payable: Payable
    firm: Firm
    client: Client


class LinksLedger(LedgerBase):
    """Pay links and the context a link opens."""

    def issue_link(self, link: PayLink, payable: Payable) -> None:
        """Store ``link`` as the payable's only valid link, revoking the one it replaces."""
        now = _iso(link.created_at)
        update: dict[str, Any] = {
            "Update": {
                "TableName": self._table,
                "Key": keys.payable(payable.payable_id),
                "UpdateExpression": "SET current_link_hash = :new",
                "ConditionExpression": "attribute_exists(pk) AND "
                + (
                    "current_link_hash = :old"
                    if payable.current_link_hash
                    else "(attribute_not_exists(current_link_hash) OR current_link_hash = :null)"
                ),
                "ExpressionAttributeValues": _values(new=link.token_hash)
                | (_values(old=payable.current_link_hash) if payable.current_link_hash else _values(null=None)),
            }
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._put(keys.link(link.token_hash), "link", link),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            update,
        ]
        if payable.current_link_hash:
            items.append(self._revoke_item(payable.current_link_hash, now))
        if self._transact(items):
            raise Conflict("The payable changed while the link was being issued; try again.")

    def _revoke_item(self, token_hash: str, at: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.link(token_hash),
                "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :at)",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": _values(at=at),
            }
        }

    def revoke_current_link(self, payable: Payable, at: datetime) -> bool:
        """Revoke the payable's current link; False when it had none."""
        if not payable.current_link_hash:
            return False
        items = [
            self._revoke_item(payable.current_link_hash, _iso(at)),
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.payable(payable.payable_id),
                    "UpdateExpression": "REMOVE current_link_hash",
                    "ConditionExpression": "current_link_hash = :old",
                    "ExpressionAttributeValues": _values(old=payable.current_link_hash),
                }
            },
        ]
        if self._transact(items):
            raise Conflict("The link changed meanwhile; reload and try again.")
        return True

    def get_link(self, token_hash: str) -> PayLink | None:
        item = self._get(keys.link(token_hash), consistent=False)
        return PayLink.model_validate(item) if item else None

    def load_link_context(self, link: PayLink) -> LinkContext:
        """Payable, firm and client of a link in one BatchGetItem (strongly consistent)."""
        wanted = [
            keys.payable(link.payable_id),
            keys.firm(link.firm_id),
            keys.client(link.firm_id, link.client_id),
        ]
        found = {item.pop("entity"): item for item in self._batch_get(wanted).values()}
        if {"payable", "firm", "client"} - found.keys():
            raise NotFound("The link points at a payable that no longer exists.")
        return LinkContext(
            link=link,
            payable=Payable.model_validate(found["payable"]),
            firm=Firm.model_validate(found["firm"]),
            client=Client.model_validate(found["client"]),
        )
