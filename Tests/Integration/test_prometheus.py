"""A real Prometheus server scrapes the HTTP port every second; the test reads back, through
Prometheus' query API, the request counter for the requests it made."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse

import pytest

PROMETHEUS = shutil.which("prometheus")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return json.loads(r.read())
    finally:
        c.close()


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (Tests/run-all.sh installs it)")
def test_prometheus_scrapes_the_request_counter(start_server, tmp_path):
    server = start_server("--netstring-port", "0", "--line-port", "0", "--http-port", "0")
    port = server.http_port
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: xform\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n")
    prom = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    try:
        def target_up():
            targets = get_json(prom_port, "/api/v1/targets")["data"]["activeTargets"]
            return any(t["health"] == "up" and t["scrapeUrl"].endswith(f":{port}/metrics") for t in targets)
        wait_until(target_up, 60, "Prometheus to report the target up")

        made = 7
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(made):
            c.request("POST", "/transform/rot13", body=f"poem {i}".encode())
            r = c.getresponse()
            assert r.status == 200 and r.read()
        c.close()

        query = 'xform_requests_total{transform="rot13",port="http",outcome="ok"}'
        def scraped_value():
            data = get_json(prom_port, "/api/v1/query?query=" + urllib.parse.quote(query))["data"]["result"]
            return data and float(data[0]["value"][1]) == made and data
        result = wait_until(scraped_value, 30, f"{query} == {made} in Prometheus")
        assert result[0]["metric"]["job"] == "xform"
    finally:
        prom.terminate()
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait(10)
