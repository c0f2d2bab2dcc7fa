# SPDX-License-Identifier: MIT
"""The fault matrix: every upstream x every fault x every phase, against the
real fedtokend and the fake cloud, with tokens that live 6 s and a backoff
capped at 3 s, asserting the invariants:

  I1 no token served (socket or file) with less than min_remaining left;
  I2 no 503 while the last good token still had min_remaining left;
  I3 recovery within backoff_max + a fetch + 1 s once the fault is cleared;
  I4 no crash, exit 0 on SIGTERM, RSS and descriptors back near the
     baseline, no sanitizer report, no secret in the daemon's output;
  I5 attempts against the failing upstream paced by the backoff, no stampede.

    matrix.py [--quick] [--jobs N] [--json FILE] [--logs DIR] [--only SUBSTR]

Phases: "first" (faulty from the start), "steady" (a fault shorter than the
token's remaining life, across a renewal), "long" (longer than a token's
lifetime: served while valid, then 503, then recovery).
The binary is $FEDTOKEND (default build/daemon/fedtokend); set FEDTOKEND to
an ASan build to check for leaks too. Prints "N passed, N failed".
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rellib  # noqa: E402
from rellib import (Expiries, FileReader, Reader, RelFakeCloud, Sampler, TcpProxy, check_i1, check_i1_files,  # noqa: E402
                    check_i2, check_i3, check_i4, check_i5, first_ok_after, port_of)

UPSTREAMS = ("imds", "container", "sts", "entra", "gcp_sts", "gcp_iam")
FAULTS = ("refused", "reset", "slow", "5xx", "throttle", "malformed", "oversized", "wrong_content_type",
          "expired", "tls_untrusted", "tls_wrong_host", "dns")
PHASES = ("first", "steady", "long")

# One representative scenario per fault; together they cover every upstream and every phase.
QUICK = [("imds", "refused", "long"), ("container", "reset", "steady"), ("sts", "slow", "first"),
         ("entra", "5xx", "long"), ("gcp_sts", "throttle", "steady"), ("gcp_iam", "malformed", "first"),
         ("sts", "oversized", "steady"), ("imds", "wrong_content_type", "first"), ("entra", "expired", "steady"),
         ("gcp_sts", "tls_untrusted", "long"), ("gcp_iam", "tls_wrong_host", "steady"), ("container", "dns", "first")]

LIFETIME = 6          # every token under test lives 6 s
MIN_REMAINING = 1
BACKOFF_INITIAL = 1
BACKOFF_MAX = 3
HTTP_TIMEOUT = 2
SLOW_DELAY = 3        # > HTTP_TIMEOUT
RETRY_AFTER = 2
CREDS_LIFETIME = 126  # usable to sign for 6 s: STS needs 60 s of margin plus a 60 s token
GCP_IAM_SKEW = -594   # impersonated tokens are at least 600 s long: the fake's clock runs 594 s behind

TENANT, CLIENT = rellib.TENANT, rellib.CLIENT
SA = "example-sa@example-project.iam.gserviceaccount.com"
VOLATILE_PARAMS = {"client_assertion", "subject_token", "client-request-id", "client_request_id"}


def skip_reason(upstream, fault, phase):
    if fault.startswith("tls_") and upstream in ("imds", "container"):
        return f"{upstream} is plain HTTP on loopback: there is no certificate to get wrong"
    if fault == "dns" and phase != "first":
        return ("a running daemon's resolver cannot be switched without editing the machine's /etc/hosts, "
                "and a reload to a new endpoint is a new token definition; resolution failure at start-up and "
                "its recovery by reload are covered in phase first, and a failing connection mid-run by refused")
    return None


def all_scenarios():
    return [(u, f, p) for u in UPSTREAMS for f in FAULTS for p in PHASES]


# ---------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------

class Setup:
    """What one upstream's scenarios read, and how their daemon is configured."""

    def __init__(self, upstream, fc, proxy, workdir, dns=False):
        self.upstream = upstream
        self.fc = fc
        self.workdir = workdir
        self.sock = os.path.join(workdir, "sock")
        self.skew = GCP_IAM_SKEW if upstream == "gcp_iam" else 0
        self.n_nodes = 2 if upstream == "entra" else 1
        self.fake_config = {"creds_lifetime": CREDS_LIFETIME if upstream in ("imds", "container") else 21600,
                            "max_token_lifetime": LIFETIME if upstream in ("imds", "container", "sts") else 3600,
                            "entra_token_lifetime": LIFETIME, "gcp_token_lifetime": LIFETIME,
                            "clock_skew": self.skew, "max_skew": 1000 if upstream == "gcp_iam" else 300}
        # How long after a fault the token under test can run out: its own
        # life, plus the time its AWS credentials stay usable for signing.
        self.exposure = LIFETIME + (CREDS_LIFETIME - 120 if upstream in ("imds", "container") else 0)
        self.proxy = proxy
        self.file = os.path.join(workdir, "target.token")
        self.conf_good = self.config(dns=False)
        self.conf = self.config(dns=dns)
        self.target, self.kind = {
            "imds": ("/v1/jwt/a?format=raw", "jwt"), "container": ("/v1/jwt/a?format=raw", "jwt"),
            "sts": ("/v1/jwt/a?format=raw", "jwt"), "entra": ("/v1/token/storage?format=raw", "entra"),
            "gcp_sts": ("/v1/token/gcs?format=raw", "gcp_sts"),
            "gcp_iam": ("/v1/token/impersonated?format=raw", "gcp_iam")}[upstream]

    def url(self, service, dns):
        base = self.fc.urls[service]
        host = "nonexistent.invalid" if dns else "127.0.0.1"
        if service == self.upstream and self.proxy is not None:
            scheme = base.split("://", 1)[0]
            path = ""
            if service == "gcp_sts":
                path = "/v1/token"
            return f"{scheme}://{host}:{self.proxy.port}{path}"
        return base

    def config(self, dns):
        fc, u = self.fc, self.upstream
        creds = "container" if u == "container" else "imds"
        aws = [f"credentials = {creds}", "region = us-east-2", "credentials_refresh = 60", f"sts_endpoint = {self.url('sts', dns and u == 'sts')}"]
        if creds == "imds":
            aws.append(f"imds_endpoint = {self.url('imds', dns and u == 'imds')}")
        else:
            uri = self.url("container", False) + "/v2/credentials/fakecloud"
            if dns:
                # The container URI may be plain http only to a loopback address: https to a name that cannot resolve.
                uri = f"https://nonexistent.invalid:{self.proxy.port}/v2/credentials/fakecloud"
            aws.append(f"container_full_uri = {uri}")
        file_line = f"file = {self.file}"
        text = f"""
[daemon]
socket = {self.sock}
ca_file = {fc.ca_file}
min_remaining = {MIN_REMAINING}
refresh_margin = 0
backoff_initial = {BACKOFF_INITIAL}
backoff_max = {BACKOFF_MAX}
http_timeout = {HTTP_TIMEOUT}
log_level = info

[aws]
{chr(10).join(aws)}
"""
        if u in ("imds", "container", "sts"):
            text += f"""
[jwt.a]
audience = api://AzureADTokenExchange
{"duration = 60" if u != "sts" else ""}
{file_line}
"""
        elif u == "entra":
            authority = self.url("entra", dns)
            text += f"""
[jwt.azure]
audience = api://AzureADTokenExchange

[azure.storage]
jwt = azure
tenant_id = {TENANT}
client_id = {CLIENT}
scope = https://storage.azure.com/.default
authority = {authority}
{file_line}

[azure.vault]
jwt = azure
tenant_id = {TENANT}
client_id = {CLIENT}
scope = https://vault.azure.net/.default
authority = {authority}
"""
        else:
            aud = fc.gcp_audience()
            text += f"""
[jwt.gcp]
audience = {aud}
duration = 3600
"""
            if u == "gcp_sts":
                text += f"""
[gcp.gcs]
jwt = gcp
audience = {aud}
sts_endpoint = {self.url('gcp_sts', dns)}
iam_endpoint = {fc.urls['gcp_iam']}
{file_line}
"""
            else:
                text += f"""
[gcp.impersonated]
jwt = gcp
audience = {aud}
service_account = {SA}
lifetime = 600
sts_endpoint = {fc.urls['gcp_sts']}
iam_endpoint = {self.url('gcp_iam', dns)}
{file_line}
"""
        return text

    def env(self):
        e = {}
        if self.upstream == "container":
            e["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self.fc.control("GET", "/config")["container_token"]
        return e

    def prepare_cloud(self):
        fc = self.fc
        fc.reset()
        fc.config(**self.fake_config)
        if self.upstream == "entra":
            fc.add_fic(TENANT, CLIENT)
        if self.upstream in ("gcp_sts", "gcp_iam"):
            fc.add_gcp_provider()
            fc.add_gcp_service_account()


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------

class Fault:
    def __init__(self, setup, name):
        self.s = setup
        self.name = name
        self.svc = setup.upstream
        self.skews = [(0.0, setup.skew)]      # (real time from which, clock_skew)

    @property
    def min_gap(self):
        return RETRY_AFTER if self.name == "throttle" else None

    @property
    def delay(self):
        return SLOW_DELAY if self.name == "slow" else 0

    def inject(self):
        fc, svc, n = self.s.fc, self.svc, self.name
        if n == "refused":
            self.s.proxy.refuse()
            return
        if n == "dns":
            return      # the daemon starts with the unresolvable configuration
        if n == "reset":
            fc.fault(svc, "reset", -1)
        elif n == "slow":
            fc.fault(svc, "slow", -1, delay=SLOW_DELAY)
        elif n == "5xx":
            fc.fault(svc, "status", -1, status=503)
        elif n == "throttle":
            fc.fault(svc, "throttle", -1, retry_after=RETRY_AFTER)
        elif n in ("malformed", "oversized", "wrong_content_type", "tls_untrusted", "tls_wrong_host"):
            fc.fault(svc, n, -1)
        elif n == "expired":
            if svc in ("imds", "container"):
                fc.fault(svc, "expired_creds", -1)
            elif svc == "sts":
                self._skew(self.s.skew - 100)          # every JWT arrives 94 s expired
            elif svc == "entra":
                fc.config(entra_token_lifetime=1)      # less than min_remaining at receipt
            elif svc == "gcp_sts":
                fc.config(gcp_token_lifetime=1)
            elif svc == "gcp_iam":
                self._skew(GCP_IAM_SKEW - 66)          # expireTime a minute in the past
        if self.s.proxy is not None:
            self.s.proxy.kill_connections()            # the next request makes a new connection (and handshake)

    def _skew(self, value):
        self.s.fc.config(clock_skew=value)
        self.skews.append((time.time(), value))

    def clear(self, daemon=None):
        fc = self.s.fc
        if self.name == "refused":
            self.s.proxy.forward()
        elif self.name == "dns":
            with open(daemon.config_path, "w") as f:
                f.write(self.s.conf_good)
            daemon.signal(signal.SIGHUP)
        elif self.name == "expired" and self.svc in ("sts", "gcp_iam", "entra", "gcp_sts"):
            fc.config(**{k: v for k, v in self.s.fake_config.items() if k != "clock_skew"})
            if self.s.skew != self.skews[-1][1]:
                self._skew(self.s.skew)
        fc.clear_faults()

    def real_time(self, fake_t):
        """The fake logs its own clock; map back to ours through the skew timeline."""
        for i in range(len(self.skews) - 1, -1, -1):
            start, skew = self.skews[i]
            if fake_t - skew >= start - 0.5 or i == 0:
                return fake_t - skew
        return fake_t

    def recovery_bound(self):
        fetch = 2.0 if self.svc in ("imds", "container") else 1.5
        bound = BACKOFF_MAX + fetch + 1
        if self.name == "slow":
            bound += HTTP_TIMEOUT        # an attempt started before the clear still runs into its timeout
        if self.name == "throttle":
            bound = max(bound, RETRY_AFTER + fetch + 1)
        return bound


def node_key(e):
    if e.get("action") == "tls":
        return "tls"
    params = tuple(sorted((k, str(v)) for k, v in (e.get("body_params") or {}).items() if k not in VOLATILE_PARAMS))
    return (e.get("method"), (e.get("path") or "").split("?")[0], params)


def error_count(sock):
    status, _, body, _ = rellib.http_get(sock, "/metrics")
    if status != 200:
        return None
    n = 0
    for m in re.finditer(rb'fedtokend_refreshes_total\{token="[^"]*",result="error"\} (\d+)', body):
        n += int(m.group(1))
    return n


# ---------------------------------------------------------------------------
# One scenario
# ---------------------------------------------------------------------------

def run_scenario(fc, upstream, fault_name, phase, logs_dir, secrets_file, rss_bound_kib):
    sid = f"{upstream}/{fault_name}/{phase}"
    res = {"id": sid, "upstream": upstream, "fault": fault_name, "phase": phase, "violations": [],
           "requests_served": 0, "responses_503": 0, "errors": 0, "faults_injected": 0, "peak_rss_kib": 0,
           "peak_fds": 0, "recovery_s": None, "worst_remaining_s": None, "notes": []}
    reason = skip_reason(upstream, fault_name, phase)
    if reason:
        res["status"] = "skip"
        res["reason"] = reason
        return res
    t_begin = time.time()
    workdir = tempfile.mkdtemp(prefix="rel-matrix-")
    proxy = TcpProxy(port_of(fc.urls[upstream]))
    v = res["violations"]
    reader = file_reader = sampler = d = None
    err_before = None
    try:
        setup = Setup(upstream, fc, proxy, workdir, dns=(fault_name == "dns"))
        setup.prepare_cloud()
        fault = Fault(setup, fault_name)
        if phase == "first":
            fault.inject()
        d = rellib.start_daemon(setup.conf, setup.env(), workdir)
        sampler = Sampler(d.proc.pid)
        sampler.start()
        if not rellib.wait_socket(d, setup.sock):
            v.append("daemon did not create its socket")
            raise _Abort()
        reader = Reader(setup.sock, setup.target)
        reader.start()
        file_reader = FileReader(setup.file)
        file_reader.start()
        base = None
        if phase == "first":
            t_fault = time.time()
            err_before = error_count(setup.sock)
            time.sleep(2 * BACKOFF_MAX + 2)
        else:
            if not d.wait_for(lambda: any(s[2] == 200 for s in reader.samples), 20):
                v.append("no token served before the fault (set-up failed)")
                raise _Abort()
            first_body = next(s[3] for s in reader.samples if s[2] == 200)
            # Start the fault right after a renewal, so it spans the next one.
            if not d.wait_for(lambda: any(s[2] == 200 and s[3] != first_body for s in reader.samples),
                              setup.exposure + 6):
                v.append("the token was not renewed before the fault (set-up failed)")
                raise _Abort()
            base = sampler.mark()
            err_before = error_count(setup.sock)
            t_fault = time.time()
            healthy_503 = [x for x in reader.samples if x[2] == 503 and
                           x[0] >= next(y[0] for y in reader.samples if y[2] == 200)]
            if healthy_503:
                v.append(f"I2: {len(healthy_503)} 503(s) after the first token while every upstream was healthy "
                         f"(first at {healthy_503[0][1]:.2f})")
            fault.inject()
            hold = 0.75 * LIFETIME if phase == "steady" else setup.exposure + 2 * BACKOFF_MAX + 2
            time.sleep(hold)
        seen_before_clear = {s[3] for s in reader.samples if s[2] == 200}
        err_after = error_count(setup.sock)
        t_clear = time.time()
        fault.clear(d)
        bound = fault.recovery_bound()
        d.wait_for(lambda: first_ok_after(reader.samples, t_clear, seen_before_clear) is not None, bound + 8)
        t_back = first_ok_after(reader.samples, t_clear, seen_before_clear)
        res["recovery_s"] = None if t_back is None else round(t_back - t_clear, 2)
        v += check_i3(t_clear, t_back, bound)
        time.sleep(1.0)
        if base is None:
            base = sampler.mark()
        reader.stop()
        file_reader.stop()
        if not d.alive():
            v.append(f"I4: the daemon died (status {d.proc.returncode})")
        sampler.sample()
        alive, rc = rellib.stop_daemon(d)
        sampler.stop()

        # What the fake saw and issued.
        entries = fc.log()
        exp = Expiries(setup.kind, skew=setup.skew)
        exp.learn(entries)
        samples = reader.samples
        i1, worst = check_i1(samples, exp, MIN_REMAINING)
        v += i1
        v += check_i1_files(file_reader.samples, exp, MIN_REMAINING)
        # A relative lifetime (expires_in, whole seconds) is counted from the whole second the
        # answer arrived in, less one second for the time it was in flight: the daemon may drop
        # such a token up to 2 s early, which is safe (I1) and no I2 violation.
        v += check_i2(samples, exp, MIN_REMAINING, grace=2.3 if setup.kind in ("gcp_sts", "entra") else 0.3)
        res["worst_remaining_s"] = None if worst is None else round(worst, 2)
        v += check_i4(rc, sampler, base, d.stdout + d.stderr, rss_bound_kib=rss_bound_kib)
        # I5: the failing upstream, node by node, during the fault.
        window = (t_fault, t_clear)
        by_node = {}
        faulted = 0
        for e in entries:
            t = fault.real_time(e["time"])
            if e.get("fault") and window[0] - 1 <= t <= window[1] + 1:
                faulted += 1
            if e["service"] != fault.svc:
                continue
            if e.get("fault") == "slow":
                t -= fault.delay        # logged when answered; it arrived `delay` earlier
            by_node.setdefault(node_key(e), []).append((t, e.get("action")))
        for key, ents in by_node.items():
            if key == "tls":
                v += [x for x in check_i5(ents, window, BACKOFF_INITIAL, BACKOFF_MAX, fault.min_gap,
                                          n_nodes=setup.n_nodes, label=" tls") if "apart" not in x]
            else:
                v += check_i5(ents, window, BACKOFF_INITIAL, BACKOFF_MAX, fault.min_gap, label=f" {fault.svc}")
        if err_before is not None and err_after is not None:
            # Failed fetches, as the daemon counts them (refused and DNS never reach the fake).
            n_err = err_after - err_before
            n_tokens = 4 if upstream in ("entra", "gcp_iam") else 3
            allowed = n_tokens * ((t_clear - t_fault) / BACKOFF_INITIAL + 2)
            if n_err > allowed:
                v.append(f"I5: {n_err} failed fetches in {t_clear - t_fault:.1f} s, backoff allows {allowed:.0f}")
            if fault_name in ("refused", "dns"):
                faulted = n_err
        res["faults_injected"] = faulted
        res["requests_served"] = sum(1 for s in samples if s[2] == 200)
        res["responses_503"] = sum(1 for s in samples if s[2] == 503)
        errs = [s for s in samples if s[2] not in (200, 503)]
        res["errors"] = len(errs)
        for s in errs[:3]:
            v.append(f"reader: status {s[2]} {s[4] or ''}".strip())
        pr, pf = sampler.peak()
        res["peak_rss_kib"], res["peak_fds"] = pr, pf
        if phase == "long" and res["responses_503"] == 0:
            res["notes"].append("the fault never made the token unavailable")
        out = d.stdout + d.stderr
        v += rellib.scan_output([("daemon output", out)], secrets_file)
        if logs_dir:
            with open(os.path.join(logs_dir, sid.replace("/", "_") + ".log"), "w") as f:
                f.write(out)
    except _Abort:
        pass
    except Exception as e:  # a harness failure is a failed scenario, never a silent pass
        v.append(f"harness error: {type(e).__name__}: {e}")
    finally:
        for r in (reader, file_reader):
            if r is not None and r.is_alive():
                r.stop()
        if d is not None and d.proc is not None:
            d.stop(timeout=5)
            if logs_dir and not os.path.exists(os.path.join(logs_dir, sid.replace("/", "_") + ".log")):
                with open(os.path.join(logs_dir, sid.replace("/", "_") + ".log"), "w") as f:
                    f.write(d.stdout + d.stderr)
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        proxy.close()
        fc.clear_faults()
        shutil.rmtree(workdir, ignore_errors=True)
    res["status"] = "fail" if v else "pass"
    res["duration_s"] = round(time.time() - t_begin, 1)
    return res


class _Abort(Exception):
    pass


# ---------------------------------------------------------------------------
# Shards and the summary
# ---------------------------------------------------------------------------

def run_shard(scenarios, out_json, logs_dir, rss_bound_kib):
    secrets_dir = tempfile.mkdtemp(prefix="rel-secrets-")
    secrets_file = os.path.join(secrets_dir, "secrets.txt")
    results = []
    try:
        with RelFakeCloud(secrets_file) as fc:
            for u, f, p in scenarios:
                r = run_scenario(fc, u, f, p, logs_dir, secrets_file, rss_bound_kib)
                mark = {"pass": "ok", "fail": "FAIL", "skip": "skip"}[r["status"]]
                extra = f" ({r.get('reason')})" if r["status"] == "skip" else \
                    f" served={r['requests_served']} 503={r['responses_503']} recovery={r['recovery_s']}s " \
                    f"worst_left={r['worst_remaining_s']}s {r['duration_s']}s"
                print(f"{mark} - {r['id']}{extra}", flush=True)
                for x in r["violations"][:8]:
                    print(f"    {x}", flush=True)
                results.append(r)
                with open(out_json, "w") as fo:
                    json.dump(results, fo, indent=1)
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)
    return results


