"""The netstring port speaks the original protocol: netcat, the book's Twisted client."""

import socket

from conftest import ROOT, run
import xform_client


def test_book_transform_test_prints_the_lowercased_poem(server):
    out = run([f"{ROOT}/clients/netcat/transform-test", "-p", str(server.netstring_port)])
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"15:here is my poem,\n"


def test_book_one_liner_without_half_close_ends_because_the_server_closes(server):
    # The book ran `netcat -q -1`: netcat never half-closes and waits for the server's close.
    out = run(["sh", "-c", f'echo -n "27:cummingsify.HERE IS MY POEM," | nc -q -1 127.0.0.1 {server.netstring_port}'],
              timeout=20)
    assert out.returncode == 0
    assert out.stdout == b"15:here is my poem,"


def test_transform_test_works_over_bash_dev_tcp(server):
    out = run([f"{ROOT}/clients/netcat/transform-test", "-p", str(server.netstring_port), "upper", "quiet"],
              env={"XFORM_NETCAT": "none"})
    assert out.stdout == b"5:QUIET,\n"


def test_the_books_twisted_client_gets_the_transformed_poem(server):
    out = run(["python3", f"{ROOT}/clients/python/twisted_client.py", str(server.netstring_port),
               "cummingsify"], input="HERE IS MY POEM\nSECOND LINE\n".encode())
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"here is my poem\nsecond line\n"


def test_the_books_twisted_client_sees_a_close_without_reply_for_unknown_transforms(server):
    out = run(["python3", f"{ROOT}/clients/python/twisted_client.py", str(server.netstring_port),
               "nosuch", "x"])
    assert out.returncode == 1
    assert out.stdout == b""


def test_python_client_extended_form_keeps_the_connection_alive(server):
    with xform_client.NetstringClient(port=server.netstring_port) as c:
        assert c.xform("upper", "one") == "ONE"
        assert c.xform("reverse", "stressed") == "desserts"
        assert "cummingsify" in c.list()
        try:
            c.xform("nosuch", "x")
            raise AssertionError("expected a typed error")
        except xform_client.TransformError as e:
            assert e.code == "unknown_transform"
        assert c.xform("cummingsify", "STILL OPEN") == "still open"


def test_python_client_original_form(server):
    assert xform_client.xform_original("cummingsify", "ΣΊΣΥΦΟΣ", port=server.netstring_port) == "σίσυφος"


def test_python_client_line_port_round_trips_multi_line_text(server):
    text = "FIRST\n\nTHIRD, with a trailing newline\n"
    with xform_client.LineClient(port=server.line_port) as c:
        assert c.xform("cummingsify", text) == text.lower()
        assert c.xform("reverse", "mañana") == "anañam"


def test_line_port_one_liners_with_netcat(server):
    port = server.line_port
    out = run(["sh", "-c", f"printf 'upper hello\\nreverse stressed\\n' | nc -N 127.0.0.1 {port}"])
    assert out.stdout == b"OK HELLO\nOK desserts\n"
    out = run(["sh", "-c", f"printf 'cummingsify\\nLINE ONE\\n\\nLINE THREE\\n.\\n' | nc -N 127.0.0.1 {port}"])
    assert out.stdout == b"OK\nline one\n\nline three\n.\n"
    out = run([f"{ROOT}/clients/netcat/line-examples.sh", str(port)])
    assert out.returncode == 0, out.stderr
    assert b"OK HELLO\n" in out.stdout and b"ERR unknown_transform" in out.stdout


def test_a_stalled_client_does_not_block_others(server):
    stalled = socket.create_connection(("127.0.0.1", server.netstring_port))
    try:
        stalled.sendall(b"5:")  # and nothing more
        assert xform_client.xform_original("upper", "still served", port=server.netstring_port) == "STILL SERVED"
    finally:
        stalled.close()


def test_python_client_cli_on_both_ports(server):
    cli = f"{ROOT}/clients/python/xform_client.py"
    out = run(["python3", cli, "--port", str(server.netstring_port), "upper", "from the cli"])
    assert (out.returncode, out.stdout) == (0, b"FROM THE CLI")
    out = run(["python3", cli, "--line", "--port", str(server.line_port), "reverse"], input=b"two\nlines\n")
    assert (out.returncode, out.stdout) == (0, b"\nsenil\nowt")
    out = run(["python3", cli, "--original", "--port", str(server.netstring_port), "cummingsify", "OLD FORM"])
    assert (out.returncode, out.stdout) == (0, b"old form")
    out = run(["python3", cli, "--port", str(server.netstring_port), "nosuch", "x"])
    assert out.returncode == 1 and b"unknown_transform" in out.stderr
