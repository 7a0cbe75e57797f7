"""Gateways to outside services (Stripe, Plaid, SES, reCAPTCHA, KMS), each behind a small interface."""
