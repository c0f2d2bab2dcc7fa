#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The fake upstream for tests/daemon/test_fetch.c.

Usage: fetch_server.py DIR

Writes a throwaway CA (DIR/ca.pem) and a server certificate for the IP
address 127.0.0.1 only (so https://localhost fails the name check), listens
on two random loopback ports, plain HTTP and HTTPS, serving the same routes,
and prints "READY <http-port> <https-port>". It exits when its stdin closes,
so it never outlives the test that started it.

Routes (the path decides, the query is ignored):
  /echo...          200, the body is the raw request exactly as received
  /delay/MS         wait MS milliseconds, then as /echo
  /status/503       503, JSON, Retry-After: 120, a fixed Date
  /status/429       429, Retry-After as an HTTP-date 60 s ahead
  /status/404       404, no Date, no Retry-After
  /continue         a 100 Continue with headers, then 200 text/plain "ok"
  /trailer          chunked 200 text/plain with a Content-Type trailer
  /big/N            N bytes with Content-Length
  /chunked/N        N bytes chunked, no Content-Length
  /hugeheaders      80 headers of 1000 bytes each
  /hang             read the request, never answer
  /truncate         Content-Length: 1000, send 100 bytes, close
  /garbage          something that is not HTTP, then close
  /rst              a complete response immediately followed by a TCP reset
  /conn             the body is this connection's number (keep-alive check)
"""
import datetime
import email.utils
import ipaddress
import os
import socket
import ssl
import struct
import sys
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

FIXED_DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"
MAX_HEAD = 256 * 1024
MAX_BODY = 8 * 1024 * 1024

conn_counter = 0
conn_lock = threading.Lock()


def make_pki(directory):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedtokend test CA")])
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {n: os.path.join(directory, n) for n in ("ca.pem", "server.pem", "server.key")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["server.pem"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["server.key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


def read_request(sock, pending):
    """One request (head + Content-Length body) as raw bytes, and what follows it."""
    buf = pending
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return None, b""
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length > MAX_BODY:
        return None, b""
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def response(status, reason, body, headers=()):
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    lines += list(headers)
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(body, size=4096):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out


def serve_one(sock, raw, conn_id):
    """Answer one request; returns False when the connection must end."""
    path = raw.split(b" ", 2)[1].split(b"?", 1)[0].decode()
    if path.startswith("/delay/"):
        time.sleep(int(path[len("/delay/"):]) / 1000.0)
        path = "/echo"
    if path.startswith("/echo"):
        sock.sendall(response(200, b"OK", raw, [b"Content-Type: application/octet-stream"]))
    elif path == "/status/503":
        sock.sendall(response(503, b"Service Unavailable", b'{"error":"busy"}',
                              [b"Content-Type: application/json", b"Retry-After: 120",
                               b"Date: " + FIXED_DATE]))
    elif path == "/status/429":
        when = email.utils.formatdate(time.time() + 60, usegmt=True).encode()
        sock.sendall(response(429, b"Too Many Requests", b"slow down",
                              [b"Content-Type: text/plain", b"Retry-After: " + when]))
    elif path == "/status/404":
        sock.sendall(response(404, b"Not Found", b"not found", [b"Content-Type: text/plain"]))
    elif path == "/continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\nContent-Type: text/bogus\r\nRetry-After: 5\r\n"
                     b"Date: " + FIXED_DATE + b"\r\n\r\n")
        sock.sendall(response(200, b"OK", b"ok", [b"Content-Type: text/plain"]))
    elif path == "/trailer":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: Content-Type\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"body") +
                     b"0\r\nContent-Type: text/evil\r\n\r\n")
    elif path.startswith("/big/"):
        n = int(path[len("/big/"):])
        sock.sendall(response(200, b"OK", b"a" * n, [b"Content-Type: text/plain"]))
    elif path.startswith("/chunked/"):
        n = int(path[len("/chunked/"):])
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunked(b"b" * n) + b"0\r\n\r\n")
    elif path == "/hugeheaders":
        pad = [b"X-Pad-%d: %s" % (i, b"p" * 1000) for i in range(80)]
        sock.sendall(response(200, b"OK", b"x", pad))
    elif path == "/hang":
        sock.settimeout(60)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        return False
    elif path == "/truncate":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"t" * 100)
        return False
    elif path == "/garbage":
        sock.sendall(b"hello, this is not http\r\n\r\n")
        return False
    elif path == "/rst":
        sock.sendall(response(200, b"OK", b"complete", [b"Content-Type: text/plain"]))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False
    elif path == "/conn":
        sock.sendall(response(200, b"OK", b"%d" % conn_id, [b"Content-Type: text/plain"]))
    else:
        sock.sendall(response(400, b"Bad Request", b"unknown route"))
    return True


def handle(conn, tls_context):
    global conn_counter
    with conn_lock:
        conn_counter += 1
        conn_id = conn_counter
    sock = conn
    try:
        if tls_context:
            sock = tls_context.wrap_socket(conn, server_side=True)
        pending = b""
        while True:
            raw, pending = read_request(sock, pending)
            if raw is None or not serve_one(sock, raw, conn_id):
                break
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


def accept_loop(listener, tls_context):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn, tls_context), daemon=True).start()


def listen():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def main():
    paths = make_pki(sys.argv[1])
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(paths["server.pem"], paths["server.key"])
    plain_listener, tls_listener = listen(), listen()
    threading.Thread(target=accept_loop, args=(plain_listener, None), daemon=True).start()
    threading.Thread(target=accept_loop, args=(tls_listener, tls), daemon=True).start()
    print("READY %d %d" % (plain_listener.getsockname()[1], tls_listener.getsockname()[1]), flush=True)
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    main()
