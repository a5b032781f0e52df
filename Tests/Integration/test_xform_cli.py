"""The xform command as a process: exact output, argument order, exit statuses (sysexits).

Servers are the Python fake of test_client_faults.py, so these tests do not depend on the
transform-server executable. Every process is stopped by PID; every wait is bounded.
"""

from test_client_faults import FakeServer, free_port, xform


def test_help_documents_the_exit_statuses():
    r = xform("--help")
    assert r.returncode == 0
    text = r.stdout.decode()
    assert text.startswith("OVERVIEW: Transform text with a transform server.")
    assert "USAGE: xform [<options>] <transform> [<file> ...]" in text
    for code in ("64 (EX_USAGE)", "65 (EX_DATAERR)", "66 (EX_NOINPUT)", "69 (EX_UNAVAILABLE)",
                 "75 (EX_TEMPFAIL)", "76 (EX_PROTOCOL)"):
        assert code in text


def test_stdin_is_transformed_and_printed_exactly_without_an_added_newline():
    server = FakeServer()
    try:
        r = xform("-p", str(server.port), "upper", input="héllo\nwörld".encode())
        assert (r.returncode, r.stdout, r.stderr) == (0, "HÉLLO\nWÖRLD".encode(), b"")
    finally:
        server.kill()


def test_several_files_are_sent_concurrently_and_printed_in_argument_order(tmp_path):
    server = FakeServer(delay=0.3)
    try:
        paths = []
        for i in range(4):
            p = tmp_path / ("in%d" % i)
            p.write_text("abc%d " % i)
            paths.append(str(p))
        r = xform("-p", str(server.port), "reverse", *paths)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b" 0cba 1cba 2cba 3cba"
        # Sent concurrently: all four requests reached the server before the first reply (0.3 s each).
        assert len(server.requests) == 4
    finally:
        server.kill()


def test_a_missing_file_is_reported_and_the_others_are_still_printed(tmp_path):
    server = FakeServer()
    try:
        good = tmp_path / "good"
        good.write_text("ok")
        r = xform("-p", str(server.port), "upper", str(good), str(tmp_path / "missing"))
        assert r.returncode == 66
        assert r.stdout == b"OK"
        assert r.stderr.decode() == "xform: cannot read '%s': No such file or directory\n" % (tmp_path / "missing")
    finally:
        server.kill()


def test_usage_errors_exit_64():
    r = xform("--bogus", "upper")
    assert r.returncode == 64
    assert r.stderr.decode().startswith("Error: Unknown option '--bogus'\n")


def test_an_unreachable_server_exits_69_with_one_line():
    port = free_port()
    r = xform("--no-retry", "-p", str(port), "upper", input=b"x")
    assert r.returncode == 69
    assert r.stderr.decode() == "xform: cannot reach the server at 127.0.0.1:%d: connection refused\n" % port


def test_no_reply_within_the_timeout_exits_75():
    server = FakeServer(delay=3.0)
    try:
        r = xform("--no-retry", "--timeout", "200ms", "-p", str(server.port), "upper", input=b"x")
        assert r.returncode == 75
        assert r.stderr == b"xform: no reply from the server within 200ms\n"
    finally:
        server.kill()


def test_list_prints_the_transform_names_one_per_line():
    server = FakeServer()
    try:
        r = xform("-p", str(server.port), "--list")
        assert (r.returncode, r.stdout) == (0, b"cummingsify\nreverse\nupper\n")
    finally:
        server.kill()


def test_input_that_is_not_utf8_exits_65_without_contacting_the_server():
    server = FakeServer()
    try:
        r = xform("-p", str(server.port), "upper", input=b"\xff\xfe")
        assert r.returncode == 65
        assert r.stderr == b"xform: the input is not valid UTF-8\n"
        assert server.requests == []
    finally:
        server.kill()
