"""The embedded local stack: everything FirmPay needs, on 127.0.0.1, started and stopped together.

    with LocalStack() as stack:                 # free ports (tests); LocalStack(ports="fixed") for make dev
        stack.urls["gateway"]                   # http://127.0.0.1:<port>: the API Gateway stand-in
        stack.client("dynamodb")                # boto3 clients on the local AWS endpoint (or stack.clients.dynamodb)
        stack.proxy.counts("dynamodb")          # requests per operation; stack.proxy.inject(...) for faults
        stack.poller.drain()                    # deliver the ledger stream to confirmation_email now
        stack.outbox.list_messages()            # every email sent
        stack.recaptcha.set_next_answer(False)  # the next reCAPTCHA verification fails
        stack.invoke("payment_sweep", {...})    # one handler, in-process, as `sam local invoke` would

Processes: DynamoDB Local (AWS's own engine, ``local.dynamodb_local``: DynamoDB and its Streams),
the moto server (SES, KMS, SQS, SSM), the Stripe emulator and the Plaid emulator run as
subprocesses (output in ``.local/logs/<run>-<name>.log``; each exits on its own if this process
dies); the AWS proxy,
the gateway and the stream poller are threads of this process calling the real handlers.
``os.environ`` gets every setting of ``firmpay.config`` pointing at them (restored by ``stop()``).
The AWS resources are created from template.yaml's own definitions (tables, queue, KMS key, SES
configuration set), so the local ones cannot drift from the deployed ones.

Per-run state lives under ``.local/run/`` (a pidfile per run, the children's TMPDIR, a test run's
outbox), never in /tmp; ``stop()`` removes it. A run whose owner died (a crashed ``make dev``) is
cleaned up by the next start: its processes are killed if they are provably ours.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from local import dynamodb_local
from local.aws_proxy import AwsProxy
from local.gateway import LocalGateway, stderr_log
from local.iam import LocalIam, Resources, acting_as, install_caller_header
from local.lambda_context import ACCOUNT_ID, REGION
from local.outbox import OUTBOX, Outbox
from local.recaptcha import RecaptchaStandIn
from local.stream_poller import StreamPoller
from local.template import ROOT, Resolver, Template, TemplateError, load_template

STATE = ROOT / ".local"
RUN = STATE / "run"
LOGS = STATE / "logs"
FIXED_PORTS = {"gateway": 3000, "proxy": 4566, "moto": 4567, "dynamodb": 4568, "stripe": 8420, "plaid": 8430}
CHILDREN = ("moto", "dynamodb", "stripe", "plaid")

MAIL_FROM = "payments@firmpay.example"
STRIPE_SECRET = "sk_test_local_firmpay"
STRIPE_PUBLISHABLE_KEY = "pk_test_local_firmpay"
WEBHOOK_SECRET = "whsec_local_firmpay"
RECAPTCHA_SITE_KEY = "local-recaptcha-site-key"
RECAPTCHA_SECRET = "local-recaptcha-secret"
PLAID_CREDENTIALS = {"client_id": "local-plaid-client-id", "secret": "local-plaid-secret"}
# The SSM SecureString parameters the functions read, by the environment variable naming them.
_SECRETS = {
    "STRIPE_SECRET_KEY_PARAM": STRIPE_SECRET,
    "STRIPE_WEBHOOK_SECRET_PARAM": WEBHOOK_SECRET,
    "PLAID_CREDENTIALS_PARAM": json.dumps(PLAID_CREDENTIALS),
    "RECAPTCHA_SECRET_PARAM": RECAPTCHA_SECRET,
}

# Run in each child: exit when the parent goes away (even on SIGKILL), then run the module as -m would.
_LAUNCHER = """\
import os, runpy, signal, sys, threading, time
parent, module = int(sys.argv[1]), sys.argv[2]
sys.argv = [module] + sys.argv[3:]
def _watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(3)
    os._exit(1)
threading.Thread(target=_watch, name="parent-watch", daemon=True).start()
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
_LAUNCHER_MARK = "parent-watch"

Ports = Literal["free", "fixed"] | Mapping[str, int]


