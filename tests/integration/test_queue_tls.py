"""A TLS-only Redis reached through stunnel (Debian 12's hiredis has no TLS):
redis-server listens only on a TLS port with a certificate from a test CA;
a tunnel made from deploy/stunnel-redis.conf (verification on) gives the
coordinator and a worker a local plaintext port. Jobs go through the queue
over it. A tunnel that trusts another CA refuses the server: its log says
"certificate verify failed", the worker says the connection closed before
Redis answered and claims nothing. The shipped unit verifies and scores
well with systemd-analyze."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import (SOURCE, Api, Harness, free_port, main, port_open,  # noqa: E402
                         wait_until)

TOKEN = "test-token"
WORKER = {"STREAMSCALE_LEASE_SECONDS": "5", "STREAMSCALE_HEARTBEAT_MS": "300",
          "STREAMSCALE_POLL_MS": "200", "STREAMSCALE_SLOTS": "4"}


def make_ca(h, name):
    key, crt = h.path(name + ".key"), h.path(name + ".crt")
    subprocess.check_call(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                           "-out", crt, "-days", "2", "-subj", "/CN=%s" % name],
                          stderr=subprocess.DEVNULL)
    return key, crt


def make_server_cert(h, ca_key, ca_crt):
    key, csr, crt = h.path("server.key"), h.path("server.csr"), h.path("server.crt")
    ext = h.path("server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    subprocess.check_call(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                           "-out", csr, "-subj", "/CN=localhost"], stderr=subprocess.DEVNULL)
    subprocess.check_call(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                           "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext],
                          stderr=subprocess.DEVNULL)
    return key, crt


def tunnel(h, name, local, remote, ca):
    """deploy/stunnel-redis.conf with this test's ports, CA and host name."""
    with open(os.path.join(SOURCE, "deploy", "stunnel-redis.conf")) as f:
        text = f.read()
    text = text.replace("accept = 127.0.0.1:6380", "accept = 127.0.0.1:%d" % local)
    text = text.replace("connect = redis.example.net:6380", "connect = 127.0.0.1:%d" % remote)
    text = text.replace("/etc/streamscale/redis-ca.pem", ca)
    text = re.sub(r"redis\.example\.net", "localhost", text)
    assert "verifyChain = yes" in text and "checkHost = localhost" in text
    conf = h.path(name + ".conf")
    with open(conf, "w") as f:
        f.write(text)
    h.start(name, ["stunnel4", conf])
    wait_until(lambda: port_open(local), 20, "stunnel %s on %d" % (name, local))


def test_queue_tls():
    with Harness("queue-tls") as h:
        ca_key, ca_crt = make_ca(h, "test-ca")
        _, other_ca = make_ca(h, "other-ca")
        srv_key, srv_crt = make_server_cert(h, ca_key, ca_crt)
        tls_port = free_port()
        h.start("redis", ["redis-server", "--port", "0", "--tls-port", str(tls_port), "--bind",
                          "127.0.0.1", "--tls-cert-file", srv_crt, "--tls-key-file", srv_key,
                          "--tls-ca-cert-file", ca_crt, "--tls-auth-clients", "no", "--save", "",
                          "--appendonly", "no", "--dir", h.tmp])
        wait_until(lambda: port_open(tls_port), 20, "redis TLS port")

        local = free_port()
        tunnel(h, "tunnel", local, tls_port, ca_crt)
        url = h.coordinator(redis_port=local, token=TOKEN,
                            extra={"STREAMSCALE_REAP_INTERVAL_MS": "200"})
        api = Api(url, TOKEN, harness=h)
        h.queue_worker("qw", local, extra=WORKER)
        jobs = [api.submit({"source": "file:///tls/%d.mp4" % i, "metadata": {"sleep_ms": 50}})
                for i in range(20)]
        for j in jobs:
            assert api.wait_state(j["id"], "completed", 60)["result"]["worker"] == "qw"
        assert [w["id"] for w in api.workers()] == ["qw"]

        # a tunnel that trusts another CA: refused, said clearly
        bad_local = free_port()
        tunnel(h, "bad-tunnel", bad_local, tls_port, other_ca)
        h.queue_worker("wrong-ca", bad_local, extra=WORKER, wait_ready=False)
        wait_until(lambda: "before answering" in h.log_text("wrong-ca"), 30,
                   "the worker to say the connection closed before Redis answered")
        wait_until(lambda: "certificate verify failed" in h.log_text("bad-tunnel"), 10,
                   "stunnel to log the refused certificate")
        log = h.log_text("wrong-ca")
        assert "TLS tunnel" in log and "claimed" not in log, log[-2000:]
        assert "wrong-ca" not in [w["id"] for w in api.workers()]

        # the shipped unit
        if shutil.which("systemd-analyze"):
            unit = os.path.join(h.tmp, "streamscale-redis-tunnel.service")
            shutil.copy(os.path.join(SOURCE, "deploy", "streamscale-redis-tunnel.service"), unit)
            r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
            assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr
            r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit],
                               capture_output=True, text=True)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
            assert m and float(m.group(1)) <= 2.0, r.stdout[-500:]


if __name__ == "__main__":
    main(test_queue_tls)
