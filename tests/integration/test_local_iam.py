"""IAM on the local stack (local/iam.py): each function's AWS calls are held to its role in template.yaml.

A call outside the role fails as on AWS, through the real SDK, in each service's wire format; the
operator (these tests' own clients) is never held back; removing one action from one function's
policy makes that function's real call fail with the effect a user would see.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.payments.sweep import sweep_pending
from local.iam import acting_as, denial_summary
from local.stack import MAIL_FROM, LocalStack
from local.template import parse_template
from tests.support.card_stack import forget_failed_attempts, open_link, set_webhook_delivery
from tests.support.echeck_stack import open_echeck_link, stripe_test_control

pytestmark = pytest.mark.integration


def refused(call: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value


def role_arn(function: str) -> str:
    return f"arn:aws:sts::123456789012:assumed-role/firmpay-local-{function}Role/firmpay-local-{function}"


# -- each service refuses as AWS does --------------------------------------------------------------


def test_a_function_query_outside_its_role_is_refused_and_the_operator_is_not(stack: LocalStack) -> None:
    dynamodb, table = stack.client("dynamodb"), stack.env["LEDGER_TABLE"]
    query = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "FIRM#nobody"}},
    }
    assert dynamodb.query(**query)["Items"] == []  # the operator
    with acting_as("PayLinkFunction"):
        error = refused(dynamodb.query, **query)
        assert dynamodb.get_item(TableName=table, Key={"pk": {"S": "FIRM#nobody"}, "sk": {"S": "META"}})  # its own
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    arn = stack.iam.resources.table_arn(table) if stack.iam else ""
    assert error.response["Error"]["Message"] == (
        f"User: {role_arn('PayLinkFunction')} is not authorized to perform: dynamodb:Query on resource: {arn} "
        "because no identity-based policy allows the dynamodb:Query action"
    )
    with acting_as("PayLinkFunction"):  # an index is its own resource
        index_error = refused(dynamodb.query, IndexName="gsi1", **query | {"KeyConditionExpression": "gsi1pk = :pk"})
    assert f"on resource: {arn}/index/gsi1 " in index_error.response["Error"]["Message"]


def test_kms_ssm_and_sqs_refuse_in_their_own_wire_format(stack: LocalStack) -> None:
    kms, ssm, sqs = stack.client("kms"), stack.client("ssm"), stack.client("sqs")
    blob = kms.encrypt(KeyId=stack.kms_key_id, Plaintext=b"token")["CiphertextBlob"]
    queue = next(iter(stack.queues.values()))
    with acting_as("PlaidLinkFunction"):  # may encrypt bank tokens, never decrypt them
        kms_error = refused(kms.decrypt, CiphertextBlob=blob)
    with acting_as("CardPaymentFunction"):  # reads the Stripe key, not the webhook secret
        assert ssm.get_parameter(Name=stack.env["STRIPE_SECRET_KEY_PARAM"], WithDecryption=True)["Parameter"]
        ssm_error = refused(ssm.get_parameter, Name=stack.env["STRIPE_WEBHOOK_SECRET_PARAM"], WithDecryption=True)
    with acting_as("PayLinkFunction"):
        sqs_error = refused(sqs.send_message, QueueUrl=queue, MessageBody="{}")
    assert kms_error.response["Error"]["Code"] == "AccessDeniedException"
    assert "kms:Decrypt on resource: arn:aws:kms:us-east-1:123456789012:key/" in kms_error.response["Error"]["Message"]
    assert ssm_error.response["Error"]["Code"] == "AccessDeniedException"
    assert ssm_error.response["Error"]["Message"].endswith(
        f"parameter{stack.env['STRIPE_WEBHOOK_SECRET_PARAM']} because no identity-based policy allows the "
        "ssm:GetParameter action"
    )
    assert sqs_error.response["Error"]["Code"] == "AccessDenied"
    assert sqs_error.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_ses_sends_only_from_the_address_the_condition_names(stack: LocalStack) -> None:
    ses = stack.client("sesv2")
    recipient = f"iam-{uuid.uuid4().hex[:8]}@client.example"
    message = {
        "Destination": {"ToAddresses": [recipient]},
        "Content": {"Simple": {"Subject": {"Data": "Receipt"}, "Body": {"Text": {"Data": "Paid."}}}},
        "ConfigurationSetName": stack.env["SES_CONFIGURATION_SET"],
    }
    with acting_as("ConfirmationEmailFunction"):
        assert ses.send_email(FromEmailAddress=MAIL_FROM, **message)["MessageId"]
        error = refused(ses.send_email, FromEmailAddress="billing@firmpay.example", **message)
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "`ses:SendEmail' on resource `arn:aws:ses:us-east-1:123456789012:identity/" in str(error)


# -- one action removed from one function's policy -------------------------------------------------


def without_action(raw: dict[str, Any], function: str, sid: str, action: str) -> dict[str, Any]:
    narrowed = copy.deepcopy(raw)
    for policy in narrowed["Resources"][function]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []):
            if statement.get("Sid") == sid:
                statement["Action"] = [a for a in statement["Action"] if a != action]
                return narrowed
    raise AssertionError(f"{function} has no statement {sid}")


@pytest.fixture
def narrowed_roles(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stack's functions run with the roles of a template without PayLink's dynamodb:GetItem."""
    assert stack.template is not None
    assert stack.iam is not None
    raw = without_action(stack.template.raw, "PayLinkFunction", "LedgerReadAndIssueLinks", "dynamodb:GetItem")
    narrowed = stack.iam.for_template(parse_template(raw, stack.template.path))
    monkeypatch.setattr(stack.proxy, "authorize", narrowed.authorize)
    return narrowed