class StackError(RuntimeError):
    """The local stack cannot start (a busy port, a stack already running, a child that died)."""


# -- processes and sockets (Linux /proc) ----------------------------------------------------------


def _proc_start(pid: int) -> int | None:
    """The process's start time in clock ticks (tells a pid apart from a later reuse of it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_start(pid) is not None


@dataclass(frozen=True)
class Listener:
    pid: int
    address: str
    port: int


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _decode_address(hex_address: str) -> str:
    if len(hex_address) == 8:
        return socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_address)[::-1])
    raw = bytes.fromhex(hex_address)
    return socket.inet_ntop(socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))


def listeners(pids: list[int] | None = None) -> list[Listener]:
    """Listening TCP sockets of ``pids`` (every process when None), from /proc/net/tcp{,6}."""
    listening: dict[str, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    hex_address, hex_port = fields[1].split(":")
                    listening[fields[9]] = (_decode_address(hex_address), int(hex_port, 16))
    found: list[Listener] = []
    candidates = pids if pids is not None else [int(p) for p in os.listdir("/proc") if p.isdigit()]
    for pid in candidates:
        for inode in _socket_inodes(pid) & listening.keys():
            address, port = listening[inode]
            found.append(Listener(pid, address, port))
    return found


def port_busy(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_answers = dynamodb_local.answers  # any HTTP answer on 127.0.0.1:port (and path)


def reset_firmpay_caches() -> None:
    """Forget every per-container cache of the firmpay package (settings, clients, secrets).

    The stack changes the environment the caches were built from; a warm Lambda container never
    sees that happen, tests and ``make invoke`` do.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "firmpay" or name.startswith("firmpay.")):
            continue
        for value in list(vars(module).values()):
            if getattr(value, "__module__", None) == name and callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
    if "aws_lambda_powertools.utilities.parameters" in sys.modules:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()  # type: ignore[no-untyped-call]


_SESSION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _session() -> Any:
    import boto3

    return boto3.session.Session()


# -- the stack -------------------------------------------------------------------------------------


class Clients:
    """boto3 clients on the stack's AWS endpoint, by attribute: ``stack.clients.dynamodb``."""

    def __init__(self, factory: Callable[[str], Any]) -> None:
        self._factory = factory

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        return self._factory(service)


