#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The soak: CYCLES (default 10,000) renewal cycles of short-lived tokens on
# several nodes, once under the ASan+UBSan build (LeakSanitizer at exit) and
# once under valgrind (--leak-check=full, definite leaks are errors): zero
# leaks, exit status 0, stable RSS and descriptors (sampled every second).
# Full mode only: it runs for well over an hour.
#
#   bash tests/reliability/soak.sh [CYCLES] [OUTDIR]
#
# Builds /tmp/rel/build-asan (ASan) and /tmp/rel/build (plain, for valgrind)
# unless FEDTOKEND_ASAN / FEDTOKEND are set. Results: OUTDIR/soak-asan.json,
# OUTDIR/soak-valgrind.json (default OUTDIR: build/reliability).
set -euo pipefail
cd "$(dirname "$0")/../.."
cycles=${1:-10000}
out=${2:-build/reliability}
mkdir -p "$out"
py=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1

asan_bin=${FEDTOKEND_ASAN:-}
if [ -z "$asan_bin" ]; then
        [ -f /tmp/rel/build-asan/build.ninja ] ||
                meson setup /tmp/rel/build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
        ninja -C /tmp/rel/build-asan daemon/fedtokend >/dev/null
        asan_bin=/tmp/rel/build-asan/daemon/fedtokend
fi
plain_bin=${FEDTOKEND:-}
if [ -z "$plain_bin" ]; then
        [ -f /tmp/rel/build/build.ninja ] || meson setup /tmp/rel/build >/dev/null
        ninja -C /tmp/rel/build daemon/fedtokend >/dev/null
        plain_bin=/tmp/rel/build/daemon/fedtokend
fi
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null

rc=0
echo "=== soak under ASan: $cycles cycles ==="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:quarantine_size_mb=16 UBSAN_OPTIONS=print_stacktrace=1 \
        FEDTOKEND=$asan_bin REL_RSS_BOUND_MIB=64 \
        $py tests/reliability/soak.py --cycles "$cycles" --label soak-asan --json "$out/soak-asan.json" \
        --logs "$out/logs" || rc=1
echo "=== soak under valgrind: $cycles cycles ==="
FEDTOKEND=$plain_bin $py tests/reliability/soak.py --cycles "$cycles" --label soak-valgrind \
        --wrapper "valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --quiet" \
        --json "$out/soak-valgrind.json" --logs "$out/logs" || rc=1
$py tests/reliability/scan_secrets.py "$out/logs" || rc=1
exit $rc
