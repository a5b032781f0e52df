"""The deployment files in deploy/ are valid for the real tools that read them."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (Tests/run-all.sh installs it)")
def test_haproxy_config_is_valid_with_defaults_and_overrides():
    cfg = os.path.join(ROOT, "deploy", "haproxy", "haproxy.cfg")
    out = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    env = dict(os.environ, XFORM_S1_HOST="127.0.0.1", XFORM_S1_HTTP_PORT="20003", XFORM_NETSTRING_PORT="20001")
    out = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stdout + out.stderr


def test_systemd_units_live_in_deploy():
    units = sorted(os.listdir(os.path.join(ROOT, "deploy", "systemd")))
    assert units == [
        "README.md", "transform-server-line.socket", "transform-server-netstring.socket", "transform-server.service"]
    assert not os.path.exists(os.path.join(ROOT, "Sources", "transform-server", "systemd"))