class LocalStack:
    """DynamoDB Local + moto + AWS proxy + Stripe and Plaid emulators + gateway + stream poller, as one
    context manager.

    Attributes (after ``start()``): ``urls``/``ports`` (``gateway``, ``proxy``, ``moto``, ``dynamodb``,
    ``stripe``, ``plaid``), ``env`` (what was put in ``os.environ``), ``proxy`` (``AwsProxy``), ``gateway``
    (``LocalGateway``), ``poller`` (``StreamPoller``), ``outbox`` (``Outbox``), ``recaptcha``
    (``RecaptchaStandIn``), ``template``, ``tables``/``queues`` (logical id -> name/URL),
    ``stream_arn``, ``startup_seconds``.
    """

    _active: ClassVar[LocalStack | None] = None
    proxy: AwsProxy
    gateway: LocalGateway
    poller: StreamPoller

    def __init__(
        self,
        ports: Ports = "free",
        *,
        name: str | None = None,
        plaid: bool | None = None,
        poller: bool = True,
        log_requests: bool | None = None,
        template: Template | None = None,
        fixed_ports: bool = False,
        iam: bool | None = None,
    ) -> None:
        """``ports``: "free" (any free ports), "fixed" (3000, 4566, 4567, 4568, 8420, 8430) or a mapping.

        ``plaid``: start the Plaid emulator (None: when ``local/plaid_emulator`` exists);
        ``log_requests``: gateway lines on stderr (None: with fixed ports; else to ``.local/logs``);
        ``iam``: check every function's AWS calls against its role (None: unless ``LOCAL_IAM=off``).
        """
        if fixed_ports:
            ports = "fixed"
        self.fixed = ports == "fixed"
        self.name = name or ("dev" if self.fixed else "test")
        self.run_id = self.name if self.fixed else f"{self.name}-{os.getpid()}"
        if ports == "fixed":
            self.ports = dict(FIXED_PORTS)
        elif ports == "free":
            self.ports = {"gateway": 0, "proxy": 0} | {k: free_port() for k in CHILDREN}
        else:
            self.ports = {k: int(ports.get(k, 0)) or (free_port() if k in CHILDREN else 0) for k in FIXED_PORTS}
        self.want_plaid = (ROOT / "local" / "plaid_emulator" / "__main__.py").exists() if plaid is None else plaid
        self.want_poller = poller
        self.enforce_iam = os.environ.get("LOCAL_IAM", "on") != "off" if iam is None else iam
        self.iam: LocalIam | None = None
        self.log_requests = self.fixed if log_requests is None else log_requests
        self.run_dir = RUN / self.run_id
        self.pidfile = RUN / f"{self.run_id}.json"
        self.urls: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.tables: dict[str, str] = {}
        self.queues: dict[str, str] = {}
        self.stream_arn = ""
        self.kms_key_id = ""
        self.startup_seconds = 0.0
        self.timings: dict[str, float] = {}
        self.template = template
        self.outbox = Outbox(OUTBOX if self.fixed else self.run_dir / "outbox")
        self.recaptcha = RecaptchaStandIn(secret=RECAPTCHA_SECRET)
        self.clients = Clients(self.client)
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []
        self._client_cache: dict[str, Any] = {}
        self._client_lock = threading.Lock()
        self._saved_env: dict[str, str | None] = {}
        self._started = False
        self._owns_run_state = False

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start everything and wait until it answers; on any failure, stop what started and raise."""
        if LocalStack._active is not None:
            raise StackError("a LocalStack is already running in this process (os.environ holds one stack's settings)")
        LocalStack._active = self
        began = time.perf_counter()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began
        return self

    def _phase(self, name: str, began: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(now - began, 3)
        return now

    def _start(self) -> None:
        began = time.perf_counter()
        RUN.mkdir(parents=True, exist_ok=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        install_caller_header()  # before any botocore session exists: each one registers it when created
        clean_stale_runs()
        if self.fixed or any(self.ports.values()):
            self._check_ports()
        self._owns_run_state = True  # from here on, the pidfile and run directory are this run's
        (self.run_dir / "tmp").mkdir(parents=True, exist_ok=True)
        self._spawn_command("dynamodb", dynamodb_local.command(self.ports["dynamodb"], tmpdir=self.run_dir / "tmp"))
        self._spawn("moto", "moto.server", "-H", "127.0.0.1", "-p", str(self.ports["moto"]))
        self._spawn("stripe", "local.stripe_emulator", "--port", str(self.ports["stripe"]))
        stripe_url = f"http://127.0.0.1:{self.ports['stripe']}"
        if self.want_plaid:
            self._spawn("plaid", "local.plaid_emulator", "--port", str(self.ports["plaid"]), "--stripe-url", stripe_url)
        self._write_pidfile()
        t = self._phase("spawn", began)

        self.template = self.template or load_template()
        self.proxy = AwsProxy(
            self.ports["moto"], self.ports["proxy"], on_email=self.outbox.capture, dynamodb_port=self.ports["dynamodb"]
        )
        self.ports["proxy"] = self.proxy.port
        self.gateway = LocalGateway(self.ports["gateway"], self.template, log=self._request_log())
        self.ports["gateway"] = self.gateway.port
        self.gateway.add_dev_route("/_local/outbox", self.outbox.route)
        self.gateway.add_dev_route("/_local/recaptcha", self.recaptcha.route)
        self.urls = {k: f"http://127.0.0.1:{p}" for k, p in self.ports.items()}
        self.urls["outbox"] = f"{self.urls['gateway']}/_local/outbox"
        self.proxy.start()
        import boto3  # noqa: F401 - the import (~150 ms) overlaps the emulators' start-up

        t = self._phase("in-process servers", t)

        self._wait_for("moto", "/moto-api/data.json")
        self._wait_for("dynamodb", "/", timeout=60.0)  # a JVM: ~3 s, more on a busy machine
        t = self._phase("moto and DynamoDB Local ready", t)
        self._create_aws_resources()
        self._set_environment()
        if self.enforce_iam:
            self._enforce_iam()
        t = self._phase("aws resources", t)

        self._wait_for("stripe", "/v1/customers")
        self._configure_stripe_webhook()
        if self.want_plaid:
            self._wait_for("plaid", "/")
        t = self._phase("emulators ready", t)

        self.gateway.start()
        if self.want_poller:
            self._start_poller()
        self._started = True
        self._write_pidfile()
        self._phase("gateway and poller", t)

    def stop(self) -> None:
        """Stop every thread and process this stack started, restore the environment, remove run state."""
        for name in ("poller", "gateway", "proxy"):
            part = getattr(self, name, None)
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self._processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        for client in self._client_cache.values():
            with contextlib.suppress(Exception):
                client.close()
        self._client_cache.clear()
        self._restore_environment()
        if self._owns_run_state:  # a start refused because of another run must not touch its state
            with contextlib.suppress(FileNotFoundError):
                self.pidfile.unlink()
            _remove_tree(self.run_dir)
            self._owns_run_state = False
        if LocalStack._active is self:
            LocalStack._active = None
        self._started = False

    @property
    def running(self) -> bool:
        return self._started

    # -- processes -------------------------------------------------------------------------------

    def _check_ports(self) -> None:
        """Fail clearly when a port is taken: by a live `make dev`, a hung run of ours, or another program."""
        if self.fixed:
            state = running_dev_stack()
            if state is not None:
                raise StackError(
                    f"`make dev` is already running (pid {state['owner']}, gateway {state['urls'].get('gateway')}); "
                    "stop it with Ctrl-C in its terminal, or use it: `make invoke` reuses it"
                )
            previous = _read_state(self.pidfile)
            owner = int(previous.get("owner", 0))
            if owner and alive(owner) and _proc_start(owner) == previous.get("owner_start"):
                raise StackError(
                    f"another {self.name} stack is starting or hung (pid {owner}: {_cmdline(owner)[:80]}); stop it first"
                )
        busy = []
        for name, port in self.ports.items():
            if port and port_busy(port):
                owners = [listener.pid for listener in listeners() if listener.port == port]
                who = f"pid {owners[0]}: {_cmdline(owners[0])[:80]}" if owners else "another program"
                busy.append(f"{port} ({name}) is in use by {who}")
        if busy:
            raise StackError("cannot start the local stack: port " + "; port ".join(busy))

    def _spawn(self, name: str, module: str, *args: str) -> None:
        """A python module as a child, through the launcher (which exits when this process dies)."""
        self._spawn_command(name, [sys.executable, "-c", _LAUNCHER, str(os.getpid()), module, *args])

    def _spawn_command(self, name: str, argv: list[str]) -> None:
        """A child in its own process group; ``argv`` must exit by itself when this process dies."""
        log = (LOGS / f"{self.run_id}-{name}.log").open("wb")
        self._logs.append(log)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": str(self.run_dir / "tmp"),
        }
        self._processes[name] = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )

    def _wait_for(self, name: str, path: str, timeout: float = 30.0) -> None:
        process = self._processes[name]
        deadline = time.monotonic() + timeout
        while not _answers(self.ports[name], path):
            if process.poll() is not None:
                log = LOGS / f"{self.run_id}-{name}.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise StackError(f"{name} exited with {process.returncode} before answering; {log}:\n{tail}")
            if time.monotonic() > deadline:
                raise StackError(f"{name} did not answer on 127.0.0.1:{self.ports[name]} within {timeout} s")
            time.sleep(0.03)

    def _write_pidfile(self) -> None:
        children = [{"name": name, "pid": p.pid, "start": _proc_start(p.pid)} for name, p in self._processes.items()]
        state = {
            "owner": os.getpid(),
            "owner_start": _proc_start(os.getpid()),
            "owner_cmdline": _cmdline(os.getpid()),
            "root": str(ROOT),
            "children": children,
            "ports": self.ports,
            "urls": self.urls,
            "env": self.env,
            "ready": self._started,
            "started_at": time.time(),
        }
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.pidfile)

    def _request_log(self) -> Callable[[str], None]:
        if self.log_requests:
            return stderr_log
        log = (LOGS / f"{self.run_id}-gateway.log").open("a", buffering=1, encoding="utf-8")
        self._logs.append(log)
        lock = threading.Lock()

        def write(line: str) -> None:
            with lock:
                log.write(line + "\n")

        return write

    # -- AWS -------------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client (cached per service) on the stack's AWS endpoint (through the proxy)."""
        with self._client_lock:
            if service not in self._client_cache:
                self._client_cache[service] = self._new_client(service, self.urls["proxy"])
            return self._client_cache[service]

    @staticmethod
    def _new_client(service: str, endpoint: str) -> Any:
        import botocore.config

        with _SESSION_LOCK:  # one session (its loaders cache the service models); not thread-safe
            return _session().client(
                service,
                endpoint_url=endpoint,
                region_name=REGION,
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 2}, max_pool_connections=16),
            )

    def _create_aws_resources(self) -> None:
        """Every resource template.yaml declares that functions reach at runtime, created in DynamoDB
        Local (tables) and moto (the rest)."""
        assert self.template is not None
        template = self.template
        physical: dict[str, str] = {}
        attributes: dict[str, str] = {}
        for logical_id, resource in template.raw["Resources"].items():  # defaults for what is not created
            kind = str(resource.get("Type", ""))
            physical[logical_id] = f"firmpay-local-{logical_id}"
            service = kind.split("::")[1].lower() if kind.count("::") == 2 else "cloudformation"
            attributes[f"{logical_id}.Arn"] = f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{logical_id}"
        for logical_id in template.specs.values():
            physical[logical_id.logical_id] = f"firmpay-local-{logical_id.logical_id}"

        params = self._parameters()
        base_resolver = Resolver(template, params, physical, attributes)
        clients = {s: self.client(s) for s in ("dynamodb", "sqs", "kms", "sesv2", "ssm")}

        def create_table(logical_id: str) -> None:
            name = f"firmpay-local-{_kebab(logical_id.removesuffix('Table'))}"
            spec = template.tables[logical_id]
            description = clients["dynamodb"].create_table(**spec.create_table_args(name))["TableDescription"]
            if spec.ttl_attribute:
                clients["dynamodb"].update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
                )
            self.tables[logical_id] = name
            physical[logical_id] = name
            # DynamoDB Local names its own region and account in ARNs (``ddblocal``, 000000000000);
            # the template's references get the ARN the table has in the stack's region and
            # account. The stream ARN stays DynamoDB Local's: it is what its Streams API answers to.
            attributes[f"{logical_id}.Arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
            if description.get("LatestStreamArn"):
                attributes[f"{logical_id}.StreamArn"] = description["LatestStreamArn"]

        def create_queue(logical_id: str) -> None:
            props = template.resource(logical_id).get("Properties") or {}
            name = f"firmpay-local-{_kebab(logical_id)}" + (".fifo" if props.get("FifoQueue") else "")
            attrs = {"FifoQueue": "true"} if props.get("FifoQueue") else {}
            url = clients["sqs"].create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
            self.queues[logical_id] = url
            physical[logical_id] = url
            attributes[f"{logical_id}.Arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
            attributes[f"{logical_id}.QueueName"] = name

        def create_key(logical_id: str) -> None:
            props = template.resource(logical_id).get("Properties") or {}
            meta = clients["kms"].create_key(Description=str(props.get("Description", logical_id)))["KeyMetadata"]
            physical[logical_id] = meta["KeyId"]
            attributes[f"{logical_id}.Arn"] = meta["Arn"]
            attributes[f"{logical_id}.KeyId"] = meta["KeyId"]

        def mail_setup() -> None:
            domain = MAIL_FROM.split("@", 1)[1]
            clients["sesv2"].create_email_identity(EmailIdentity=domain)
            clients["sesv2"].create_email_identity(EmailIdentity=MAIL_FROM)
            for logical_id in template.resources_of_type("AWS::SES::ConfigurationSet"):
                props = template.resource(logical_id).get("Properties") or {}
                name = base_resolver.resolve_str(props.get("Name", f"firmpay-local-{logical_id}"))
                clients["sesv2"].create_configuration_set(ConfigurationSetName=name)
                physical[logical_id] = name

        def put_secrets() -> None:  # first: moto's SSM backend is the slowest to warm up (~0.7 s)
            environment: dict[str, Any] = {}
            for spec in template.specs.values():
                environment |= spec.environment
            for env_name, value in _SECRETS.items():
                if env_name in environment:
                    clients["ssm"].put_parameter(
                        Name=base_resolver.resolve_str(environment[env_name]),
                        Value=value,
                        Type="SecureString",
                        Overwrite=True,
                    )

        jobs: list[Callable[[], None]] = [put_secrets, mail_setup]
        jobs += [functools.partial(create_table, lid) for lid in template.tables]
        jobs += [functools.partial(create_queue, lid) for lid in template.resources_of_type("AWS::SQS::Queue")]
        jobs += [functools.partial(create_key, lid) for lid in template.resources_of_type("AWS::KMS::Key")]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()

        resolver = Resolver(template, params, physical, attributes)
        for logical_id in template.resources_of_type("AWS::KMS::Alias"):
            props = template.resource(logical_id).get("Properties") or {}
            clients["kms"].create_alias(
                AliasName=resolver.resolve_str(props["AliasName"]),
                TargetKeyId=resolver.resolve_str(props["TargetKeyId"]),
            )
        self._resolver = resolver
        mapping = template.stream
        if mapping is not None:
            self.stream_arn = attributes.get(f"{mapping.source}.StreamArn", "")
        self.kms_key_id = next(
            (physical[k] for k in template.resources_of_type("AWS::KMS::Key")),
            "",
        )

    def _enforce_iam(self) -> None:
        """The AWS proxy checks each function's calls against its role from here on (local/iam.py)."""
        assert self.template is not None
        template, resolver = self.template, self._resolver
        resources = Resources(REGION, ACCOUNT_ID, ses_identities={MAIL_FROM, MAIL_FROM.split("@", 1)[1]})
        resources.tables = {name: resolver.get_att(lid, "Arn") for lid, name in self.tables.items()}
        resources.queues = {url: resolver.get_att(lid, "Arn") for lid, url in self.queues.items()}
        for lid in template.resources_of_type("AWS::KMS::Key"):
            arn = resolver.get_att(lid, "Arn")
            resources.keys |= {resolver.ref(lid): arn, arn: arn}
        for lid in template.resources_of_type("AWS::KMS::Alias"):  # KMS checks an alias's target key
            props = template.resource(lid).get("Properties") or {}
            alias, key = resolver.resolve_str(props["AliasName"]), resolver.resolve_str(props["TargetKeyId"])
            resources.keys[alias] = resources.keys[f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}"] = resources.key_arn(
                key
            )
        self.iam = LocalIam.from_template(template, resolver, resources)
        self.iam.on_denial = self._request_log()
        self.proxy.authorize = self.iam.authorize

    def _parameters(self) -> dict[str, str]:
        """Local values of the template's parameters (what a `sam deploy --parameter-overrides` would give)."""
        gateway = f"http://127.0.0.1:{self.ports['gateway']}"
        return {
            "Stage": "local",
            "PublicBaseUrl": gateway,
            "MailFrom": MAIL_FROM,
            "StripePublishableKey": STRIPE_PUBLISHABLE_KEY,
            "StripeSecretKeyParam": "/firmpay/local/stripe/secret-key",
            "StripeWebhookSecretParam": "/firmpay/local/stripe/webhook-secret",
            "PlaidCredentialsParam": "/firmpay/local/plaid/credentials",
            "PlaidBaseUrl": f"http://127.0.0.1:{self.ports['plaid']}",
            "RecaptchaSiteKey": RECAPTCHA_SITE_KEY,
            "RecaptchaSecretParam": "/firmpay/local/recaptcha/secret",
        }

    def _set_environment(self) -> None:
        """``os.environ``: every function's template environment (resolved) plus the local endpoints."""
        assert self.template is not None
        merged: dict[str, str] = {}
        owners: dict[str, str] = {}
        for spec in self.template.specs.values():
            for key, value in spec.resolved_environment(self._resolver).items():
                if key in merged and merged[key] != value:
                    raise StackError(
                        f"{owners[key]} and {spec.logical_id} set {key} differently; the in-process stack "
                        "runs every function in one environment"
                    )
                merged[key], owners[key] = value, spec.logical_id
        stripe, plaid, gateway = self.urls["stripe"], self.urls["plaid"], self.urls["gateway"]
        local = {
            "AWS_ENDPOINT_URL": self.urls["proxy"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_EC2_METADATA_DISABLED": "true",
            "STRIPE_API_BASE": stripe,
            "STRIPE_JS_URL": f"{stripe}/js.stripe.com/v3/",
            "PLAID_LINK_JS_URL": f"{plaid}/link/v2/stable/link-initialize.js",
            "RECAPTCHA_JS_URL": f"{gateway}/_local/recaptcha/api.js",
            "RECAPTCHA_VERIFY_URL": f"{gateway}/_local/recaptcha/siteverify",
            "POWERTOOLS_TRACE_DISABLED": "true",
            # Everything runs in this one process on a developer's (or CI's) two cores, with the
            # emulators beside it: far slower than Lambda next to DynamoDB. Generous client
            # timeouts keep a busy machine from looking like an outage (tests that want a timeout
            # set their own).
            "OUTBOUND_TIMEOUT_SECONDS": os.environ.get("OUTBOUND_TIMEOUT_SECONDS", "30"),
            "AWS_READ_TIMEOUT_SECONDS": os.environ.get("AWS_READ_TIMEOUT_SECONDS", "30"),
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL")
            or (merged.get("POWERTOOLS_LOG_LEVEL", "INFO") if self.fixed else "WARNING"),
        }
        env = merged | local
        try:  # every firmpay setting gets a value, including those the template leaves at their default
            from firmpay.config import Settings

            for field_name, info in Settings.model_fields.items():
                env.setdefault(field_name.upper(), str(info.default))
        except ImportError:
            pass
        self.env = env
        self._apply_environment(env)

    def _apply_environment(self, env: Mapping[str, str]) -> None:
        for key, value in env.items():
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):  # a developer's real credentials stay out of it
            if key in os.environ:
                self._saved_env.setdefault(key, os.environ[key])
                del os.environ[key]
        reset_firmpay_caches()

    def _restore_environment(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self.env:
            reset_firmpay_caches()

    # -- emulators and the stream ----------------------------------------------------------------

    def _configure_stripe_webhook(self) -> None:
        """The Stripe emulator signs and posts every event to the gateway's /webhooks/stripe."""
        assert self.template is not None
        found = self.template.find_route("POST", "/webhooks/stripe")
        if found is None:
            return
        data = urllib.parse.urlencode({"url": f"{self.urls['gateway']}/webhooks/stripe", "secret": WEBHOOK_SECRET})
        conn = http.client.HTTPConnection("127.0.0.1", self.ports["stripe"], timeout=10)
        try:
            conn.request(
                "POST",
                "/_config/webhooks/firmpay",
                body=data,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Authorization": f"Bearer {STRIPE_SECRET}",
                },
            )
            answer = conn.getresponse()
            text = answer.read().decode(errors="replace")
        finally:
            conn.close()
        if answer.status >= 300:
            raise StackError(f"the Stripe emulator refused the webhook configuration: {answer.status} {text[:200]}")

    def _start_poller(self) -> None:
        assert self.template is not None
        mapping = self.template.stream
        if mapping is None or not self.stream_arn:
            return
        gateway = self.gateway
        spec = self.template.function(mapping.function)
        # The poller reads DynamoDB Local directly: its idle GetRecords calls stay out of the proxy's counts.
        streams = self._new_client("dynamodbstreams", self.urls["dynamodb"])
        sqs = self.client("sqs")
        queue_url = self.queues.get(mapping.on_failure or "", "")

        def invoke(event: dict[str, Any]) -> Any:
            return gateway.functions.invoke(mapping.function, event)

        def send_to_destination(message: dict[str, Any]) -> None:
            if queue_url:  # Lambda sends it with the function's role (SAM grants sqs:SendMessage for it)
                with acting_as(spec.logical_id):
                    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message, default=str))

        self.poller = StreamPoller(
            streams,
            self.stream_arn,
            mapping,
            invoke,
            send_to_destination if queue_url else None,
            function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:firmpay-local-{spec.logical_id}",
            log=self._request_log() if not self.log_requests else None,
        ).start()

    # -- conveniences for tests and tools --------------------------------------------------------

    @property
    def ledger(self) -> Any:
        """A ``firmpay.ledger.Ledger`` on the stack's ledger table."""
        from firmpay.ledger import default_ledger

        return default_ledger()

    def invoke(self, function: str, event: Any) -> Any:
        """Run one handler in-process with a Lambda context, as ``sam local invoke`` would."""
        return self.gateway.functions.invoke(function, event)

    def function_url(self, path: str) -> str:
        return self.urls["gateway"] + path


