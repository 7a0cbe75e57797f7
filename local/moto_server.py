"""moto's server with DynamoDB's write atomicity and idempotent transactions:
``python -m local.moto_server -H 127.0.0.1 -p PORT``.

moto serves requests on threads and its DynamoDB backend does not lock: two concurrent
conditional writes (``balance >= :amount``) on one item can both pass their condition, which
real DynamoDB never allows. The ledger's correctness rests on that guarantee, so the local stack
(and the tests' in-process moto) serialize DynamoDB's mutating operations with one lock.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_LOCK = threading.RLock()


def make_dynamodb_writes_atomic() -> None:
    """Wrap moto's DynamoDB write operations in one process-wide lock (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_firmpay_atomic", False):
            continue

        @functools.wraps(original)
        def atomic(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return __original(self, *args, **kwargs)

        atomic._firmpay_atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


def keep_streams_through_rollbacks() -> None:
    """A canceled TransactWriteItems must not orphan the table's stream, nor copy it (idempotent).

    moto backs a transaction up by deep-copying every table it touches and rolls a canceled one
    back by putting the copies in place. The copy included the stream shard with every record
    ever written: each transaction cost time and memory in proportion to the table's whole
    history (a long test session grew moto past 10 GB), and a rollback left stream readers on
    the old shard object, so they never saw another record. The shard is now shared by the copy
    (never copied), and a rollback drops the canceled writes' records from it.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "_firmpay_streams", False):
        return
    StreamShard.__deepcopy__ = lambda self, memo: self  # type: ignore[attr-defined]

    @functools.wraps(original)
    def transact_write_items(self: Any, *args: Any, **kwargs: Any) -> Any:
        shards = {
            name: (table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if getattr(table, "stream_shard", None) is not None
        }
        try:
            return original(self, *args, **kwargs)
        except Exception:
            for name, (shard, length) in shards.items():
                table = self.tables.get(name)
                if table is not None:
                    del shard.items[length:]
                    shard.table = table
                    table.stream_shard = shard
            raise

    transact_write_items._firmpay_streams = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def honour_client_request_tokens() -> None:
    """TransactWriteItems with a ``ClientRequestToken`` already used successfully in the last 10
    minutes succeeds again without writing, as DynamoDB does (idempotent; moto ignores the token).

    botocore fills the token in itself and keeps it across its retries, so a transaction whose
    answer was lost (a read timeout on a loaded machine) is not reported as a failed condition
    when the SDK retries it.
    """
    import hashlib
    import json
    import time

    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.transact_write_items
    if getattr(original, "_firmpay_tokens", False):
        return
    done: dict[str, tuple[str, float, Any]] = {}

    @functools.wraps(original)
    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        fingerprint = hashlib.sha256(json.dumps(self.body["TransactItems"], sort_keys=True).encode()).hexdigest()
        with _LOCK:
            now = time.monotonic()
            for old in [t for t, (_, at, _) in done.items() if now - at > 600]:
                del done[old]
            if token in done and done[token][0] == fingerprint:
                return done[token][2]
            result = original(self)
            done[token] = (fingerprint, now, result)
            return result

    transact_write_items._firmpay_tokens = True  # type: ignore[attr-defined]
    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign]


def main() -> None:
    keep_streams_through_rollbacks()
    make_dynamodb_writes_atomic()
    honour_client_request_tokens()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
