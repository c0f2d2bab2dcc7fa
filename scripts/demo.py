# SPDX-License-Identifier: MIT
"""The demo behind scripts/demo: the fake cloud (IMDSv2, STS, the issuer,
Entra ID, Google STS and IAM on loopback), fedtokend in the foreground with
the example configuration pointed at it, a token read through the socket
with curl, and `fedtoken status`. Nothing leaves this machine."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from harness import FakeCloud  # noqa: E402

BUILD = os.path.join(REPO, "build")
TENANT = "00000000-0000-0000-0000-000000000000"
CLIENT = "11111111-2222-3333-4444-555555555555"
SA = "fedtokend@example-project.iam.gserviceaccount.com"


def example_config(fc, work):
    """conf/fedtokend.conf with its commented sections switched on and the endpoints pointed at the fake."""
    text = open(os.path.join(REPO, "conf", "fedtokend.conf")).read()
    section = None
    out = []
    enable = {"[jwt.gcp]", "[azure.arm]", "[gcp.main]"}
    keep_keys = {"jwt", "tenant_id", "client_id", "scope", "audience", "service_account", "file",
                 "external_account_file"}
    for line in text.splitlines():
        m = re.match(r"^#?(\[[a-z]+(\.[a-z]+)?\])\s*$", line)
        if m:
            section = m.group(1)
            out.append(section if section in enable or not line.startswith("#") else line)
            continue
        kv = re.match(r"^#([a-z_.]+) = (.*)$", line)
        if section in enable and kv and kv.group(1) in keep_keys:
            out.append(f"{kv.group(1)} = {kv.group(2)}")
            continue
        out.append(line)
    text = "\n".join(out) + "\n"
    sets = {
        "[daemon]": f"socket = {work}/fedtokend.sock\nca_file = {fc.ca_file}\n",
        "[aws]": f"imds_endpoint = {fc.urls['imds']}\nsts_endpoint = {fc.urls['sts']}\n",
        "[azure.arm]": f"authority = {fc.urls['entra']}\n",
        "[gcp.main]": f"sts_endpoint = {fc.urls['gcp_sts']}\niam_endpoint = {fc.urls['gcp_iam']}\n",
    }
    for sec, add in sets.items():
        text = text.replace(sec + "\n", sec + "\n" + add, 1)
    # Token files go to the demo's own folder instead of /run/fedtokend.
    text = text.replace("/run/fedtokend/", work + "/")
    return text


def run(cmd, **kw):
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, **kw)


def main():
    work = tempfile.mkdtemp(prefix="fedtokend-demo-")
    with FakeCloud() as fc:
        fc.add_fic(TENANT, CLIENT)
        gcp_aud = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool/providers/aws-outbound"
        fc.add_gcp_provider(audience=gcp_aud, allowed_audiences=[
            "https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool/providers/aws-outbound"])
        fc.add_gcp_service_account(email=SA)
        conf = os.path.join(work, "fedtokend.conf")
        with open(conf, "w") as f:
            f.write(example_config(fc, work))
        sock = os.path.join(work, "fedtokend.sock")
        print(f"# the fake cloud: IMDS {fc.urls['imds']}, STS {fc.urls['sts']}, Entra {fc.urls['entra']}, "
              f"Google {fc.urls['gcp_sts']}")
        print("# conf/fedtokend.conf with [jwt.gcp], [azure.arm] and [gcp.main] switched on, pointed at the fake\n")
        print(f"$ fedtokend -c {conf}      (in the foreground; its log follows)", flush=True)
        daemon = subprocess.Popen([os.path.join(BUILD, "daemon", "fedtokend"), "-c", conf],
                                  env={"PATH": "/usr/bin:/bin", "HOME": work})
        try:
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.1)
            time.sleep(0.2)
            print()
            r = run(["curl", "-sS", "--unix-socket", sock, "http://localhost/v1/token/arm?wait=10"],
                    capture_output=True, text=True)
            doc = json.loads(r.stdout)
            doc["access_token"] = doc["access_token"][:12] + "…  (shortened here; the API returns it whole)"
            print(json.dumps(doc, indent=2))
            print()
            run(["curl", "-sS", "--unix-socket", sock, "http://localhost/v1/jwt/azure?format=raw", "-o",
                 os.path.join(work, "azure.jwt.copy")])
            print(f"# (the bare JWT, {os.path.getsize(os.path.join(work, 'azure.jwt.copy'))} bytes, saved; "
                  "the same one is in the token file " + os.path.join(work, "azure.jwt") + " if configured)\n")
            run([os.path.join(BUILD, "daemon", "fedtoken"), "-s", sock, "token", "main", "--wait", "10"],
                stdout=subprocess.DEVNULL)
            print("# (fedtoken token main printed the Google access token; hidden here)\n")
            run([os.path.join(BUILD, "daemon", "fedtoken"), "-s", sock, "status"])
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
