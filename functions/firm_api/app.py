"""firm_api: placeholder until its issue lands."""


def lambda_handler(event: dict, context: object) -> dict:
    return {"statusCode": 501, "body": "{\"code\": \"not_implemented\", \"message\": \"not implemented yet\"}"}