def summarize(results, elapsed, mode):
    ran = [r for r in results if r["status"] != "skip"]
    return {
        "suite": "matrix", "mode": mode, "elapsed_s": round(elapsed, 1),
        "scenarios_run": len(ran), "scenarios_skipped": len(results) - len(ran),
        "passed": sum(1 for r in ran if r["status"] == "pass"),
        "failed": sum(1 for r in ran if r["status"] == "fail"),
        "faults_injected": sum(r["faults_injected"] for r in ran),
        "requests_served": sum(r["requests_served"] for r in ran),
        "errors": sum(r["errors"] for r in ran),
        "invariant_violations": sum(len(r["violations"]) for r in ran),
        "peak_rss_kib": max([r["peak_rss_kib"] for r in ran] or [0]),
        "peak_fds": max([r["peak_fds"] for r in ran] or [0]),
        "scenarios": results,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=0, help="parallel shards (default 2 quick, 3 full)")
    ap.add_argument("--json", default=None, help="results file (default: none)")
    ap.add_argument("--logs", default=None, help="keep every scenario's daemon output here")
    ap.add_argument("--only", default=None, help="run scenarios whose id contains this")
    ap.add_argument("--rss-bound-mib", type=int, default=int(os.environ.get("REL_RSS_BOUND_MIB", "16")))
    ap.add_argument("--shard", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--shard-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    rellib.harness.fedtokend_path()   # fail early without a binary
    scenarios = QUICK if args.quick else all_scenarios()
    if args.only:
        scenarios = [s for s in scenarios if args.only in "/".join(s)]
    if args.logs:
        os.makedirs(args.logs, exist_ok=True)
    rss_bound = args.rss_bound_mib * 1024
    if args.shard:
        i, n = (int(x) for x in args.shard.split("/"))
        run_shard(scenarios[i::n], args.shard_out, args.logs, rss_bound)
        return 0
    t0 = time.time()
    jobs = args.jobs or (2 if args.quick else 3)
    jobs = max(1, min(jobs, len(scenarios)))
    tmp = tempfile.mkdtemp(prefix="rel-matrix-shards-")
    procs = []
    for i in range(jobs):
        out = os.path.join(tmp, f"shard{i}.json")
        cmd = [rellib.PYTHON, os.path.abspath(__file__), "--shard", f"{i}/{jobs}", "--shard-out", out,
               "--rss-bound-mib", str(args.rss_bound_mib)]
        if args.quick:
            cmd.append("--quick")
        if args.only:
            cmd += ["--only", args.only]
        if args.logs:
            cmd += ["--logs", args.logs]
        procs.append((subprocess.Popen(cmd), out))
    results = []
    for p, out in procs:
        p.wait()
        try:
            with open(out) as f:
                results += json.load(f)
        except (OSError, ValueError):
            results.append({"id": f"shard {out}", "status": "fail", "violations": [f"shard exited {p.returncode}"],
                            "faults_injected": 0, "requests_served": 0, "errors": 0, "peak_rss_kib": 0,
                            "peak_fds": 0})
    shutil.rmtree(tmp, ignore_errors=True)
    expected = len(scenarios)
    if len([r for r in results if "upstream" in r]) != expected:
        results.append({"id": "matrix", "status": "fail", "faults_injected": 0, "requests_served": 0, "errors": 0,
                        "peak_rss_kib": 0, "peak_fds": 0,
                        "violations": [f"{expected} scenarios planned, {len(results)} reported"]})
    summary = summarize(results, time.time() - t0, "quick" if args.quick else "full")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    print(f"# matrix: {summary['scenarios_run']} run, {summary['scenarios_skipped']} skipped, "
          f"{summary['faults_injected']} faults injected, {summary['requests_served']} requests served, "
          f"{summary['invariant_violations']} invariant violations, peak RSS {summary['peak_rss_kib']} KiB, "
          f"peak fds {summary['peak_fds']}, {summary['elapsed_s']} s")
    print(f"{summary['passed']} passed, {summary['failed']} failed")
    return 0 if summary["failed"] == 0 and summary["passed"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
