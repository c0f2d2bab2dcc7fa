# SPDX-License-Identifier: MIT
"""fedtokend as a systemd service: the notify protocol in order (READY,
STATUS, WATCHDOG, RELOADING, STOPPING) against a fake NOTIFY_SOCKET, a
stalled loop stopping the watchdog pings, socket activation with
systemd-socket-activate, and SIGHUP reloads that keep unchanged tokens and
connected clients."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, FakeCloud, check, fedtokend_path, summary, write_file  # noqa: E402
from test_serve import get, try_get  # noqa: E402


def config(fc, sock, extra=""):
    return f"""
[daemon]
socket = {sock}
ca_file = {fc.ca_file}

[aws]
credentials = imds

[jwt.azure]
audience = api://AzureADTokenExchange
{extra}
"""


class NotifyListener:
    """A fake systemd: collects (time, message) datagrams sent to NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()

    def kinds(self):
        return [m.split("=", 1)[0] for _, msg in self.messages for m in msg.split("\n") if m]

    def has(self, prefix):
        return any(m.startswith(prefix) for _, msg in self.messages for m in msg.split("\n"))

    def times(self, prefix):
        return [t for t, msg in self.messages if any(m.startswith(prefix) for m in msg.split("\n"))]


def test_notify_protocol(fc, tmp):
    fc.reset()
    sock = os.path.join(tmp, "n.sock")
    listener = NotifyListener(os.path.join(tmp, "notify"))
    env = fc.env("imds", NOTIFY_SOCKET=listener.path, WATCHDOG_USEC="1000000", FEDTOKEND_TEST_HOOKS="1")
    with Daemon([], config(fc, sock), env) as d:
        check(d.wait_for(lambda: listener.has("READY=1"), 10), "READY=1 sent once listening")
        check(d.wait_for(lambda: any("tokens fresh" in m for _, m in listener.messages), 10),
              "STATUS= says how many tokens are fresh", listener.messages[-3:])
        check(d.wait_for(lambda: len(listener.times("WATCHDOG=1")) >= 3, 5), "WATCHDOG=1 at half WATCHDOG_USEC")
        d.signal(signal.SIGHUP)
        check(d.wait_for(lambda: listener.has("RELOADING=1"), 5), "SIGHUP: RELOADING=1")
        check(any("MONOTONIC_USEC=" in msg for _, msg in listener.messages), "RELOADING=1 carries MONOTONIC_USEC")
        time.sleep(0.5)
        kinds = listener.kinds()
        reload_at = kinds.index("RELOADING")
        check("READY" in kinds[reload_at:], "READY=1 again after the reload", kinds)

        before = len(listener.times("WATCHDOG=1"))
        d.signal(signal.SIGUSR2)          # test hook: the loop sleeps 6 s
        time.sleep(4)
        during = len(listener.times("WATCHDOG=1")) - before
        check(during <= 1, f"a stalled loop stops the watchdog pings ({during} during the stall)")
        check(d.wait_for(lambda: len(listener.times("WATCHDOG=1")) - before >= 3, 8),
              "pings resume once the loop runs again")
        t0 = time.monotonic()
        rc = d.stop(timeout=5)
    listener.stop()
    check(rc == 0 and time.monotonic() - t0 < 2.5, "SIGTERM: clean exit within 2 s", rc)
    kinds = listener.kinds()
    check(kinds and kinds[-1] == "STOPPING", "STOPPING=1 is the last message", kinds[-5:])
    order = [k for k in kinds if k in ("READY", "RELOADING", "STOPPING")]
    check(order[:1] == ["READY"] and "RELOADING" in order and order[-1] == "STOPPING",
          "READY, RELOADING, READY, STOPPING in that order", order)


