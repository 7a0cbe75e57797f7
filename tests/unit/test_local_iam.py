"""Local IAM's policy evaluation and request mapping (local/iam.py), without a stack.

The rules come from AWS's documentation: IAM User Guide "Policy evaluation logic" (explicit Deny,
then Allow, else implicit deny), "IAM JSON policy elements: Resource" and "Condition operators"
(wildcards, IfExists, negated operators on missing keys), and DynamoDB's "Using IAM with DynamoDB
transactions" (a transaction is authorized item by item; there is no TransactWriteItems action).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from local.iam import (
    AuthRequest,
    IamPolicyError,
    LocalIam,
    Resources,
    Role,
    action_matches,
    arn_matches,
    authorization_requests,
    evaluate,
    parse_policy,
)

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ledger"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0b7d3f6e-2a1c-4e8b-9f00-123456789abc"


def resources() -> Resources:
    return Resources(
        "us-east-1",
        ACCOUNT,
        tables={"ledger": TABLE},
        queues={"http://127.0.0.1:4566/123456789012/dlq": f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq"},
        keys={"alias/firmpay-local-bank-tokens": KEY},
        ses_identities={"payments@firmpay.example", "firmpay.example"},
    )


def allowed(statements: list[dict[str, Any]], action: str, resource: str, **context: tuple[str, ...]) -> bool:
    return evaluate(parse_policy({"Statement": statements}), action, resource, context).allowed


def dynamodb(operation: str, body: dict[str, Any]) -> list[AuthRequest]:
    headers = {"x-amz-target": f"DynamoDB_20120810.{operation}"}
    return authorization_requests("dynamodb", operation, "POST", "/", json.dumps(body).encode(), headers, resources())


# -- evaluation ------------------------------------------------------------------------------------


def test_actions_match_case_insensitively_with_wildcards() -> None:
    assert action_matches("dynamodb:Get*", "dynamodb:GetItem")
    assert action_matches("DynamoDB:getitem", "dynamodb:GetItem")
    assert action_matches("dynamodb:?etItem", "dynamodb:GetItem")
    assert not action_matches("dynamodb:Get*", "dynamodb:BatchGetItem")
    assert not action_matches("dynamodb:GetItem", "dynamodb:GetItems")


def test_resource_wildcards_stay_within_their_arn_part() -> None:
    assert arn_matches("*", TABLE)
    assert arn_matches(f"arn:aws:dynamodb:*:{ACCOUNT}:table/*", TABLE)
    assert arn_matches(f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/led?er", TABLE)
    assert not arn_matches(f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Ledger", TABLE)  # ARNs are case-sensitive
    assert not arn_matches("arn:aws:dynamodb:us-east-1:*:table/other*", TABLE)
    assert arn_matches(f"{TABLE}/index/*", f"{TABLE}/index/gsi1")


def test_nothing_is_allowed_without_an_allow() -> None:
    decision = evaluate([], "dynamodb:GetItem", TABLE, {})
    assert not decision.allowed
    assert not decision.explicit_deny


def test_an_explicit_deny_beats_any_allow() -> None:
    statements = [
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE},
    ]
    decision = evaluate(parse_policy({"Statement": statements}), "dynamodb:DeleteItem", TABLE, {})
    assert (decision.allowed, decision.explicit_deny, decision.statement) == (False, True, "NoDeletes")
    assert allowed(statements, "dynamodb:PutItem", TABLE)


def test_not_action_and_not_resource_allow_everything_else() -> None:
    statements = [{"Effect": "Allow", "NotAction": "dynamodb:Delete*", "NotResource": f"{TABLE}/index/*"}]
    assert allowed(statements, "dynamodb:GetItem", TABLE)
    assert not allowed(statements, "dynamodb:DeleteItem", TABLE)
    assert not allowed(statements, "dynamodb:Query", f"{TABLE}/index/gsi1")


def test_the_sender_condition_allows_only_the_configured_address() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": "ses:SendEmail",
            "Resource": "*",
            "Condition": {"StringEquals": {"ses:FromAddress": "payments@firmpay.example"}},
        }
    ]
    assert allowed(statements, "ses:SendEmail", "*", **{"ses:fromaddress": ("payments@firmpay.example",)})
    assert not allowed(statements, "ses:SendEmail", "*", **{"ses:fromaddress": ("billing@firmpay.example",)})
    assert not allowed(statements, "ses:SendEmail", "*")  # a missing key never equals anything


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringLike": {"ses:FromAddress": "*@firmpay.example"}}, {"ses:fromaddress": ("a@firmpay.example",)}, True),
        ({"StringLike": {"ses:FromAddress": "*@firmpay.example"}}, {"ses:fromaddress": ("a@evil.example",)}, False),
        ({"StringNotEquals": {"ses:FromAddress": "a@x.example"}}, {}, True),  # negated: a missing key matches
        ({"StringEqualsIfExists": {"ses:FromAddress": "a@x.example"}}, {}, True),
        ({"Null": {"ses:FromAddress": "true"}}, {}, True),
        ({"Null": {"ses:FromAddress": "false"}}, {}, False),
        (
            {"ForAllValues:StringLike": {"ses:Recipients": "*@firm.example"}},
            {"ses:recipients": ("a@firm.example", "b@other.example")},
            False,
        ),
        (
            {"ForAnyValue:StringLike": {"ses:Recipients": "*@firm.example"}},
            {"ses:recipients": ("a@firm.example", "b@other.example")},
            True,
        ),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, tuple[str, ...]], expected: bool) -> None:
    statements = [{"Effect": "Allow", "Action": "ses:SendEmail", "Resource": "*", "Condition": condition}]
    assert evaluate(parse_policy({"Statement": statements}), "ses:SendEmail", "*", context).allowed is expected


def test_an_operator_it_cannot_evaluate_is_refused_not_guessed() -> None:
    with pytest.raises(IamPolicyError, match="DateGreaterThan"):
        parse_policy(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01"}},
                    }
                ]
            }
        )


# -- requests as AWS authorizes them ---------------------------------------------------------------


def test_a_query_on_an_index_is_authorized_on_the_index_arn() -> None:
    (request,) = dynamodb("Query", {"TableName": "ledger", "IndexName": "gsi1"})
    assert (request.action, request.resource) == ("dynamodb:Query", f"{TABLE}/index/gsi1")
    (base,) = dynamodb("Query", {"TableName": "ledger"})
    assert base.resource == TABLE
    table_only = [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": TABLE}]
    assert allowed(table_only, base.action, base.resource)
    assert not allowed(table_only, request.action, request.resource)  # the table's ARN does not cover its indexes


def test_a_transaction_is_authorized_item_by_item() -> None:
    body = {
        "TransactItems": [
            {"Put": {"TableName": "ledger", "Item": {}}},
            {"Update": {"TableName": "ledger", "Key": {}}},
            {"ConditionCheck": {"TableName": "ledger", "Key": {}, "ConditionExpression": "x"}},
            {"Delete": {"TableName": "other", "Key": {}}},
        ]
    }
    requests = dynamodb("TransactWriteItems", body)
    assert [(r.action, r.resource.rsplit("/", 1)[1]) for r in requests] == [
        ("dynamodb:PutItem", "ledger"),
        ("dynamodb:UpdateItem", "ledger"),
        ("dynamodb:ConditionCheckItem", "ledger"),
        ("dynamodb:DeleteItem", "other"),
    ]
    gets = dynamodb("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "ledger", "Key": {}}}]})
    assert [(r.action, r.resource) for r in gets] == [("dynamodb:GetItem", TABLE)]


def test_batches_are_authorized_per_table() -> None:
    requests = dynamodb("BatchGetItem", {"RequestItems": {"ledger": {"Keys": []}, "other": {"Keys": []}}})
    assert [(r.action, r.resource.rsplit("/", 1)[1]) for r in requests] == [
        ("dynamodb:BatchGetItem", "ledger"),
        ("dynamodb:BatchGetItem", "other"),
    ]


def test_kms_checks_the_key_an_alias_or_a_ciphertext_names() -> None:
    headers = {"x-amz-target": "TrentService.Encrypt"}
    body = json.dumps({"KeyId": "alias/firmpay-local-bank-tokens", "Plaintext": "eA=="}).encode()
    (encrypt,) = authorization_requests("kms", "Encrypt", "POST", "/", body, headers, resources())
    assert (encrypt.action, encrypt.resource) == ("kms:Encrypt", KEY)
    blob = base64.b64encode(KEY.rsplit("/", 1)[1].encode() + bytes(40)).decode()  # moto's blob starts with the key id
    decrypt_body = json.dumps({"CiphertextBlob": blob}).encode()
    (decrypt,) = authorization_requests("kms", "Decrypt", "POST", "/", decrypt_body, headers, resources())
    assert (decrypt.action, decrypt.resource) == ("kms:Decrypt", KEY)


def test_ssm_sqs_and_ses_requests_name_their_resources() -> None:
    res = resources()
    (ssm,) = authorization_requests(
        "ssm", "GetParameter", "POST", "/", b'{"Name": "/firmpay/local/stripe/secret-key"}', {"x-amz-target": "x"}, res
    )
    assert ssm.resource == f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/firmpay/local/stripe/secret-key"
    (sqs,) = authorization_requests(
        "sqs", "SendMessageBatch", "POST", "/", b'{"QueueUrl": "http://127.0.0.1:4566/123456789012/dlq"}', {}, res
    )
    assert (sqs.action, sqs.resource) == ("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq")
    send = {
        "FromEmailAddress": "FirmPay <payments@firmpay.example>",
        "Destination": {"ToAddresses": ["client@example.com"]},
        "ConfigurationSetName": "firmpay-local",
    }
    identity, configuration_set = authorization_requests(
        "ses", "SendEmail", "POST", "/v2/email/outbound-emails", json.dumps(send).encode(), {}, res
    )
    assert identity.resource == f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/payments@firmpay.example"
    assert configuration_set.resource == f"arn:aws:ses:us-east-1:{ACCOUNT}:configuration-set/firmpay-local"
    assert identity.context["ses:fromaddress"] == ("payments@firmpay.example",)
    assert identity.context["ses:recipients"] == ("client@example.com",)


# -- the refusal -----------------------------------------------------------------------------------


def iam_with(statements: list[dict[str, Any]]) -> LocalIam:
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/firmpay-local-FnRole/firmpay-local-Fn"
    role = Role("Fn", "firmpay-local-FnRole", arn, tuple(parse_policy({"Statement": statements})))
    return LocalIam({"Fn": role}, resources())


def test_a_refused_dynamodb_call_reads_as_aws_writes_it() -> None:
    iam = iam_with([{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE}])
    headers = {"x-amz-target": "DynamoDB_20120810.Query", "content-type": "application/x-amz-json-1.0"}
    body = b'{"TableName": "ledger"}'
    assert iam.authorize("dynamodb", "Query", "POST", "/", headers, body) is None  # the operator: no caller header
    refusal = iam.authorize("dynamodb", "Query", "POST", "/", headers | {"x-firmpay-local-function": "Fn"}, body)
    assert refusal is not None
    status, _, payload = refusal
    assert status == 400
    assert json.loads(payload) == {
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "Message": f"User: arn:aws:sts::{ACCOUNT}:assumed-role/firmpay-local-FnRole/firmpay-local-Fn is not authorized "
        f"to perform: dynamodb:Query on resource: {TABLE} because no identity-based policy allows the dynamodb:Query action",
    }
    assert iam.authorize("dynamodb", "GetItem", "POST", "/", headers | {"x-firmpay-local-function": "Fn"}, body) is None


def test_an_unknown_function_is_allowed_nothing() -> None:
    iam = iam_with([{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    headers = {"x-amz-target": "DynamoDB_20120810.GetItem", "x-firmpay-local-function": "Stranger"}
    assert iam.authorize("dynamodb", "GetItem", "POST", "/", headers, b'{"TableName": "ledger"}') is not None
