"""firm_api: placeholder until its issue lands."""

from typing import Any


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 501, "body": '{"code": "not_implemented", "message": "not implemented yet"}'}
