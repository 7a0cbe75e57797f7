"""The firm API (``/firm/...``, IAM-signed), split by resource: firms, clients, stored methods,
payables, pay links, eCheck mandates, refunds and payment plans. ``functions/firm_api`` includes
every router of ``ROUTERS``; a new resource is a new module here and one line in that tuple."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from firmpay.routes.firm import clients, firms, links, mandates, methods, payables, plans, refunds

ROUTERS: tuple[APIGatewayRouter, ...] = (
    firms.router,
    clients.router,
    methods.router,
    payables.router,
    links.router,
    mandates.router,
    refunds.router,
    plans.router,
)
