"""Plaid's error shape, and the errors the emulator answers with (codes and texts as Plaid's docs give them)."""

from __future__ import annotations

from typing import Any

DOCS = "https://plaid.com/docs/errors/"


class PlaidError(Exception):
    """An error Plaid would answer with; becomes ``{"error_type", "error_code", ...}`` with ``status``."""

    def __init__(
        self,
        error_type: str,
        error_code: str,
        error_message: str,
        display_message: str | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(f"{error_type}/{error_code}: {error_message}")
        self.error_type = error_type
        self.error_code = error_code
        self.error_message = error_message
        self.display_message = display_message
        self.status = status

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_code_reason": None,
            "error_message": self.error_message,
            "display_message": self.display_message,
            "request_id": request_id,
            "causes": [],
            "status": self.status,
            "documentation_url": DOCS + _doc_page(self.error_type),
            "suggested_action": None,
        }

    def link_error(self) -> dict[str, Any]:
        """The error as Link's callbacks carry it (no request id, no HTTP status)."""
        return {
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "display_message": self.display_message,
        }


def _doc_page(error_type: str) -> str:
    return error_type.lower().replace("_error", "").replace("_", "-")


# -- INVALID_REQUEST ------------------------------------------------------------------------------


def missing_fields(*names: str) -> PlaidError:
    return PlaidError(
        "INVALID_REQUEST", "MISSING_FIELDS", "the following required fields are missing: " + ", ".join(names)
    )


def unknown_fields(*names: str) -> PlaidError:
    return PlaidError(
        "INVALID_REQUEST",
        "UNKNOWN_FIELDS",
        "the following fields are not recognized by this endpoint: " + ", ".join(names),
    )


def invalid_field(message: str) -> PlaidError:
    return PlaidError("INVALID_REQUEST", "INVALID_FIELD", message)


def invalid_body() -> PlaidError:
    return PlaidError(
        "INVALID_REQUEST",
        "INVALID_BODY",
        "body could not be parsed as JSON; send a JSON object with Content-Type application/json",
    )


def not_found(path: str) -> PlaidError:
    return PlaidError("INVALID_REQUEST", "NOT_FOUND", f"no endpoint {path}", status=404)


def method_not_allowed(method: str) -> PlaidError:
    return PlaidError(
        "INVALID_REQUEST", "INVALID_HTTP_METHOD", f"{method} is not allowed; Plaid's API takes POST", status=405
    )


# -- INVALID_INPUT --------------------------------------------------------------------------------


def invalid_api_keys() -> PlaidError:
    return PlaidError("INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided")


def invalid_public_token(expired: bool = False) -> PlaidError:
    message = (
        "provided public token is expired. Public tokens expire 30 minutes after creation at which point they can no longer be exchanged"
        if expired
        else "could not find matching public token"
    )
    return PlaidError("INVALID_INPUT", "INVALID_PUBLIC_TOKEN", message)


def invalid_access_token(malformed: bool = False) -> PlaidError:
    message = (
        "provided access token is in an invalid format. expected format: access-<environment>-<identifier>"
        if malformed
        else "could not find matching access token"
    )
    return PlaidError("INVALID_INPUT", "INVALID_ACCESS_TOKEN", message)


def invalid_account_id() -> PlaidError:
    return PlaidError("INVALID_INPUT", "INVALID_ACCOUNT_ID", "failed to find requested account ID for requested item")


def invalid_institution() -> PlaidError:
    return PlaidError("INVALID_INPUT", "INVALID_INSTITUTION", "invalid institution_id provided")


def invalid_link_token(expired: bool = False) -> PlaidError:
    return PlaidError(
        "INVALID_INPUT",
        "INVALID_LINK_TOKEN",
        "link token has expired" if expired else "invalid link_token provided",
        "Something went wrong. Please try connecting your bank again.",
    )


# -- ITEM_ERROR (shown in Link) -------------------------------------------------------------------


def invalid_credentials() -> PlaidError:
    return PlaidError(
        "ITEM_ERROR",
        "INVALID_CREDENTIALS",
        "the provided credentials were not correct",
        "The credentials you provided were incorrect. Check that your credentials are the same that you use for this institution.",
    )


def item_locked() -> PlaidError:
    return PlaidError(
        "ITEM_ERROR",
        "ITEM_LOCKED",
        "the account is locked. prompt the user to visit the institution's site and unlock their account",
        "The given credentials belong to a locked account. Please visit your bank's website to unlock your account.",
    )


# Sandbox: password "error_<CODE>" makes sign-in fail with that error, as Plaid's sandbox does.
SANDBOX_ERRORS: dict[str, PlaidError] = {
    "INVALID_CREDENTIALS": invalid_credentials(),
    "ITEM_LOCKED": item_locked(),
    "INSTITUTION_DOWN": PlaidError(
        "INSTITUTION_ERROR",
        "INSTITUTION_DOWN",
        "this institution is not currently responding to this request. please try again soon",
        "This financial institution is not currently responding to requests. We apologize for the inconvenience.",
    ),
    "INSTITUTION_NOT_RESPONDING": PlaidError(
        "INSTITUTION_ERROR",
        "INSTITUTION_NOT_RESPONDING",
        "this institution is not currently responding to this request. please try again soon",
        "This financial institution is not currently responding to requests. We apologize for the inconvenience.",
    ),
    "USER_SETUP_REQUIRED": PlaidError(
        "ITEM_ERROR",
        "USER_SETUP_REQUIRED",
        "the account has not been fully set up. prompt the user to visit the issuing institution's site and finish the setup process",
        "The given account is not fully setup. Please visit your financial institution's website to setup your account.",
    ),
    "NO_AUTH_ACCOUNTS": PlaidError(
        "ITEM_ERROR",
        "NO_AUTH_ACCOUNTS",
        "There are no valid checking or savings account(s) associated with this Item.",
        "No valid checking or savings accounts were found at this institution.",
    ),
}


def recaptcha_required() -> PlaidError:
    return PlaidError(
        "RECAPTCHA_ERROR",
        "RECAPTCHA_REQUIRED",
        "This request requires additional verification. Please resubmit the request after completing the challenge",
        "Please complete the verification to continue.",
    )


def recaptcha_bad() -> PlaidError:
    return PlaidError(
        "RECAPTCHA_ERROR",
        "RECAPTCHA_BAD",
        "The provided challenge response was denied.",
        "Please confirm you're not a robot.",
    )


def link_flow(message: str) -> PlaidError:
    """A Link request out of order (a step skipped or repeated)."""
    return PlaidError("INVALID_REQUEST", "INVALID_FIELD", message, "Something went wrong. Please start again.")


# -- API_ERROR ------------------------------------------------------------------------------------


def internal_error(message: str = "an unexpected error occurred") -> PlaidError:
    return PlaidError(
        "API_ERROR",
        "INTERNAL_SERVER_ERROR",
        message,
        "An unexpected error occurred. Please try again in a few minutes.",
        status=500,
    )
