"""transform-server as a Unix daemon: --daemon and its status pipe, the pidfile, log files
(size rotation, SIGUSR1 rotation, SIGHUP reopen), systemd readiness (NOTIFY_SOCKET), socket
activation (systemd-socket-activate) and the privilege drop.

Only 127.0.0.1; every wait is bounded; every process started here is stopped here, by PID.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import LISTENING, ROOT, Server, binary, run, server_command
import xform_client


# --- helpers -----------------------------------------------------------------------------------

def wait_until(predicate, timeout=20.0, what="condition", poke=None):
    """Polls ``predicate`` (every 50 ms, calling ``poke`` first if given) until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        if poke:
            poke()
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def process_gone(pid):
    """True when ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" in line.split()[1]
    except FileNotFoundError:
        return True
    return False


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def ports_in(text):
    return {m.group(1): int(m.group(3)) for m in LISTENING.finditer(text)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_ids(pid, key):
    """The real, effective, saved and filesystem ids from /proc/PID/status (``Uid`` or ``Gid``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {key} line for pid {pid}")


def spawn(argv, env=None, cwd=ROOT, **popen):
    """A Server (see conftest) for an arbitrary command line, e.g. under systemd-socket-activate;
    ``popen`` goes to Popen (pass_fds, preexec_fn...)."""
    s = Server.__new__(Server)
    s.args = argv
    s.lines = []
    s.cond = threading.Condition()
    s.ports = {}
    s.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})}, cwd=cwd, **popen)
    s.reader = threading.Thread(target=s._read, daemon=True)
    s.reader.start()
    return s


@pytest.fixture
def daemons():
    """Records the pids of daemons (which are not our children); any still alive is killed."""
    pids = []
    yield pids
    for pid in pids:
        if not process_gone(pid):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: process_gone(pid), 10, f"pid {pid} to die")


def launch_daemon(tmp_path, *extra):
    pidfile = tmp_path / "ts.pid"
    out = run(server_command("--daemon", "--netstring-port", "0", "--line-port", "0", "--pidfile", str(pidfile),
               "--rundir", str(tmp_path), *extra), timeout=30)
    return out, pidfile


def stop_daemon(pid):
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: process_gone(pid), 30, f"daemon {pid} to exit")


# --- --daemon ----------------------------------------------------------------------------------

def test_daemon_launcher_returns_0_once_serving_with_pidfile_and_log(tmp_path, daemons):
    out, pidfile = launch_daemon(tmp_path)
    assert out.returncode == 0, out.stderr
    # Issue 11: the launcher says where the daemon runs and logs (it was silent before).
    pid = int(pidfile.read_text())
    assert out.stdout.decode() == (f"transform-server: started in the background (pid {pid}), "
                                   f"logging to {tmp_path / 'transform-server.log'}\n")
    assert out.stderr == b""
    daemons.append(pid)
    assert pid != os.getpid() and not process_gone(pid)
    # The launcher only returned after the daemon reported ready: the ports are already logged.
    log = read(tmp_path / "transform-server.log")
    ports = ports_in(log)
    assert set(ports) == {"netstring", "line"}, log
    assert f"starting (pid {pid})" in log
    assert xform_client.xform_original("cummingsify", "HERE IS MY POEM", port=ports["netstring"]) == "here is my poem"
    with xform_client.LineClient(port=ports["line"]) as c:
        assert c.xform("upper", "daemon") == "DAEMON"
    # A new session: the daemon is not in our process group, and its stdio is /dev/null.
    assert os.getsid(pid) == pid
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"

    # twistd's daemon umask (0077) applies to the files the daemon creates.
    assert stat.S_IMODE(os.stat(tmp_path / "transform-server.log").st_mode) == 0o600

    stop_daemon(pid)
    assert not pidfile.exists()
    assert read(tmp_path / "transform-server.log").rstrip().endswith("stopped")


