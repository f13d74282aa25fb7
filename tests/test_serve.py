"""``archbuild serve``, run as a user runs it (a subprocess on 127.0.0.1 at a free port), asked
over HTTP: the page and its data, nothing else (no file by any path, no listing), only for
requests addressed to it, read-only; a hostile spec answered with its located problems; Ctrl-C
stops it cleanly. Truths: the spec loaded in this process, ``archbuild validate``'s problems,
and the folder's files before and after."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import archbuilder
from archbuilder.serve.build import BuildRequest
from archbuilder.serve.worker import Worker

from .conftest import ROOT

SMALL = ROOT / "tests" / "data" / "bases" / "small.yaml"
NET = "extends: base.yaml\nname: net\nblocks:\n  mix: {ch1x1: 8}\n"
HOSTILE = """\
name: big
input: {channels: 3, height: 16, width: 16}
num_classes: 4
blocks:
  - {kind: conv, out: 8, kernel: 3, padding: 1, repeat: 1000000000}
head: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: num_classes}]
"""


@dataclass
class Served:
    process: subprocess.Popen
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def request(self, method: str, path: str, host: str | None = None) -> tuple[int, bytes]:
        """One request with ``path`` sent exactly as written (no normalising client in the way)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{self.port}")
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, body

    def model(self) -> dict:
        status, body = self.request("GET", "/model.json")
        assert status == 200
        return json.loads(body)

    def wait_for(self, predicate, timeout_s: float = 10) -> dict:
        """The first /model.json for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            data = self.model()
            if predicate(data) or time.monotonic() > deadline:
                return data
            time.sleep(0.05)


def start(folder: Path, *arguments: str) -> Served:
    """``archbuild serve ARGUMENTS --port 0`` in ``folder``, once it says where it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "archbuilder", "serve", *arguments, "--port", "0"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    line = process.stdout.readline()
    found = re.search(r"at http://127\.0\.0\.1:(\d+)/ ", line)
    if not found:
        process.kill()
        raise AssertionError(f"no URL in {line!r}: {process.stderr.read()}")
    return Served(process, folder, int(found[1]))


def stop(served: Served) -> tuple[int, str]:
    """SIGINT (Ctrl-C) and the exit status and standard error that follow."""
    served.process.send_signal(signal.SIGINT)
    try:
        _, err = served.process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        served.process.kill()
        raise
    return served.process.returncode, err


def make_project(folder: Path) -> Path:
    """A spec (net.yaml) written over a base (base.yaml), with a secret and a link out beside it."""
    (folder / "base.yaml").write_text(SMALL.read_text())
    (folder / "net.yaml").write_text(NET)
    (folder / "secret.txt").write_text("do not serve me\n")
    (folder / "link.yaml").symlink_to("/etc/passwd")
    return folder


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path)


@contextmanager
def serving(folder: Path, *arguments: str) -> Iterator[Served]:
    server = start(folder, *arguments)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            stop(server)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """One server for the tests that change nothing."""
    with serving(make_project(tmp_path_factory.mktemp("served")), "net.yaml") as server:
        yield server


@pytest.fixture
def edited(project) -> Iterator[Served]:
    """A server of its own, for a test that edits the spec."""
    with serving(project, "net.yaml") as server:
        yield server


def test_serves_the_page_and_the_model_of_the_spec(served):
    status, page = served.request("GET", "/")
    assert status == 200 and b'<body class="live">' in page
    assert b"connect-src 'self'" in page  # the only requests the page may make: to this server
    data = served.model()
    expected = archbuilder.load_spec(served.folder / "net.yaml")
    params, macs = archbuilder.lower(expected).total()
    assert data["problems"] == [] and data["stale"] is False
    assert data["model"]["total"] == {"params": params, "macs": macs}
    assert sorted(data["model"]["files"]) == ["base.yaml", "net.yaml"]  # as named, never absolute
    assert str(served.folder).encode() not in page + json.dumps(data).encode()


@pytest.mark.parametrize(
    "path",
    [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "//etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/net.yaml",
        "/base.yaml",
        "/secret.txt",
        "/link.yaml",
        "/model.json/../secret.txt",
        "/events/..%2fsecret.txt",
        "/./",
        "/static/",
        "/?file=secret.txt",
    ],
)
def test_no_path_reaches_a_file(served, path):
    status, body = served.request("GET", path)
    if path == "/?file=secret.txt":  # the page itself: a query names nothing
        assert status == 200 and b"do not serve me" not in body
        return
    assert status == 404, path
    assert b"root:" not in body and b"do not serve me" not in body and b"ch1x1" not in body


def test_requests_for_another_host_are_refused(served):
    for host in (f"evil.example:{served.port}", "evil.example", "127.0.0.1", f"127.0.0.2:{served.port}", ""):
        status, body = served.request("GET", "/model.json", host=host)
        assert status == 421, host
        assert b"params" not in body
    for host in (f"127.0.0.1:{served.port}", f"localhost:{served.port}", f"LOCALHOST:{served.port}"):
        assert served.request("GET", "/model.json", host=host)[0] == 200, host


