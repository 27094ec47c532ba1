"""Shared fixtures: the conformance cases (../shared/conformance beside the repository) and a
real `verifier serve` on loopback (the binary named by $VERIFIER_BIN, or the debug build in
$CARGO_TARGET_DIR). Tests whose material is absent print a SKIP line and pass."""

import json
import os
import pathlib
import queue
import subprocess
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFORMANCE = REPO.parent / "shared" / "conformance"


def skip(why: str) -> None:
    print(f"SKIP: {why}")
    pytest.skip(why)


def load_cases(name: str):
    path = CONFORMANCE / name
    if not path.is_file():
        skip(f"{path} not found; conformance not checked")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def verifier_bin() -> pathlib.Path:
    explicit = os.environ.get("VERIFIER_BIN")
    if explicit:
        return pathlib.Path(explicit)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "verifier"


class Server:
    """A `verifier serve` child on 127.0.0.1:<free port>, stopped at teardown."""

    def __init__(self, *args: str):
        binary = verifier_bin()
        if not binary.is_file():
            skip(f"no verifier binary at {binary} (set VERIFIER_BIN or build it)")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: "queue.Queue[str]" = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        self.url = None
        while self.url is None:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                self.stop()
                raise RuntimeError("verifier did not report its address within 60 s")
            try:
                event = json.loads(line)
            except ValueError:
                continue
            fields = event.get("fields", {})
            if fields.get("message") == "verifier listening":
                self.url = f"http://{fields['addr']}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def token_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "tokens"
    path.write_text("# test token\ns3cret-token\n")
    s = Server("--auth-token-file", str(path), "--no-code")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def code_ready(server):
    """Whether the server's sandbox runs programs here (needs root and namespaces)."""
    from rlvr_verifier import VerifierClient

    out = VerifierClient(server.url).run_code("print(6 * 7)")
    if out.get("status") != "Success":
        skip(f"the namespace sandbox cannot run programs here: {out.get('message')}")
    return True