def test_second_instance_with_the_same_pidfile_is_refused_with_78(tmp_path, daemons):
    out, pidfile = launch_daemon(tmp_path)
    assert out.returncode == 0, out.stderr
    pid = int(pidfile.read_text())
    daemons.append(pid)

    again, _ = launch_daemon(tmp_path)
    assert again.returncode == 78
    assert f"already running (pid {pid})".encode() in again.stderr
    # In the foreground too, and the running daemon's pidfile is left alone.
    fg = run(server_command("--netstring-port", "0", "--line-port", "0", "--pidfile", str(pidfile)), timeout=30)
    assert fg.returncode == 78
    assert f"already running (pid {pid})".encode() in fg.stderr
    assert int(pidfile.read_text()) == pid and not process_gone(pid)
    stop_daemon(pid)
    assert not pidfile.exists()


@pytest.mark.parametrize("args, status, message", [
    (["--netstring-port", "abc"], 64, b"Error: The value 'abc' is invalid for '--netstring-port <port>'"),
    (["--logfile", "-"], 64, b"a daemon cannot log to standard output"),
    (["--bogus"], 64, b"Error: Unknown option '--bogus'"),
])
def test_bad_options_in_daemon_mode_fail_in_the_launcher(tmp_path, args, status, message):
    out, pidfile = launch_daemon(tmp_path, *args)
    assert out.returncode == status
    assert message in out.stderr
    assert not pidfile.exists()


def test_bad_config_file_in_daemon_mode_exits_78(tmp_path):
    conf = tmp_path / "server.conf"
    conf.write_text("line-port = 0\nbogus = 1\n")
    out, pidfile = launch_daemon(tmp_path, "--config", str(conf))
    assert out.returncode == 78
    assert f"Error: {conf}:2: Unknown key 'bogus'".encode() in out.stderr
    assert not pidfile.exists()


def test_daemon_start_up_failure_reaches_the_launcher_through_the_status_pipe(tmp_path, start_server):
    busy = start_server("--netstring-port", "0", "--line-port", "0")
    out, pidfile = launch_daemon(tmp_path, "--netstring-port", str(busy.netstring_port))
    assert out.returncode == 71, out.stderr
    assert f"cannot listen for netstring requests on 127.0.0.1:{busy.netstring_port}".encode() in out.stderr
    assert b"Address already in use" in out.stderr
    assert not pidfile.exists()
    # The daemon logged why before it exited.
    assert "cannot start: cannot listen for netstring requests" in read(tmp_path / "transform-server.log")


def test_foreground_bind_failure_exits_71_with_a_clear_message(start_server):
    busy = start_server("--netstring-port", "0", "--line-port", "0")
    out = run(server_command("--netstring-port", "0", "--line-port", str(busy.line_port)), timeout=30)
    assert out.returncode == 71
    assert f"transform-server: cannot listen for line requests on 127.0.0.1:{busy.line_port}".encode() in out.stderr


def test_sigterm_in_the_foreground_removes_the_pidfile_and_exits_0(tmp_path, start_server):
    pidfile = tmp_path / "fg.pid"
    s = start_server("--netstring-port", "0", "--line-port", "0", "--pidfile", str(pidfile))
    assert int(pidfile.read_text()) == s.proc.pid
    assert s.stop() == 0
    assert not pidfile.exists()


def test_relative_pidfile_and_logfile_are_resolved_before_chdir(tmp_path):
    start, rundir = tmp_path / "start", tmp_path / "run"
    start.mkdir()
    rundir.mkdir()
    s = spawn(server_command("--netstring-port", "0", "--line-port", "0", "--pidfile", "ts.pid", "--logfile", "ts.log",
               "--rundir", "../run"), cwd=str(start))
    try:
        # Relative to where it started, not to --rundir.
        pidfile, logfile = start / "ts.pid", start / "ts.log"
        wait_until(lambda: len(ports_in(read(logfile))) == 2, 30, "listening lines in the log file")
        assert os.path.realpath(f"/proc/{s.proc.pid}/cwd") == str(rundir)
        assert int(pidfile.read_text()) == s.proc.pid
        assert not (rundir / "ts.pid").exists()
        assert s.stop() == 0
        assert not pidfile.exists()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


# --- options and log formats -------------------------------------------------------------------