def test_ready_after_tokens(fc, tmp):
    fc.reset()
    fc.fault("sts", "slow", count=1, delay=2)
    sock = os.path.join(tmp, "r.sock")
    listener = NotifyListener(os.path.join(tmp, "notify2"))
    env = fc.env("imds", NOTIFY_SOCKET=listener.path)
    with Daemon([], config(fc, sock).replace("[aws]", "ready = tokens\n\n[aws]"), env) as d:
        check(d.wait_for(lambda: os.path.exists(sock), 10), "ready = tokens: socket up")
        time.sleep(1)
        check(not listener.has("READY=1"), "ready = tokens: no READY=1 before the first token")
        check(d.wait_for(lambda: listener.has("READY=1"), 10), "ready = tokens: READY=1 once every token is obtained")
    listener.stop()


def test_socket_activation(fc, tmp):
    tool = shutil.which("systemd-socket-activate")
    if not tool:
        print("# skipped: systemd-socket-activate not installed")
        return
    fc.reset()
    sock = os.path.join(tmp, "activated.sock")
    conf = write_file(os.path.join(tmp, "act.conf"), config(fc, sock), 0o644)
    env = dict(fc.env("imds"), PATH="/usr/bin:/bin", HOME=tmp)
    env.update({k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")})
    # The activator passes only the variables it is told to (-E), as systemd passes Environment=.
    setenv = [a for k in env for a in ("-E", k)]
    p = subprocess.Popen([tool, "-l", sock] + setenv + [fedtokend_path(), "-c", conf], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, body = get(sock, "/v1/jwt/azure?wait=10&format=raw")
        check(status == 200 and body.startswith(b"eyJ"), "socket activation: the first client gets a token", status)
        status, _, _ = get(sock, "/healthz")
        check(status == 200, "socket activation: the daemon keeps serving on the passed socket")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
    check(b"socket activation" in err, "socket activation: the daemon says it took the passed socket", err[-400:])
    check(os.path.exists(sock), "socket activation: the socket belongs to the activator and is not removed")


def test_reload(fc, tmp):
    fc.reset()
    sock = os.path.join(tmp, "reload.sock")
    with Daemon([], config(fc, sock), fc.env("imds")) as d:
        check(d.wait_for(lambda: try_get(sock, "/v1/jwt/azure") == 200, 10), "reload: first token served")
        before = get(sock, "/v1/jwt/azure?format=raw")[2]
        calls = fc.count("sts", "GetWebIdentityToken", "ok")
        # A keep-alive client stays connected across the reload.
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(10)
        c.connect(sock)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = c.recv(4096)
        with open(d.config_path, "a") as f:
            f.write("\n[jwt.gcp]\naudience = //iam.googleapis.com/projects/1/locations/global/"
                    "workloadIdentityPools/p/providers/aws\n")
        d.signal(signal.SIGHUP)
        check(d.wait_for(lambda: get(sock, "/v1/jwt/gcp")[0] == 200, 10), "reload: the new token is fetched")
        after = get(sock, "/v1/jwt/azure?format=raw")[2]
        check(after == before, "reload: the unchanged token is kept, not refetched")
        check(fc.count("sts", "GetWebIdentityToken", "ok") == calls + 1, "reload: exactly one new STS call")
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        second = c.recv(4096)
        c.close()
        check(first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200"),
              "reload: a client connected during the reload keeps being served")
        with open(d.config_path, "a") as f:
            f.write("\n[bogus]\n")
        d.signal(signal.SIGHUP)
        time.sleep(1)
        check(d.alive() and get(sock, "/v1/jwt/azure")[0] == 200, "a bad reload keeps the running configuration")
        _, err = d.output()
        check("reload failed" in err and "bogus" in err, "a bad reload says why", err[-500:])


def main():
    tmp = tempfile.mkdtemp(prefix="fedtokend-systemd-")
    with FakeCloud() as fc:
        test_notify_protocol(fc, tmp)
        test_ready_after_tokens(fc, tmp)
        test_socket_activation(fc, tmp)
        test_reload(fc, tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
