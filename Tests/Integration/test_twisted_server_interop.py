"""The xform CLI (and the Python client) against the book's Twisted server, which speaks only
the original protocol: the client must fall back to the original form by itself."""

import os
import re
import signal
import subprocess

import pytest

from conftest import ROOT, binary, run
import xform_client


@pytest.fixture
def twisted_server():
    proc = subprocess.Popen(["python3", f"{ROOT}/clients/python/twisted_server.py", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"Serving transforms on 127\.0\.0\.1:(\d+)", line)
        assert m, f"unexpected first line from the Twisted server: {line!r}"
        yield int(m.group(1))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


def test_xform_cli_transforms_through_the_original_twisted_server(twisted_server):
    out = run([binary("xform"), "--port", str(twisted_server), "cummingsify"],
              input="HERE IS MY POEM\nAND ANOTHER LINE\n".encode())
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"here is my poem\nand another line\n"


def test_xform_cli_reports_close_without_reply_from_the_original_server(twisted_server):
    out = run([binary("xform"), "--port", str(twisted_server), "--retries", "1", "upper"], input=b"x")
    assert out.returncode == 76, (out.returncode, out.stderr)
    assert out.stdout == b""
    assert len(out.stderr.splitlines()) == 1


def test_python_client_original_form_against_the_original_server(twisted_server):
    assert xform_client.xform_original("cummingsify", "ΣΊΣΥΦΟΣ", port=twisted_server) == "σίσυφος"