def test_limits_from_the_command_line_reach_the_server(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--max-request-bytes", "10")
    with xform_client.NetstringClient(port=s.netstring_port) as c:
        assert c.xform("upper", "abc") == "ABC"
        with pytest.raises(xform_client.TransformError) as e:
            c.xform("upper", "abcdefghijk")
        assert e.value.code == "too_large"
    assert s.stop() == 0


def test_config_file_options_apply_and_the_command_line_wins(tmp_path, start_server):
    conf = tmp_path / "server.conf"
    conf.write_text("# test\nnetstring-port = 1\nline-port = 0\nmax-request-bytes = 10\nlog-level = debug\n")
    s = start_server("--config", str(conf), "--netstring-port", "0")
    assert s.netstring_port != 1
    with xform_client.NetstringClient(port=s.netstring_port) as c:
        assert c.xform("upper", "abc") == "ABC"  # extended form seen: errors are replied, not just closed
        with pytest.raises(xform_client.TransformError) as e:
            c.xform("upper", "abcdefghijk")
        assert e.value.code == "too_large"
    assert s.stop() == 0


def test_log_level_notice_still_shows_the_listening_lines(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--log-level", "notice")
    assert " notice: listening for netstring requests on 127.0.0.1:" in s.output()
    assert s.stop() == 0


def test_journal_format_prefixes_syslog_priorities(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--log-format", "journal")
    assert f"<5>[transform-server] listening for netstring requests on 127.0.0.1:{s.netstring_port}" in s.output()
    assert s.stop() == 0
    assert all(line.startswith("<") for line in s.lines), s.output()


def test_journal_format_is_detected_when_stderr_is_the_journal_stream():
    r, w = os.pipe()
    st = os.fstat(w)
    proc = subprocess.Popen(server_command("--netstring-port", "0", "--line-port", "0"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=w,
                            env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            first = f.readline()
            assert first.startswith(b"<5>[transform-server] transform-server "), first
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# --- log files ---------------------------------------------------------------------------------

def file_server(start_server, tmp_path, *extra):
    log = tmp_path / "ts.log"
    s = start_server("--netstring-port", "0", "--line-port", "0", "--logfile", str(log), *extra, wait_ports=False)
    wait_until(lambda: len(ports_in(read(log))) == 2, 30, "listening lines in the log file")
    assert s.output() == ""  # everything went to the file
    return s, log


def test_log_file_rotates_by_size_and_keeps_max_files(tmp_path, start_server):
    s, log = file_server(start_server, tmp_path, "--log-max-size", "1500", "--log-max-files", "2")
    # Each SIGUSR2 logs a stats report of several lines; keep asking until two rotations happened.
    sent = []

    def poke():
        if len(sent) < 200:
            s.signal(signal.SIGUSR2)
            sent.append(1)

    wait_until(lambda: os.path.exists(f"{log}.2"), 30, "a second rotated file", poke=poke)
    assert s.stop() == 0
    assert not os.path.exists(f"{log}.3")
    for p in (log, f"{log}.1", f"{log}.2"):
        assert 0 < os.path.getsize(p) <= 1500, p
    assert "stats: uptime_seconds" in read(f"{log}.1")


def test_sigusr1_rotates_the_log_file(tmp_path, start_server):
    s, log = file_server(start_server, tmp_path)
    s.signal(signal.SIGUSR1)
    wait_until(lambda: "log file rotated" in read(log), 20, "the rotation line in the new file")
    assert "listening for netstring requests" in read(f"{log}.1")
    assert "listening for netstring requests" not in read(log)
    assert s.proc.poll() is None
    assert s.stop() == 0


def test_sighup_reopens_the_log_file_after_it_was_moved(tmp_path, start_server):
    s, log = file_server(start_server, tmp_path)
    moved = tmp_path / "ts.log.moved"
    os.rename(log, moved)
    s.signal(signal.SIGHUP)
    wait_until(lambda: "reopened the log file" in read(log), 20, "the reopen line in a new file")
    assert "reopened the log file" not in read(moved)
    assert "listening for line requests" in read(moved)
    assert s.stop() == 0
    assert read(log).rstrip().endswith("stopped")


# --- systemd -----------------------------------------------------------------------------------

def test_ready_is_notified_once_the_ports_accept_and_stopping_on_sigterm(tmp_path, start_server):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(30)
        s = start_server("--netstring-port", "0", "--line-port", "0", env={"NOTIFY_SOCKET": path}, wait_ports=False)
        ready = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in ready.split("\n"))
        assert fields["READY"] == "1"
        assert fields["MAINPID"] == str(s.proc.pid)
        # READY=1 came after both ports were listening: they accept and answer right now.
        m = re.fullmatch(r"serving netstring=127\.0\.0\.1:(\d+) line=127\.0\.0\.1:(\d+)", fields["STATUS"])
        assert m, fields["STATUS"]
        assert xform_client.xform_original("upper", "ready", port=int(m.group(1))) == "READY"
        with xform_client.LineClient(port=int(m.group(2))) as c:
            assert c.xform("upper", "ready") == "READY"
        s.signal(signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1"
        assert s.proc.wait(30) == 0


def test_abstract_notify_socket_address(start_server):
    name = f"xform-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(30)
        s = start_server("--netstring-port", "0", "--line-port", "0", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096).startswith(b"READY=1\n")
        assert s.stop() == 0


SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.mark.skipif(not SOCKET_ACTIVATE, reason="systemd-socket-activate is not installed")
@pytest.mark.parametrize("fdnames, order", [
    (["--fdname=netstring:line"], ("netstring", "line")),
    (["--fdname=line:netstring"], ("line", "netstring")),  # matched by name, not position
    ([], ("netstring", "line")),  # no names: by position
])
def test_socket_activation_adopts_the_passed_sockets(fdnames, order):
    p1, p2 = free_port(), free_port()
    # The ports given to transform-server itself are unusable (1): it must use the passed sockets.
    s = spawn([SOCKET_ACTIVATE, "-l", f"127.0.0.1:{p1}", "-l", f"127.0.0.1:{p2}", *fdnames,
               *server_command("--netstring-port", "1", "--line-port", "1")])
    try:
        # systemd-socket-activate execs the server on the first connection.
        port = {order[0]: p1, order[1]: p2}
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", p1), timeout=30)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        conn.close()
        s.wait_for(lambda: len(s.ports) == 2, 30, "both listening lines")
        assert s.ports == port
        assert "socket activation: 2 socket(s) passed by systemd" in s.output()
        assert xform_client.xform_original("upper", "activated", port=port["netstring"]) == "ACTIVATED"
        with xform_client.LineClient(port=port["line"]) as c:
            assert c.xform("reverse", "abc") == "cba"
        assert s.stop() == 0
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


# --- privileges --------------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_user_nobody_drops_every_uid_and_gid_after_binding(start_server):
    import pwd
    nobody = pwd.getpwnam("nobody")
    s = start_server("--netstring-port", "0", "--line-port", "0", "--user", "nobody")
    assert status_ids(s.proc.pid, "Uid") == [nobody.pw_uid] * 4
    assert status_ids(s.proc.pid, "Gid") == [nobody.pw_gid] * 4
    with open(f"/proc/{s.proc.pid}/status") as f:
        groups = next(l for l in f if l.startswith("Groups:")).split()[1:]
    assert 0 not in [int(g) for g in groups]
    assert f"switched to user nobody (uid {nobody.pw_uid})" in s.output()
    assert xform_client.xform_original("upper", "unprivileged", port=s.netstring_port) == "UNPRIVILEGED"
    assert s.stop() == 0


def test_user_switch_without_root_exits_77_before_binding():
    argv = server_command("--netstring-port", "0", "--line-port", "0", "--user", "root")
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv is missing: cannot run unprivileged")
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    out = run(argv, timeout=30)
    assert out.returncode == 77, out.stderr
    assert b"only root can change user or group (are you root?)" in out.stderr
    assert b"listening" not in out.stderr


def test_unknown_user_exits_67_before_binding():
    out = run(server_command("--netstring-port", "0", "--line-port", "0", "--user", "no-such-user-xform"), timeout=30)
    assert out.returncode == 67
    assert b"unknown user 'no-such-user-xform'" in out.stderr
    assert b"listening" not in out.stderr
