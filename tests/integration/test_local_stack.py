"""The embedded local stack itself: gateway, AWS proxy, stream poller, outbox, reCAPTCHA, processes.

Uses the session's stack (``tests/conftest.py``); the start/stop and crash tests run their own
stack in a child process, since one process holds one stack's settings in ``os.environ``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import botocore.config
import pytest
import requests
from botocore.exceptions import ClientError

from local.gateway import IamAuth
from local.stack import RUN, LocalStack, alive, clean_stale_runs, listeners

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def no_retry_client(stack: LocalStack, service: str, endpoint: str | None = None) -> Any:
    import boto3

    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint or stack.urls["proxy"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def put_ledger_item(stack: LocalStack, pk: str, **attributes: str) -> None:
    item = {"pk": {"S": pk}, "sk": {"S": "META"}} | {k: {"S": v} for k, v in attributes.items()}
    stack.client("dynamodb").put_item(TableName=stack.env["LEDGER_TABLE"], Item=item)


# -- gateway ---------------------------------------------------------------------------------------


def test_a_signed_firm_request_goes_through_the_gateway_to_the_handler(stack: LocalStack) -> None:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 501, "body": json.dumps({"code": "not_implemented", "message": "later"})}

    with stack.gateway.functions.use_handler("autopay_charge", handler):
        answer = requests.post(f"{stack.urls['gateway']}/firm/autopay", data="{}", auth=IamAuth("firm-ca"), timeout=10)

    assert answer.status_code == 501
    assert answer.json()["code"] == "not_implemented"
    assert answer.headers["x-amzn-RequestId"] == seen[0]["requestContext"]["requestId"]
    identity = seen[0]["requestContext"]["identity"]
    assert identity["userArn"] == "arn:aws:iam::000000000000:user/firm-ca"
    assert identity["sourceIp"] == "127.0.0.1"
    assert seen[0]["resource"] == "/firm/autopay"


def test_unsigned_firm_requests_and_unknown_routes_get_api_gateways_403(stack: LocalStack) -> None:
    gateway = stack.urls["gateway"]
    unsigned = requests.post(f"{gateway}/firm/clients", json={}, timeout=10)
    unknown = requests.get(f"{gateway}/no/such/route", timeout=10)
    for answer in (unsigned, unknown):
        assert answer.status_code == 403
        assert answer.json() == {"message": "Missing Authentication Token"}


def test_dev_routes_answer_and_are_not_api_routes(stack: LocalStack) -> None:
    gateway = stack.urls["gateway"]
    assert requests.get(f"{gateway}/_local/health", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{gateway}/_local/nothing", timeout=10).status_code == 404


# -- AWS proxy -------------------------------------------------------------------------------------


def test_the_proxy_counts_dynamodb_requests_per_operation(stack: LocalStack) -> None:
    stack.proxy.reset_counts()

    put_ledger_item(stack, "TEST#count", entity="test")
    stack.client("dynamodb").get_item(
        TableName=stack.env["LEDGER_TABLE"], Key={"pk": {"S": "TEST#count"}, "sk": {"S": "META"}}
    )

    assert stack.proxy.counts("dynamodb") == {"GetItem": 1, "PutItem": 1}
    assert stack.proxy.total("dynamodb") == 2
    assert stack.proxy.counts()["dynamodb:PutItem"] == 1


def test_an_injected_throttle_reaches_boto3_as_a_throttling_exception(stack: LocalStack) -> None:
    client = no_retry_client(stack, "dynamodb")
    stack.proxy.throttle("PutItem")
    try:
        with pytest.raises(ClientError) as raised:
            client.put_item(TableName=stack.env["LEDGER_TABLE"], Item={"pk": {"S": "TEST#t"}, "sk": {"S": "x"}})
    finally:
        stack.proxy.clear_faults()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    client.put_item(TableName=stack.env["LEDGER_TABLE"], Item={"pk": {"S": "TEST#t"}, "sk": {"S": "x"}})  # used up


def test_injected_5xx_and_delays(stack: LocalStack) -> None:
    client = no_retry_client(stack, "dynamodb")
    key = {"pk": {"S": "TEST#none"}, "sk": {"S": "x"}}
    stack.proxy.inject("dynamodb", "GetItem", 500)
    stack.proxy.inject("dynamodb", "GetItem", None, delay=0.3)
    try:
        with pytest.raises(ClientError) as raised:
            client.get_item(TableName=stack.env["LEDGER_TABLE"], Key=key)
        started = time.perf_counter()
        client.get_item(TableName=stack.env["LEDGER_TABLE"], Key=key)
        slow = time.perf_counter() - started
    finally:
        stack.proxy.clear_faults()
    assert raised.value.response["Error"]["Code"] == "InternalServerError"
    assert slow >= 0.3


def test_dynamodb_goes_to_dynamodb_local_and_the_rest_to_moto(stack: LocalStack) -> None:
    put_ledger_item(stack, "TEST#where", entity="test")
    local = no_retry_client(stack, "dynamodb", stack.urls["dynamodb"])
    moto = no_retry_client(stack, "sqs", stack.urls["moto"])

    found = local.get_item(TableName=stack.env["LEDGER_TABLE"], Key={"pk": {"S": "TEST#where"}, "sk": {"S": "META"}})

    assert found["Item"]["entity"] == {"S": "test"}
    assert found["ResponseMetadata"]["HTTPHeaders"]["server"].startswith("Jetty")  # DynamoDB Local's server
    queue_names = {url.rsplit("/", 1)[1] for url in moto.list_queues()["QueueUrls"]}
    assert queue_names == {url.rsplit("/", 1)[1] for url in stack.queues.values()}


def test_dynamodb_local_refuses_what_dynamodb_refuses(stack: LocalStack) -> None:
    client = no_retry_client(stack, "dynamodb")
    table = stack.env["LEDGER_TABLE"]
    key = {"pk": {"S": "TEST#twice"}, "sk": {"S": "META"}}

    with pytest.raises(ClientError) as short_name:
        client.describe_table(TableName="x")  # DynamoDB table names have 3 to 255 characters
    with pytest.raises(ClientError) as one_item_twice:
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": key}}, {"Delete": {"TableName": table, "Key": key}}]
        )

    assert short_name.value.response["Error"]["Code"] == "ValidationException"
    assert one_item_twice.value.response["Error"]["Code"] == "ValidationException"


def test_an_injected_cancellation_is_what_dynamodb_answers_for_a_failed_condition(stack: LocalStack) -> None:
    client = no_retry_client(stack, "dynamodb")
    table = stack.env["LEDGER_TABLE"]
    put_ledger_item(stack, "TEST#cancel", entity="test")
    items = [
        {"Put": {"TableName": table, "Item": {"pk": {"S": "TEST#cancel-new"}, "sk": {"S": "META"}}}},
        {
            "Put": {
                "TableName": table,
                "Item": {"pk": {"S": "TEST#cancel"}, "sk": {"S": "META"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]
    with pytest.raises(client.exceptions.TransactionCanceledException) as real:
        client.transact_write_items(TransactItems=items)  # DynamoDB Local's own cancellation

    stack.proxy.cancel_transaction("TransactionConflict", item=1)
    with pytest.raises(client.exceptions.TransactionCanceledException) as injected:
        client.transact_write_items(TransactItems=items)

    assert real.value.response["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
    ]
    assert injected.value.response["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
    ]
    assert injected.value.response["Error"]["Message"] == real.value.response["Error"]["Message"].replace(
        "ConditionalCheckFailed", "TransactionConflict"
    )
    assert injected.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# -- stream poller ---------------------------------------------------------------------------------


def only_test_items(collect: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """A stream handler that passes on only the batches carrying this module's TEST# items.

    The session's stack is shared: other tests' payments (and late Stripe webhooks) reach the
    stream too, and must neither be counted here nor fail.
    """

    def handler(event: dict[str, Any]) -> Any:
        mine = [r for r in event["Records"] if r["dynamodb"]["Keys"]["pk"]["S"].startswith("TEST#")]
        if not mine:
            return {"batchItemFailures": []}
        return collect({**event, "Records": mine})

    return handler


def test_a_payment_item_reaches_the_stream_handler_in_lambdas_shape(stack: LocalStack) -> None:
    stack.poller.drain()
    events: list[dict[str, Any]] = []
    with stack.poller.use_handler(only_test_items(events.append)):
        put_ledger_item(stack, "TEST#payment-1", entity="payment", status="succeeded")
        put_ledger_item(stack, "TEST#payable-1", entity="payable")
        stack.poller.drain()

    records = [r for e in events for r in e["Records"]]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["TEST#payment-1"]
    (record,) = records
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == stack.stream_arn
    assert record["awsRegion"] == "us-east-1"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["NewImage"]["status"] == {"S": "succeeded"}
    assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert {"SequenceNumber", "SizeBytes", "Keys"} <= set(record["dynamodb"])


def test_an_update_that_creates_an_item_is_one_insert_record(stack: LocalStack) -> None:
    stack.poller.drain()
    events: list[dict[str, Any]] = []
    with stack.poller.use_handler(only_test_items(events.append)):
        stack.client("dynamodb").update_item(
            TableName=stack.env["LEDGER_TABLE"],
            Key={"pk": {"S": "TEST#upsert"}, "sk": {"S": "META"}},
            UpdateExpression="SET entity = :e",
            ExpressionAttributeValues={":e": {"S": "payment"}},
        )
        stack.poller.drain()
    names = [r["eventName"] for e in events for r in e["Records"]]
    assert names == ["INSERT"]


def test_a_failing_handler_sends_the_batch_to_the_dead_letter_queue(stack: LocalStack) -> None:
    stack.poller.drain()
    calls: list[int] = []

    def failing(event: dict[str, Any]) -> None:
        calls.append(len(event["Records"]))
        raise RuntimeError("SES is down")

    with stack.poller.use_handler(only_test_items(failing)):
        put_ledger_item(stack, "TEST#payment-dlq", entity="payment")
        stack.poller.drain()

    assert stack.template is not None
    assert stack.template.stream is not None
    assert len(calls) == stack.template.stream.max_retries + 1
    sqs = stack.client("sqs")
    messages = sqs.receive_message(QueueUrl=stack.env["EMAIL_DLQ_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=1)[
        "Messages"
    ]
    bodies = [json.loads(m["Body"]) for m in messages]
    for message in messages:
        sqs.delete_message(QueueUrl=stack.env["EMAIL_DLQ_URL"], ReceiptHandle=message["ReceiptHandle"])
    (body,) = [b for b in bodies if b["records"][0]["dynamodb"]["Keys"]["pk"]["S"] == "TEST#payment-dlq"]
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["responseContext"]["functionError"] == "Unhandled"
    assert body["DDBStreamBatchInfo"]["streamArn"] == stack.stream_arn
    assert body["DDBStreamBatchInfo"]["batchSize"] == 1


def test_the_last_batch_can_be_delivered_again(stack: LocalStack) -> None:
    stack.poller.drain()
    events: list[dict[str, Any]] = []
    with stack.poller.use_handler(only_test_items(events.append)):
        stack.poller.pause()
        put_ledger_item(stack, "TEST#payment-again", entity="payment")
        stack.poller.drain()
        stack.poller.redeliver_last_batch()
        stack.poller.resume()
    assert len(events) == 2
    assert events[0] == events[1]


# -- mail ------------------------------------------------------------------------------------------


def test_ses_v2_and_v1_sends_land_in_the_outbox_and_on_its_pages(stack: LocalStack) -> None:
    before = {m["id"] for m in stack.outbox.list_messages()}
    raw = EmailMessage()
    raw["From"] = "payments@firmpay.example"
    raw["To"] = "jordan.ellis@example.com"
    raw["Subject"] = "Payment received"
    raw.set_content("Thank you: $1,500.50")
    raw.add_alternative("<p>Thank you: <b>$1,500.50</b></p>", subtype="html")
    stack.client("sesv2").send_email(Content={"Raw": {"Data": raw.as_bytes()}})
    stack.client("sesv2").send_email(
        FromEmailAddress="payments@firmpay.example",
        Destination={"ToAddresses": ["camille@example.com"]},
        ReplyToAddresses=["billing@firm.example"],
        Content={
            "Simple": {
                "Subject": {"Data": "Simple v2"},
                "Body": {"Text": {"Data": "text part"}, "Html": {"Data": "<p>html part</p>"}},
            }
        },
    )
    stack.client("ses").send_email(
        Source="payments@firmpay.example",
        Destination={"ToAddresses": ["v1@example.com"]},
        Message={"Subject": {"Data": "Simple v1"}, "Body": {"Text": {"Data": "v1 text"}}},
    )
    stack.client("ses").send_raw_email(RawMessage={"Data": raw.as_bytes()})

    new = [m for m in stack.outbox.list_messages() if m["id"] not in before]
    assert [m["subject"] for m in new] == ["Payment received", "Simple v2", "Simple v1", "Payment received"]
    assert new[1]["reply_to"] == "billing@firm.example"
    assert all(m["ses_message_id"] for m in new)
    first = stack.outbox.read(new[0]["id"])
    assert first is not None
    assert "<b>$1,500.50</b>" in first["html"]
    assert first["text"].strip() == "Thank you: $1,500.50"
    folder = stack.outbox.folder / new[0]["id"]
    assert (folder / "message.eml").read_bytes() == raw.as_bytes()
    assert {p.name for p in folder.iterdir()} == {"message.eml", "meta.json", "body.html", "body.txt"}

    gateway = stack.urls["gateway"]
    listed = requests.get(f"{gateway}/_local/outbox.json", timeout=10).json()
    assert {m["id"] for m in new} <= {m["id"] for m in listed}
    index = requests.get(f"{gateway}/_local/outbox", timeout=10)
    assert "Simple v2" in index.text
    page = requests.get(f"{gateway}/_local/outbox/{new[0]['id']}", timeout=10).text
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page  # no allow-scripts
    assert "srcdoc=" in page
    assert "&lt;b&gt;$1,500.50&lt;/b&gt;" in page  # the HTML part, escaped into srcdoc
    eml = requests.get(f"{gateway}/_local/outbox/{new[0]['id']}/message.eml", timeout=10)
    assert eml.content == raw.as_bytes()


def test_a_refused_send_is_not_in_the_outbox(stack: LocalStack) -> None:
    before = len(stack.outbox.list_messages())
    stack.proxy.inject("ses", "SendEmail", 400, code="MessageRejected")
    with pytest.raises(ClientError):
        no_retry_client(stack, "sesv2").send_email(
            FromEmailAddress="payments@firmpay.example",
            Destination={"ToAddresses": ["x@example.com"]},
            Content={"Simple": {"Subject": {"Data": "refused"}, "Body": {"Text": {"Data": "x"}}}},
        )
    assert len(stack.outbox.list_messages()) == before


# -- reCAPTCHA stand-in ----------------------------------------------------------------------------


def test_the_recaptcha_stand_in_answers_like_google(stack: LocalStack) -> None:
    gateway = stack.urls["gateway"]
    secret = "local-recaptcha-secret"

    def verify(token: str, secret: str = secret) -> dict[str, Any]:
        answer = requests.post(
            stack.env["RECAPTCHA_VERIFY_URL"], data={"secret": secret, "response": token}, timeout=10
        )
        return answer.json()  # type: ignore[no-any-return]

    script = requests.get(f"{gateway}/_local/recaptcha/api.js", timeout=10)
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert "I'm not a robot" in script.text
    assert stack.env["RECAPTCHA_JS_URL"] == f"{gateway}/_local/recaptcha/api.js"

    token = f"local-{time.time_ns()}"
    ok = verify(token)
    assert ok["success"] is True
    assert {"challenge_ts", "hostname"} <= set(ok)
    assert verify(token)["error-codes"] == ["timeout-or-duplicate"]
    assert verify(f"fail-{time.time_ns()}")["error-codes"] == ["invalid-input-response"]
    assert verify(f"local-{time.time_ns()}", "wrong")["error-codes"] == ["invalid-input-secret"]
    stack.recaptcha.set_next_answer(False)
    assert verify(f"local-{time.time_ns()}")["success"] is False


# -- configuration ---------------------------------------------------------------------------------


def test_every_firmpay_setting_points_at_the_stack(stack: LocalStack) -> None:
    from firmpay.config import Settings, get_settings

    assert {name.upper() for name in Settings.model_fields} <= set(stack.env)
    settings = get_settings()
    assert settings.public_base_url == stack.urls["gateway"]
    assert settings.stripe_api_base == stack.urls["stripe"]
    assert settings.recaptcha_verify_url.startswith(stack.urls["gateway"])
    assert os.environ["AWS_ENDPOINT_URL"] == stack.urls["proxy"]
    tables = stack.client("dynamodb").describe_table(TableName=stack.env["LEDGER_TABLE"])["Table"]
    assert [k["AttributeName"] for k in tables["KeySchema"]] == ["pk", "sk"]
    assert [g["IndexName"] for g in tables["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert tables["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ttl = stack.client("dynamodb").describe_time_to_live(TableName=stack.env["LEDGER_TABLE"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_everything_listens_on_127_0_0_1_only(stack: LocalStack) -> None:
    children = [p.pid for p in stack._processes.values()]
    found = listeners([*children, os.getpid()])
    ours = [entry for entry in found if entry.pid in children or entry.port in stack.ports.values()]
    assert {entry.port for entry in ours} >= {
        stack.ports["gateway"],
        stack.ports["proxy"],
        stack.ports["moto"],
        stack.ports["dynamodb"],
        stack.ports["stripe"],
    }
    assert {entry.address for entry in ours} == {"127.0.0.1"}


# -- processes -------------------------------------------------------------------------------------

LIFECYCLE = """
import json, os, sys
from local.stack import LocalStack, listeners
from local.template import ROOT
def open_in_tmp(pid):
    # Files of the checkout itself (its .local/ state) do not count, wherever it was cloned.
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/tmp") and not target.startswith(str(ROOT) + "/"):
            found.append(target)
    return found
