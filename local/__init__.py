"""The embedded local stack: FirmPay on 127.0.0.1 without AWS, Stripe, Plaid or a container runtime."""