def _kebab(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _ours(child: Mapping[str, Any]) -> bool:
    """The recorded child is still the same process and one this module started."""
    pid = int(child.get("pid", 0))
    if not pid or _proc_start(pid) != child.get("start"):
        return False
    command = _cmdline(pid)
    return _LAUNCHER_MARK in command or dynamodb_local.RUNNER_CLASS in command


def clean_stale_runs() -> list[str]:
    """Remove the state of runs whose owner died, killing their processes if provably ours."""
    cleaned = []
    for pidfile in RUN.glob("*.json"):
        state = _read_state(pidfile)
        if not state:
            continue
        owner = int(state.get("owner", 0))
        if owner and alive(owner) and _proc_start(owner) == state.get("owner_start"):
            continue
        killed = []
        for child in state.get("children", []):
            if _ours(child):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(child["pid"]), signal.SIGKILL)
                    killed.append(int(child["pid"]))
        deadline = time.monotonic() + 3
        while any(alive(pid) for pid in killed) and time.monotonic() < deadline:
            time.sleep(0.05)  # their ports are free once they are gone
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
        _remove_tree(RUN / pidfile.stem)
        cleaned.append(pidfile.stem)
    _prune_logs()
    return cleaned


def _prune_logs(keep: int = 20) -> None:
    """Keep the logs of the last ``keep`` runs (a run's logs are ``<run id>-<part>.log``)."""
    runs: dict[str, list[Path]] = {}
    for log in LOGS.glob("*.log"):
        runs.setdefault(log.stem.rsplit("-", 1)[0], []).append(log)

    def newest(files: list[Path]) -> float:
        with contextlib.suppress(OSError):
            return max(f.stat().st_mtime for f in files)
        return 0.0

    for run_id in sorted(runs, key=lambda r: newest(runs[r]), reverse=True)[keep:]:
        if run_id == "dev":
            continue
        for log in runs[run_id]:
            log.unlink(missing_ok=True)


def _read_state(pidfile: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(pidfile.read_text())
    except (OSError, ValueError):
        return {}
    return state


def running_dev_stack() -> dict[str, Any] | None:
    """The state of a `make dev` stack that is up and answering (``.local/run/dev.json``), if any."""
    state = _read_state(RUN / "dev.json")
    if not state:
        return None
    owner = int(state.get("owner", 0))
    if not state.get("ready") or not alive(owner) or _proc_start(owner) != state.get("owner_start"):
        return None
    if not _answers(int(state["ports"]["gateway"]), "/_local/health"):
        return None
    return state


__all__ = [
    "FIXED_PORTS",
    "MAIL_FROM",
    "STRIPE_SECRET",
    "WEBHOOK_SECRET",
    "Clients",
    "LocalStack",
    "StackError",
    "TemplateError",
    "clean_stale_runs",
    "listeners",
    "running_dev_stack",
]
