"""The embedded local stack: everything FirmPay needs, on 127.0.0.1, started and stopped together.

    with LocalStack() as stack:            # free ports (tests); LocalStack(fixed_ports=True) for make dev
        stack.urls["gateway"]              # http://127.0.0.1:<port>, the API Gateway stand-in
        stack.ledger                       # firmpay.ledger.Ledger on the stack's table
        stack.proxy.counts("dynamodb")     # requests per operation, fault injection: stack.proxy.inject(...)
        stack.poller.drain()               # deliver the ledger stream to confirmation_email now
        stack.outbox.list_messages()       # every email sent

Processes: moto server and the Stripe emulator (and the Plaid emulator when present) run as
subprocesses whose output goes to ``.local/logs/``; the AWS proxy, the gateway and the stream
poller run as threads of this process, calling the real handlers. ``os.environ`` gets every
setting of ``firmpay.config`` pointing at them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from local.aws_proxy import AwsProxy
from local.gateway import LocalGateway
from local.outbox import Outbox
from local.recaptcha import RecaptchaStandIn
from local.stream_poller import StreamPoller
from local.template import ROOT, load_template, table_definition, ttl_attribute

STATE = ROOT / ".local"
RUN = STATE / "run"
LOGS = STATE / "logs"
FIXED_PORTS = {"gateway": 3000, "proxy": 4566, "moto": 4567, "stripe": 8420, "plaid": 8430}
REGION = "us-east-1"
MAIL_FROM = "payments@firmpay.example"
STRIPE_SECRET = "sk_test_local_firmpay"
WEBHOOK_SECRET = "whsec_local_firmpay"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not come up") from None
            time.sleep(0.05)


class LocalStack:
    def __init__(self, fixed_ports: bool = False, name: str = "test") -> None:
        self.name = name
        self.fixed_ports = fixed_ports
        self.ports = dict(FIXED_PORTS) if fixed_ports else {k: free_port() for k in FIXED_PORTS}
        self.urls = {k: f"http://127.0.0.1:{p}" for k, p in self.ports.items()}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}
        self.outbox = Outbox(STATE / "outbox" if fixed_ports else STATE / f"outbox-{name}-{os.getpid()}")
        self.recaptcha = RecaptchaStandIn()
        self.template = load_template()

    # -- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        RUN.mkdir(parents=True, exist_ok=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        if self.fixed_ports:
            self._clear_stale_run()
        python = sys.executable
        self._spawn("moto", [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.ports["moto"])])
        self._spawn("stripe", [python, "-m", "local.stripe_emulator", "--port", str(self.ports["stripe"])])
        if (ROOT / "local" / "plaid_emulator" / "__main__.py").exists():
            self._spawn(
                "plaid",
                [
                    python,
                    "-m",
                    "local.plaid_emulator",
                    "--port",
                    str(self.ports["plaid"]),
                    "--stripe-url",
                    self.urls["stripe"],
                ],
            )
        self.proxy = AwsProxy(self.ports["proxy"], self.ports["moto"], on_email=self.outbox.capture).start()
        self.gateway = LocalGateway(self.ports["gateway"], self.template)
        self.gateway.add_dev_route("/_local/outbox", self.outbox.route)
        self.gateway.add_dev_route("/_local/recaptcha", self.recaptcha.route)
        self.gateway.add_dev_route("/_local/health", lambda *_: (200, {"Content-Type": "text/plain"}, b"ok"))
        wait_for(f"{self.urls['moto']}/moto-api/data.json")
        self._set_environment()
        self._create_aws_resources()
        wait_for(f"{self.urls['stripe']}/v1/customers")
        self._configure_stripe_webhooks()
        if "plaid" in self._processes:
            wait_for(f"{self.urls['plaid']}/link/v2/stable/link-initialize.js")
        self.gateway.start()
        self._start_poller()
        self._write_run_file()
        return self

    def stop(self) -> None:
        for name in ("poller", "gateway", "proxy"):
            part = getattr(self, name, None)
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self._processes.clear()
        run_file = RUN / f"{self.name}.json"
        with contextlib.suppress(FileNotFoundError):
            if json.loads(run_file.read_text()).get("owner") == os.getpid():
                run_file.unlink()
        if not self.fixed_ports:
            with contextlib.suppress(Exception):
                self.outbox.clear()
                self.outbox.folder.rmdir()

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (LOGS / f"{self.name}-{name}.log").open("wb")
        self._processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def _clear_stale_run(self) -> None:
        """A previous `make dev` that crashed: stop its processes, then make sure the ports are free."""
        run_file = RUN / f"{self.name}.json"
        if run_file.exists():
            stale = json.loads(run_file.read_text())
            for pid in stale.get("pids", []):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if stale.get("owner") != os.getpid():
                    os.kill(stale["owner"], signal.SIGTERM)
            run_file.unlink()
            time.sleep(0.5)
        busy = [f"{name} ({port})" for name, port in self.ports.items() if port_busy(port)]
        if busy:
            raise RuntimeError(f"ports in use by another program: {', '.join(busy)}; stop it and retry")

    def _write_run_file(self) -> None:
        (RUN / f"{self.name}.json").write_text(
            json.dumps(
                {
                    "owner": os.getpid(),
                    "pids": [p.pid for p in self._processes.values()],
                    "ports": self.ports,
                    "env": self.env,
                }
            )
        )

    # -- configuration -------------------------------------------------------------------------------

    def _set_environment(self) -> None:
        gateway, stripe = self.urls["gateway"], self.urls["stripe"]
        self.env = {
            "AWS_ENDPOINT_URL": self.urls["proxy"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "STAGE": "local",
            "LEDGER_TABLE": "firmpay-local-ledger",
            "IDEMPOTENCY_TABLE": "firmpay-local-idempotency",
            "PUBLIC_BASE_URL": gateway,
            "STRIPE_API_BASE": stripe,
            "STRIPE_JS_URL": f"{stripe}/js.stripe.com/v3/",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_local_firmpay",
            "STRIPE_SECRET_KEY_PARAM": "/firmpay/local/stripe/secret-key",
            "STRIPE_WEBHOOK_SECRET_PARAM": "/firmpay/local/stripe/webhook-secret",
            "PLAID_BASE_URL": self.urls["plaid"],
            "PLAID_LINK_JS_URL": f"{self.urls['plaid']}/link/v2/stable/link-initialize.js",
            "PLAID_CREDENTIALS_PARAM": "/firmpay/local/plaid/credentials",
            "RECAPTCHA_SITE_KEY": "local-site-key",
            "RECAPTCHA_JS_URL": f"{gateway}/_local/recaptcha/api.js",
            "RECAPTCHA_VERIFY_URL": f"{gateway}/_local/recaptcha/siteverify",
            "RECAPTCHA_SECRET_PARAM": "/firmpay/local/recaptcha/secret",
            "MAIL_FROM": MAIL_FROM,
            "SES_CONFIGURATION_SET": "firmpay-local",
            "POWERTOOLS_SERVICE_NAME": "firmpay",
            "POWERTOOLS_METRICS_NAMESPACE": "FirmPay",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
        os.environ.update(self.env)
        from firmpay.config import get_settings

        get_settings.cache_clear()
        from firmpay.ledger.client import dynamodb_client

        dynamodb_client.cache_clear()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.urls["proxy"],
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def _create_aws_resources(self) -> None:
        ddb = self.client("dynamodb")
        for logical_id, env_name in (("LedgerTable", "LEDGER_TABLE"), ("IdempotencyTable", "IDEMPOTENCY_TABLE")):
            ddb.create_table(TableName=self.env[env_name], **table_definition(self.template, logical_id))
            ttl = ttl_attribute(self.template, logical_id)
            if ttl:
                ddb.update_time_to_live(
                    TableName=self.env[env_name], TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
                )
        self.stream_arn = ddb.describe_table(TableName=self.env["LEDGER_TABLE"])["Table"]["LatestStreamArn"]
        sqs = self.client("sqs")
        self.env["EMAIL_DLQ_URL"] = sqs.create_queue(QueueName="firmpay-local-email-dlq")["QueueUrl"]
        kms = self.client("kms")
        self.env["BANK_TOKEN_KEY_ID"] = kms.create_key(Description="firmpay local bank tokens")["KeyMetadata"]["KeyId"]
        ses = self.client("sesv2")
        ses.create_email_identity(EmailIdentity=MAIL_FROM.split("@", 1)[1])
        ses.create_email_identity(EmailIdentity=MAIL_FROM)
        with contextlib.suppress(Exception):
            ses.create_configuration_set(ConfigurationSetName="firmpay-local")
        ssm = self.client("ssm")
        secrets = {
            "STRIPE_SECRET_KEY_PARAM": STRIPE_SECRET,
            "STRIPE_WEBHOOK_SECRET_PARAM": WEBHOOK_SECRET,
            "PLAID_CREDENTIALS_PARAM": json.dumps({"client_id": "local-client-id", "secret": "local-plaid-secret"}),
            "RECAPTCHA_SECRET_PARAM": "local-recaptcha-secret",
        }
        for env_name, value in secrets.items():
            ssm.put_parameter(Name=self.env[env_name], Value=value, Type="SecureString", Overwrite=True)
        os.environ.update(self.env)

    def _configure_stripe_webhooks(self) -> None:
        data = urllib.parse.urlencode(
            {"url": f"{self.urls['gateway']}/webhooks/stripe", "secret": WEBHOOK_SECRET}
        ).encode()
        request = urllib.request.Request(f"{self.urls['stripe']}/_config/webhooks/firmpay", data=data, method="POST")
        request.add_header("Authorization", f"Bearer {STRIPE_SECRET}")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def _start_poller(self) -> None:
        mapping = self.template.stream
        assert mapping is not None
        streams = self.client("dynamodbstreams")
        sqs = self.client("sqs")
        dlq = self.env["EMAIL_DLQ_URL"]

        def invoke(event: dict[str, Any]) -> Any:
            return self.gateway.functions.invoke(mapping.function, event)

        def to_dlq(message: dict[str, Any]) -> None:
            sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(message, default=str))

        self.poller = StreamPoller(streams, self.stream_arn, mapping, invoke, to_dlq).start()

    # -- conveniences for tests and tools ------------------------------------------------------------

    @property
    def ledger(self) -> Any:
        from firmpay.ledger import default_ledger

        return default_ledger()

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run one handler in-process, as `sam local invoke` would."""
        return self.gateway.functions.invoke(function, event)


__all__ = ["FIXED_PORTS", "LocalStack", "Path"]