def test_a_removed_action_fails_that_functions_real_call(stack: LocalStack, narrowed_roles: Any) -> None:
    link = open_link(stack)
    page = requests.get(f"{stack.urls['gateway']}/api/pay/{link.token}", timeout=30)
    assert page.status_code >= 500, page.text  # the client's pay page does not load
    assert any(
        f"{role_arn('PayLinkFunction')} is not authorized to perform: dynamodb:GetItem" in denial
        for denial in narrowed_roles.denials
    ), denial_summary(narrowed_roles.denials)
    forget_failed_attempts(stack)


def test_the_same_call_is_allowed_by_the_template_as_it_is(stack: LocalStack) -> None:
    assert stack.iam is not None
    before = len(stack.iam.denials)
    link = open_link(stack)
    page = requests.get(f"{stack.urls['gateway']}/api/pay/{link.token}", timeout=30)
    assert page.status_code == 200, page.text
    assert page.json()["payable"]["number"] == link.billed.payable.number  # the client sees the bill
    assert stack.iam.denials[before:] == []


# -- a denial it found: the sweep retires a closed bank account ------------------------------------


def test_the_sweep_retires_the_stored_account_of_a_returned_debit_under_its_own_role(stack: LocalStack) -> None:
    set_webhook_delivery(stack, enabled=False)  # the sweep alone sees the return
    try:
        link = open_echeck_link(stack)
        result = link.pay_echeck(amount=50_000, store=True)
        payment = link.ledger.get_payment(link.payable_id, result["payment_id"])
        assert payment is not None
        assert payment.stored_method_id is not None
        assert stripe_test_control(stack, link.intent_of(payment.payment_id), "return", "R02").status_code == 200
        later = datetime.now(UTC) + timedelta(minutes=30)
        denied_before = len(stack.iam.denials) if stack.iam else 0
        with acting_as("PaymentSweepFunction"):
            sweep_pending(stack.ledger, StripeGateway(), later, abandon_after=timedelta(minutes=15))
    finally:
        set_webhook_delivery(stack, enabled=True)
        forget_failed_attempts(stack)
    # The sweep sees every payment of the shared stack (other tests' too): judge it by this
    # payment and by the refusals of its own role, not by its overall error count.
    refused = [d for d in (stack.iam.denials if stack.iam else [])[denied_before:] if "PaymentSweepFunction" in d]
    assert refused == [], denial_summary(refused)
    failed = link.ledger.get_payment(link.payable_id, payment.payment_id)
    assert failed is not None
    assert failed.status.value == "failed"
    method = link.ledger.get_method(payment.firm_id, payment.client_id, payment.stored_method_id)
    assert method is not None
    assert method.status == "unusable"  # an account closed (R02) is never debited again
