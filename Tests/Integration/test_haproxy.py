"""Three transform-servers behind a real HAProxy, configured by deploy/haproxy/haproxy.cfg.

`xform` calls loop through the balancer while one server is SIGKILLed, another is stopped
gracefully with SIGTERM, and both are restarted: no call may fail. The test prints how long
each transition took (run with -s to see it)."""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import ROOT, Server, binary

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def server_states(stats_port):
    """{server name: status} of the netstring backend, from HAProxy's CSV status page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/;csv", timeout=5) as r:
        lines = r.read().decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("pxname") == "netstring_servers" and row.get("svname", "").startswith("s"):
            out[row["svname"]] = row["status"]
    return out


def wait_state(stats_port, name, want, timeout=30.0):
    """Waits until server `name` has a status starting with `want`; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if server_states(stats_port).get(name, "").startswith(want):
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{name} did not become {want} within {timeout}s: {server_states(stats_port)}")


class CallLoop:
    """Runs `xform upper` through the balancer in a loop, counting calls and failures."""

    def __init__(self, port):
        self.port = port
        self.calls = 0
        self.failures = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            text = f"call {i}".encode()
            p = subprocess.run([binary("xform"), "--port", str(self.port), "--timeout", "5s", "upper"],
                               input=text, capture_output=True, timeout=60)
            self.calls += 1
            if p.returncode != 0 or p.stdout != text.upper():
                self.failures.append((i, p.returncode, p.stdout, p.stderr.decode(errors="replace")))

    def finish(self):
        self.stop.set()
        self.thread.join(120)


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (Tests/run-all.sh installs it)")
def test_fleet_behind_haproxy_survives_kill_drain_and_restart(tmp_path):
    ports = free_ports(12)
    front_netstring, front_line, stats_port = ports[0], ports[1], ports[2]
    server_ports = [ports[3 + 3 * i: 6 + 3 * i] for i in range(3)]  # netstring, line, http per server
    env = dict(os.environ, XFORM_BIND_ADDRESS="127.0.0.1", XFORM_NETSTRING_PORT=str(front_netstring),
               XFORM_LINE_PORT=str(front_line), XFORM_STATS_PORT=str(stats_port))
    for i, (n, l, h) in enumerate(server_ports, 1):
        env.update({f"XFORM_S{i}_HOST": "127.0.0.1", f"XFORM_S{i}_NETSTRING_PORT": str(n),
                    f"XFORM_S{i}_LINE_PORT": str(l), f"XFORM_S{i}_HTTP_PORT": str(h)})

    def start(i):
        n, l, h = server_ports[i]
        return Server("--netstring-port", str(n), "--line-port", str(l), "--http-port", str(h),
                      "--drain-delay", "3s")

    servers = [start(i) for i in range(3)]
    haproxy = subprocess.Popen([HAPROXY, "-f", os.path.join(ROOT, "deploy", "haproxy", "haproxy.cfg")],
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=open(tmp_path / "haproxy.log", "wb"))
    loop = None
    times = {}
    try:
        for name in ("s1", "s2", "s3"):
            wait_state(stats_port, name, "UP")
        loop = CallLoop(front_netstring)
        time.sleep(1.5)
        assert loop.calls > 0 and not loop.failures, loop.failures

        # SIGKILL s1: HAProxy's retries and the client's cover the gap until the check removes it.
        servers[0].proc.kill()
        servers[0].proc.wait(10)
        times["kill: s1 marked DOWN"] = wait_state(stats_port, "s1", "DOWN")

        # SIGTERM s2: /readyz turns 503 at once, HAProxy takes it out, then it drains and exits.
        t0 = time.monotonic()
        servers[1].signal(signal.SIGTERM)
        times["sigterm: s2 marked DOWN (readyz 503)"] = wait_state(stats_port, "s2", "DOWN")
        assert servers[1].proc.wait(30) == 0, servers[1].output()
        times["sigterm: s2 exited"] = time.monotonic() - t0
        time.sleep(1)
        calls_on_one = loop.calls

        # Restart both: back in rotation.
        t0 = time.monotonic()
        servers[0] = start(0)
        servers[1] = start(1)
        wait_state(stats_port, "s1", "UP")
        times["restart: s1 back UP"] = time.monotonic() - t0
        wait_state(stats_port, "s2", "UP")
        times["restart: s2 back UP"] = time.monotonic() - t0
        time.sleep(1.5)
        loop.finish()
        print("\nHAProxy transitions (seconds):")
        for k, v in times.items():
            print(f"  {k}: {v:.2f}")
        print(f"  calls: {loop.calls} ({calls_on_one} before the restart), failed: {len(loop.failures)}")
        assert loop.calls > calls_on_one > 0
        assert not loop.failures, loop.failures[:5]
    finally:
        if loop:
            loop.finish()
        haproxy.terminate()
        try:
            haproxy.wait(10)
        except subprocess.TimeoutExpired:
            haproxy.kill()
        for s in servers:
            if s.proc.poll() is None:
                s.stop(signal.SIGKILL)
