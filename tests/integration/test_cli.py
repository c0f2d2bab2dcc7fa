# SPDX-License-Identifier: MIT
"""The command line: --check-config names file:line for every mistake,
prints the effective configuration, and usage errors exit 2."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, run_fedtokend, summary  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOOD = """[aws]
region = eu-west-1

[jwt.azure]
audience = api://AzureADTokenExchange
"""


def test_check_config_ok():
    r = run_fedtokend(["--check-config"], GOOD)
    check(r.rc == 0, "check-config: a good file exits 0", r)
    check("configuration OK" in r.stderr, "check-config: says configuration OK", r.stderr)
    check("region = eu-west-1" in r.stdout, "check-config: prints the effective region", r.stdout)
    check("signing_algorithm = RS256" in r.stdout, "check-config: prints defaults too", r.stdout)

    r = run_fedtokend(["--check-config"], GOOD, env={"AWS_REGION": "ap-south-1"})
    check("region = ap-south-1" in r.stdout and "AWS_REGION" in r.stdout,
          "check-config: AWS_REGION overrides the file and is marked as such", r.stdout)


def test_check_config_errors():
    cases = [
        ("[jwt.azure]\naudience = a\nbogus = 1\n", ":3:", "bogus"),
        ("[aws]\nregion = us-east-2\n[jwt.x]\nduration = 5\naudience = a\n", ":4:", "duration"),
        ("[aws]\ncredentials = magic\n[jwt.x]\naudience = a\n", ":2:", "credentials"),
        ("[daemon]\nsocket = relative/path\n[jwt.x]\naudience = a\n", ":2:", "socket"),
        ("[jwt.x]\nsigning_algorithm = HS256\naudience = a\n", ":2:", "signing_algorithm"),
        ("[nonsense]\n", ":1:", "nonsense"),
        ("[jwt.g]\naudience = a\n[gcp.x]\njwt = g\naudience = //iam.googleapis.com/projects/1/locations/global/"
         "workloadIdentityPools/p/providers/x\nexternal_account_file = /tmp/x.json\n", ":6:", "external_account_file"),
        ("[jwt.g]\naudience = a\n[azure.x]\njwt = g\ntenant_id = 00000000-0000-0000-0000-000000000000\n"
         "client_id = 00000000-0000-0000-0000-000000000000\nscope = https://storage.azure.com/.default\n"
         "[gcp.x]\njwt = g\naudience = //iam.googleapis.com/projects/1/locations/global/"
         "workloadIdentityPools/p/providers/x\n", ":8:", "same name"),
    ]
    for text, where, key in cases:
        r = run_fedtokend(["--check-config"], text)
        check(r.rc == 2, f"check-config: bad {key} exits 2", r)
        check(where in r.stderr and key in r.stderr, f"check-config: names line {where} and {key}", r.stderr)


def test_example_config():
    example = os.path.join(REPO, "conf", "fedtokend.conf")
    r = run_fedtokend(["--check-config", "-c", example])
    check(r.rc == 0, "the shipped example configuration is valid", r)


def test_usage():
    r = run_fedtokend(["--frobnicate"])
    check(r.rc == 2, "unknown option exits 2", r)
    r = run_fedtokend(["--help"])
    check(r.rc == 0 and "--once" in r.stdout, "--help lists --once", r.stdout)
    r = run_fedtokend(["-c", "/nonexistent/fedtokend.conf", "--once"])
    check(r.rc == 2 and "/nonexistent/fedtokend.conf" in r.stderr, "missing config file is named", r.stderr)


def main():
    test_check_config_ok()
    test_check_config_errors()
    test_example_config()
    test_usage()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