def test_nothing_is_written(served):
    before = sorted(os.listdir(served.folder))
    for path in ("/", "/model.json", "/events", "/net.yaml", "/new.yaml"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, _ = served.request(method, path)
            assert status in (404, 405), (method, path)
    assert sorted(os.listdir(served.folder)) == before
    assert (served.folder / "net.yaml").read_text() == NET


def test_listens_on_loopback_only(served):
    """The default server is not reachable on this machine's other addresses."""
    addresses = {address for address in _ipv4_addresses() if not address.startswith("127.")}
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address")
    for address in addresses:
        with socket.socket() as sock, pytest.raises(OSError):
            sock.settimeout(2)
            sock.connect((address, served.port))


def _ipv4_addresses() -> set[str]:
    """This machine's IPv4 addresses, one per interface that has one (Linux's SIOCGIFADDR)."""
    import fcntl
    import struct

    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on this interface
            found.add(socket.inet_ntoa(answer[20:24]))
    return found


@pytest.mark.slow  # a server of its own: CI runs it
def test_another_host_is_warned_about(project):
    server = start(project, "net.yaml", "--host", "0.0.0.0")
    try:
        status, _ = server.request("GET", "/model.json")
        assert status == 200
    finally:
        code, err = stop(server)
    assert code == 0
    assert "warning: listening on 0.0.0.0: anyone who can reach this machine" in err


def test_a_save_rebuilds_and_a_broken_spec_shows_its_problems(edited):
    served = edited
    first = served.model()
    (served.folder / "net.yaml").write_text(NET.replace("ch1x1: 8", "ch1x1: 24"))
    changed = served.wait_for(lambda data: data["version"] > first["version"])
    assert (
        changed["model"]["total"]["params"]
        == archbuilder.summarize(archbuilder.load_spec(served.folder / "net.yaml")).params
    )
    (served.folder / "net.yaml").write_text(NET.replace("ch1x1: 8", "chx1x1: 8"))
    broken = served.wait_for(lambda data: data["problems"])
    checked = subprocess.run(
        [sys.executable, "-m", "archbuilder", "validate", "net.yaml"],
        cwd=served.folder,
        capture_output=True,
        text=True,
    )
    (problem,) = broken["problems"]
    where = f"{problem['file']}:{problem['line']}:{problem['column']}: {problem['key']}: {problem['message']}"
    assert checked.stderr.splitlines()[1].strip() == where  # as validate says it
    assert problem["text"] == "  mix: {chx1x1: 8}"
    assert broken["stale"] is True and broken["model"] == changed["model"]  # the last good one


def test_a_hostile_spec_is_answered_with_its_problems(project):
    (project / "hostile.yaml").write_text(HOSTILE)
    server = start(project, "hostile.yaml")
    try:
        data = server.model()
        (problem,) = data["problems"]
        assert (problem["file"], problem["line"], problem["key"]) == ("hostile.yaml", 5, "blocks.0.repeat")
        assert "over the budget" in problem["message"] and data["model"] is None
        assert server.request("GET", "/")[0] == 200  # still answering
    finally:
        code, err = stop(server)
    assert code == 0 and "Traceback" not in err


def test_ctrl_c_stops_cleanly_and_leaves_no_file(project):
    before = sorted(os.listdir(project))
    server = start(project, "net.yaml")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/events", headers={"Host": f"127.0.0.1:{server.port}"})
    assert connection.getresponse().status == 200  # an open event stream does not hold it up
    code, err = stop(server)
    connection.close()
    assert code == 0 and err == ""
    assert sorted(os.listdir(project)) == before


def slow_build(request: BuildRequest) -> str:
    """A build that takes as long as its spec's name says (seconds)."""
    time.sleep(float(request.spec))
    return request.spec


def test_a_build_over_the_time_limit_is_stopped_and_the_next_one_runs():
    worker = Worker(build=slow_build, timeout_s=1.0)
    try:
        started = time.monotonic()
        result = worker.run(BuildRequest(spec="30"))
        assert time.monotonic() - started < 5
        (problem,) = result.problems
        assert problem["message"] == "took longer than 1 s to load and lower; stopped"
        assert worker.run(BuildRequest(spec="0")) == "0"  # a fresh process answers
    finally:
        worker.stop()


@pytest.mark.slow  # a server of its own and two rebuilds: CI runs it
def test_compare_follows_either_file(project):
    """``serve base.yaml --compare net.yaml`` draws net.yaml marked against base.yaml; a save of
    either redraws (the marks as render --compare makes them)."""
    from archbuilder.render.compare import compare_marks

    def marks() -> dict:
        old, new = (archbuilder.load_spec(project / name) for name in ("base.yaml", "net.yaml"))
        return compare_marks(old, new)

    with serving(project, "base.yaml", "--compare", "net.yaml") as server:
        first = server.model()
        (project / "net.yaml").write_text(NET.replace("ch1x1: 8", "ch1x1: 24"))
        changed = server.wait_for(lambda data: data["version"] > first["version"])
        expected = marks()
        assert changed["model"]["compare"] == expected["compare"]
        statuses = {node["id"]: node.get("status") for node in changed["model"]["body"]}
        assert statuses["mix"] == expected["status"]["mix"] == "changed"
        (project / "base.yaml").write_text(SMALL.read_text().replace("out: 16", "out: 32"))
        again = server.wait_for(lambda data: data["version"] > changed["version"])
        assert (
            again["model"]["total"]["params"]
            == archbuilder.summarize(archbuilder.load_spec(project / "net.yaml")).params
        )


@pytest.mark.slow  # a fresh interpreter: CI runs it
def test_without_the_extra_one_line_names_it(tmp_path):
    from .test_extras import assert_one_line, without

    (tmp_path / "net.yaml").write_text(SMALL.read_text())
    result = without(tmp_path, "starlette", command=["-m", "archbuilder", "serve", "net.yaml", "--port", "0"])
    assert_one_line(result, "archbuild", "starlette", "serve")
    assert result.stdout == ""
