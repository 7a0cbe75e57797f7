"""pydantic models: ledger items (``ledger``) and HTTP requests/responses (``api``)."""