with LocalStack(name="lifecycle") as stack:
    pids = [p.pid for p in stack._processes.values()]
    stack.client("dynamodb").put_item(TableName=stack.env["LEDGER_TABLE"], Item={"pk": {"S": "a"}, "sk": {"S": "b"}})
    print(json.dumps({"pids": pids, "run_dir": str(stack.run_dir), "pidfile": str(stack.pidfile),
                      "seconds": stack.startup_seconds,
                      "open_in_tmp": [f for pid in pids + [os.getpid()] for f in open_in_tmp(pid)],
                      "addresses": sorted({l.address for l in listeners(pids + [os.getpid()])})}), flush=True)
    if "--crash" in sys.argv:
        os.kill(os.getpid(), 9)
"""


def run_child(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", LIFECYCLE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stderr[-3000:]
    return done, json.loads(lines[-1])


OURS_IN_TMP = ("moto", "stripe", "plaid", "firmpay", "pickle", "werkzeug", "aiohttp")


def tmp_entries() -> set[str]:
    """Entries of /tmp that could be ours (other engineers' tools write there too, e.g. pip)."""
    return {p.name for p in Path("/tmp").iterdir() if any(mark in p.name.lower() for mark in OURS_IN_TMP)}


def test_stop_leaves_no_processes_and_no_files() -> None:
    before = tmp_entries()

    done, info = run_child()

    assert done.returncode == 0, done.stderr[-3000:]
    assert info["addresses"] == ["127.0.0.1"]
    assert info["open_in_tmp"] == []
    assert info["seconds"] < 10
    assert not any(alive(pid) for pid in info["pids"])
    assert not Path(info["run_dir"]).exists()
    assert not Path(info["pidfile"]).exists()
    assert tmp_entries() - before == set()


def test_children_of_a_crashed_stack_exit_and_the_next_start_cleans_up() -> None:
    done, info = run_child("--crash")

    assert done.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in info["pids"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in info["pids"])
    assert Path(info["pidfile"]).exists()

    cleaned = clean_stale_runs()

    assert Path(info["pidfile"]).stem in cleaned
    assert not Path(info["pidfile"]).exists()
    assert not Path(info["run_dir"]).exists()
    assert RUN.exists()


def test_a_busy_port_is_named_in_a_clear_error() -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        script = (
            "from local.stack import LocalStack, StackError\n"
            f"try:\n    LocalStack(ports={{'moto': {port}}}, name='busy').start()\n"
            "except StackError as e:\n    print('ERROR', e)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
    assert f"ERROR cannot start the local stack: port {port} (moto) is in use by pid {os.getpid()}" in done.stdout, (
        done.stdout + done.stderr
    )


def test_every_sample_event_runs_through_its_function(stack: LocalStack) -> None:
    from datetime import UTC, date, datetime

    from local.invoke import event_files, run_all
    from local.seed import seed_event_fixtures, seed_event_method

    events = event_files()
    assert events, "events/ holds the sample events"
    assert stack.template is not None
    # the firm, client, bill and stored card the events name, as `make invoke` has them
    seed_event_fixtures(stack.ledger, date.today())
    seed_event_method(stack.ledger, stack.urls["stripe"], datetime.now(UTC))
    assert run_all(stack.invoke, sorted(stack.template.specs), events) == 0


def test_outbox_pages_escape_what_they_show(stack: LocalStack) -> None:
    message = EmailMessage()
    message["From"] = "payments@firmpay.example"
    message["To"] = "x@example.com"
    message["Subject"] = "<script>alert(1)</script>"
    message.set_content("<script>alert(2)</script>")
    stack.client("sesv2").send_email(Content={"Raw": {"Data": message.as_bytes()}})
    gateway = stack.urls["gateway"]
    newest = requests.get(f"{gateway}/_local/outbox.json", timeout=10).json()[-1]
    page = requests.get(f"{gateway}/_local/outbox/{newest['id']}", timeout=10)
    assert "<script>" not in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
