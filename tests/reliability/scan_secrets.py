# SPDX-License-Identifier: MIT
"""Look for secrets in logs and outputs.

    scan_secrets.py [--secrets FILE]... PATH...

PATH is a file or a directory (walked). Reports, without printing the
secret itself (a fingerprint and the file and line stand for it):
- JWT-shaped strings (eyJ<header>.<payload>.): STS JWTs, Entra access tokens;
- the fake's session-token prefix IQoJb3JpZ2luX2Vj (AWS session tokens);
- the fake's Google access tokens (ya29.c. / ya29.d. followed by base64url)
  and IMDS session tokens (AQAE + base64);
- every secret listed in a --secrets file (one per line, as written by
  `fakecloud.py --secrets-file`): secret keys, session tokens, JWTs and their
  signatures, access tokens.
Exit status 1 when anything is found, 0 otherwise; the last line is
"N passed, N failed" (one check per file scanned).
"""
import hashlib
import os
import re
import sys

PATTERNS = [
    ("jwt", re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.")),
    ("aws-session-token", re.compile(rb"IQoJb3JpZ2luX2Vj")),
    ("google-access-token", re.compile(rb"ya29\.[cd]\.[A-Za-z0-9_-]{16,}")),
    ("imds-session-token", re.compile(rb"AQAE[A-Za-z0-9+/]{40,}={0,2}")),
]
TOKEN_RUN = re.compile(rb"[A-Za-z0-9+/=_.-]{16,}")
MIN_SECRET = 16          # shorter lines of a secrets file are not secrets worth matching (and would false-match)
MAX_FILE = 256 << 20


def fp(b):
    if isinstance(b, str):
        b = b.encode("latin-1", "replace")
    return "sha256:" + hashlib.sha256(b).hexdigest()[:12]


def load_secrets(paths):
    out = set()
    for p in paths:
        try:
            with open(p, "rb") as f:
                for line in f:
                    line = line.strip()
                    if len(line) >= MIN_SECRET:
                        out.add(line)
        except OSError:
            pass
    return out


def scan_bytes(data, secrets):
    """[(kind, fingerprint, line number)] of everything secret-looking in data."""
    hits = []
    for kind, rx in PATTERNS:
        for m in rx.finditer(data):
            hits.append((kind, fp(m.group(0)), data.count(b"\n", 0, m.start()) + 1))
    if secrets:
        # Linear in the data however many secrets there are: a secret that
        # leaked starts where a run of token characters starts (or after a
        # '.', as a JWT's signature does); look its first bytes up.
        index = {}
        for s in secrets:
            index.setdefault(s[:MIN_SECRET], []).append(s)
        for m in TOKEN_RUN.finditer(data):
            starts = [m.start()] + [m.start() + i + 1 for i, c in enumerate(m.group(0)) if c == 0x2E]
            for pos in starts:
                for s in index.get(data[pos:pos + MIN_SECRET], ()):
                    if data.startswith(s, pos):
                        hits.append(("issued-secret", fp(s), data.count(b"\n", 0, pos) + 1))
    return hits


def scan_text(text, secrets=()):
    if isinstance(text, str):
        text = text.encode("utf-8", "replace")
    return [f"{kind} {f} (line {line})" for kind, f, line in scan_bytes(text, secrets)]


def walk(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in os.walk(p):
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield p


def main(argv):
    secrets_files, paths = [], []
    it = iter(argv)
    for a in it:
        if a == "--secrets":
            secrets_files.append(next(it, ""))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            paths.append(a)
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    secrets = load_secrets(secrets_files)
    passed = failed = 0
    for path in walk(paths):
        if any(os.path.abspath(path) == os.path.abspath(s) for s in secrets_files):
            continue
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_FILE)
        except OSError as e:
            print(f"# skipped {path}: {e}")
            continue
        hits = scan_text(data, secrets)
        if hits:
            failed += 1
            for h in hits[:20]:
                print(f"FAIL - {path}: {h}")
        else:
            passed += 1
    print(f"# {len(secrets)} issued secret(s) looked for")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
