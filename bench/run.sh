#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh: fedtokend against nginx and against a do-nothing "floor"
# server, in the same run on the same machine, then a renewal soak for
# memory. Writes bench/results.md. A benchmark, not a test: it passes or
# fails nothing, it measures. See bench/README.md.
#
# Environment:
#   BENCH_SECONDS=10        measured seconds per run (after the warm-up)
#   BENCH_WARMUP=2          warm-up seconds per run
#   BENCH_RENEWALS=1000     renewals the memory soak waits for
#   BENCH_SOAK_LIFETIME=2   token lifetime (s) the fake STS grants during the soak
#   BENCH_TAG_BYTES=600     session-tag padding per token: brings fedtokend's JSON to about 2 KB
#   BENCH_QUIET_WAIT=60     before each run, wait up to this long for other processes to go quiet
#   BENCH_RETRIES=2         runs again a run that other processes disturbed, up to this many times
#   BENCH_ROUNDS=3          runs of each server and mode, taking turns; the median is reported
#   BENCH_BUILD=DIR         the release build directory (default: $TMPDIR/fedtokend-bench-build)
#   BENCH_KEEP=1            keep the scratch directory (logs, configs, raw lines)
#   BENCH_SKIP_SOAK=1       skip the memory soak
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_RENEWALS=${BENCH_RENEWALS:-1000}
BENCH_SOAK_LIFETIME=${BENCH_SOAK_LIFETIME:-2}
BENCH_TAG_BYTES=${BENCH_TAG_BYTES:-600}
BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
BENCH_RETRIES=${BENCH_RETRIES:-2}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_BUILD=${BENCH_BUILD:-${TMPDIR:-/tmp}/fedtokend-bench-build}
TOKENS=10
REQ_PATH=/v1/jwt/t0
PY=/usr/bin/python3
NPROC=$(nproc)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedtokend-bench.XXXXXX")
# nginx's worker runs as nobody when we are root: it must be able to read the file it serves.
chmod 755 "$WORK"

STACK_PIDS=()
FLOOR_PID=
NGINX_DIR=

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }

cleanup() {
        local pid
        if [ -n "$FLOOR_PID" ]; then
                kill "$FLOOR_PID" 2>/dev/null || true
                wait "$FLOOR_PID" 2>/dev/null || true
        fi
        if [ -n "$NGINX_DIR" ] && [ -f "$NGINX_DIR/nginx.pid" ]; then
                kill "$(cat "$NGINX_DIR/nginx.pid")" 2>/dev/null || true
        fi
        for pid in "${STACK_PIDS[@]}"; do
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        done
        if [ -n "${BENCH_KEEP:-}" ]; then
                log "run.sh: scratch kept in $WORK"
        else
                rm -rf "$WORK"
        fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------

find_nginx() {
        command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

NGINX=$(find_nginx)
if [ -z "$NGINX" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                log "run.sh: installing Debian's nginx"
                apt-get install -y nginx >"$WORK/apt.log" 2>&1 ||
                        { apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y nginx >>"$WORK/apt.log" 2>&1; } ||
                        log "run.sh: apt-get install nginx failed (see $WORK/apt.log); nginx is skipped"
                NGINX=$(find_nginx)
        else
                log "run.sh: nginx is not installed and we are not root: nginx is skipped"
        fi
fi
[ -x "$PY" ] || die "$PY is needed for the fake cloud"
"$PY" -c 'import cryptography' 2>/dev/null || die "$PY needs python3-cryptography for the fake cloud"

# --- builds ------------------------------------------------------------------

log "run.sh: building fedtokend (release) in $BENCH_BUILD"
if [ -f "$BENCH_BUILD/build.ninja" ]; then
        meson configure "$BENCH_BUILD" -Dbuildtype=release >/dev/null
else
        meson setup "$BENCH_BUILD" "$REPO" -Dbuildtype=release >"$WORK/meson.log" 2>&1 ||
                { cat "$WORK/meson.log" >&2; die "meson setup failed"; }
fi
# Others may be editing the tree: a broken build is retried a few times before giving up.
for try in 1 2 3; do
        if ninja -C "$BENCH_BUILD" daemon/fedtokend >"$WORK/ninja.log" 2>&1; then
                break
        fi
        [ "$try" = 3 ] && { tail -30 "$WORK/ninja.log" >&2; die "the fedtokend build failed"; }
        log "run.sh: build failed, retrying in 30 s"
        sleep 30
done
FEDTOKEND=$BENCH_BUILD/daemon/fedtokend
# What was built (the tree may move on while the runs go).
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$([ -n "$(git -C "$REPO" status --porcelain -- daemon lib meson.build 2>/dev/null)" ] && echo yes || echo no)

CC=${CC:-cc}
"$CC" -O2 -std=gnu11 -Wall -Wextra -o "$WORK/loadgen" "$HERE/loadgen.c"
"$CC" -O2 -std=gnu11 -Wall -Wextra -o "$WORK/floor" "$HERE/floor.c"
LOADGEN=$WORK/loadgen

# --- CPU placement -------------------------------------------------------------

# Servers on CPU 0, the load generator on CPU 1: both are single-threaded, so
# neither steals the other's core and every server gets the same deal.
if [ "$NPROC" -ge 2 ]; then
        PIN_SERVER=(taskset -c 0)
        PIN_CLIENT=(taskset -c 1)
        PINNING="Servers pinned to CPU 0 (every thread), loadgen to CPU 1."
else
        PIN_SERVER=()
        PIN_CLIENT=()
        PINNING="One CPU: nothing pinned, server and loadgen share it."
fi

pin_pid() {
        if [ "$NPROC" -ge 2 ]; then
                taskset -a -p -c 0 "$1" >/dev/null
        fi
}

# Busy ticks of the machine and all ticks: "busy total".
cpu_ticks() { awk '/^cpu /{ print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit }' /proc/stat; }

# Wait until the rest of the machine uses less than 15 % of a core (our own servers idle meanwhile).
wait_quiet() {
        local deadline=$((SECONDS + BENCH_QUIET_WAIT)) b1 t1 b2 t2 pct
        while :; do
                read -r b1 t1 < <(cpu_ticks)
                sleep 1
                read -r b2 t2 < <(cpu_ticks)
                pct=$(( (b2 - b1) * 100 * NPROC / (t2 - t1 > 0 ? t2 - t1 : 1) ))
                [ "$pct" -le 15 ] && return 0
                if [ "$SECONDS" -ge "$deadline" ]; then
                        log "    (other processes use ${pct}% of a core; measuring anyway)"
                        return 0
                fi
        done
}

# --- fedtokend and the fake cloud ----------------------------------------------

# start_stack NAME ARGS...: fedtokend + fake cloud in $WORK/NAME; sets STACK_SOCK and STACK_PID.
start_stack() {
        local name=$1 dir=$WORK/$1 i
        shift
        setsid "$PY" "$HERE/stack.py" --dir "$dir" --fedtokend "$FEDTOKEND" --tokens "$TOKENS" "$@" \
                >"$WORK/$name.log" 2>&1 </dev/null &
        STACK_PIDS+=($!)
        for i in $(seq 600); do
                [ -f "$dir/stack.json" ] && break
                kill -0 "${STACK_PIDS[-1]}" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "$name: the stack did not start"; }
                sleep 0.1
        done
        [ -f "$dir/stack.json" ] || die "$name: no stack.json after 60 s"
        STACK_SOCK=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["socket"])' "$dir/stack.json")
        STACK_PID=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$dir/stack.json")
}

stop_stack() {
        local pid=$1
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
}

# "rss_kib private_dirty_kib" of a process.
smaps() { awk '/^Rss:/{ r=$2 } /^Private_Dirty:/{ p=$2 } END { print r+0, p+0 }' "/proc/$1/smaps_rollup"; }

log "run.sh: starting the fake cloud and fedtokend ($TOKENS tokens)"
start_stack bench --tag-bytes "$BENCH_TAG_BYTES" --lifetime 3600 --duration 3600
BENCH_STACK=${STACK_PIDS[-1]}
FED_SOCK=$STACK_SOCK
FED_PID=$STACK_PID
pin_pid "$FED_PID"

"$LOADGEN" --socket "$FED_SOCK" --path "$REQ_PATH" --dump-response "$WORK/response.http" --dump-body "$WORK/body.json" ||
        die "cannot read $REQ_PATH from fedtokend"
log "run.sh: fedtokend answers $REQ_PATH with $(wc -c <"$WORK/body.json") bytes of JSON"

# --- nginx -----------------------------------------------------------------------

declare -A SOCK PIDARGS
SOCK[fedtokend]=$FED_SOCK
PIDARGS[fedtokend]="--server-pid $FED_PID"
NGINX_VERSION="nginx: not installed"
if [ -n "$NGINX" ]; then
        NGINX_DIR=$WORK/nginx
        mkdir -p "$NGINX_DIR/www/v1/jwt" "$NGINX_DIR/tmp"
        chmod -R 755 "$NGINX_DIR"
        install -m 644 "$WORK/body.json" "$NGINX_DIR/www$REQ_PATH"
        sed -e "s|@DIR@|$NGINX_DIR|g" -e "s|@SENDFILE@|off|g" "$HERE/nginx.conf.in" >"$NGINX_DIR/nginx.conf"
        "${PIN_SERVER[@]}" "$NGINX" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log" ||
                die "nginx did not start: $(cat "$NGINX_DIR/error.log" 2>/dev/null)"
        for i in $(seq 50); do
                [ -s "$NGINX_DIR/nginx.pid" ] && [ -S "$NGINX_DIR/nginx.sock" ] && break
                sleep 0.1
        done
        NGINX_MASTER=$(cat "$NGINX_DIR/nginx.pid")
        NGINX_WORKER=$(pgrep -P "$NGINX_MASTER" | head -1)
        [ -n "$NGINX_WORKER" ] || die "no nginx worker"
        SOCK[nginx]=$NGINX_DIR/nginx.sock
        PIDARGS[nginx]="--server-pid $NGINX_MASTER --server-pid $NGINX_WORKER"
        NGINX_VERSION="$("$NGINX" -v 2>&1 | sed 's/^nginx version: //') (1 worker, static file, open_file_cache, access_log off)"
fi

# --- floor -------------------------------------------------------------------------

"${PIN_SERVER[@]}" "$WORK/floor" --socket "$WORK/floor.sock" --response "$WORK/response.http" &
FLOOR_PID=$!
for i in $(seq 50); do
        [ -S "$WORK/floor.sock" ] && break
        sleep 0.1
done
SOCK[floor]=$WORK/floor.sock
PIDARGS[floor]="--server-pid $FLOOR_PID"

# Response sizes as each server sends them (nginx's head differs).
declare -A BYTES
for s in "${!SOCK[@]}"; do
        "$LOADGEN" --socket "${SOCK[$s]}" --path "$REQ_PATH" --dump-response "$WORK/response.$s" ||
                die "$s does not answer $REQ_PATH"
        BYTES[$s]=$(wc -c <"$WORK/response.$s")
done

# --- the runs --------------------------------------------------------------------------

# measure SERVER MODE CONNS: one run, appended to runs.txt. A run that other processes disturbed (over 15 %
# of a core) is done again, up to BENCH_RETRIES times; the least disturbed one is kept.
measure() {
        local s=$1 mode=$2 conns=$3 best='' best_other='' out other try
        for ((try = 0; try <= BENCH_RETRIES; try++)); do
                wait_quiet
                # shellcheck disable=SC2086
                out=$("${PIN_CLIENT[@]}" "$LOADGEN" --socket "${SOCK[$s]}" --path "$REQ_PATH" --conns "$conns" \
                        "--$mode" --seconds "$BENCH_SECONDS" --warmup "$BENCH_WARMUP" --label "$s" ${PIDARGS[$s]})
                log "  $(grep -v '^loadgen ' <<<"$out")"
                other=$(grep '^loadgen ' <<<"$out" | sed -n 's/.* other_cpu_pct=\([-0-9]*\).*/\1/p')
                if [ -z "$best" ] || [ "${other:-0}" -lt "$best_other" ]; then
                        best=$out
                        best_other=${other:-0}
                fi
                [ "$best_other" -le 15 ] && break
                [ "$try" -lt "$BENCH_RETRIES" ] && log "    (disturbed: again)"
        done
        grep '^loadgen ' <<<"$best" >>"$WORK/runs.txt"
}

MODES=("keepalive 1" "keepalive 16" "keepalive 256" "new-conn 16")
SERVERS=(fedtokend nginx floor)
: >"$WORK/runs.txt"
log "run.sh: ${#MODES[@]} modes x ${#SERVERS[@]} servers x $BENCH_ROUNDS rounds, ${BENCH_WARMUP} s + ${BENCH_SECONDS} s each"
for m in "${MODES[@]}"; do
        read -r mode conns <<<"$m"
        # Modes outside, servers inside, in rounds: the three servers of a mode take turns, so a slow spell of
        # the host hits them alike; the report keeps each server's median round.
        for ((round = 1; round <= BENCH_ROUNDS; round++)); do
                for s in "${SERVERS[@]}"; do
                        if [ -n "${SOCK[$s]:-}" ]; then
                                measure "$s" "$mode" "$conns"
                        fi
                done
        done
        kill -0 "$FED_PID" 2>/dev/null || die "fedtokend died during the $mode $conns runs: $(tail -5 "$WORK/bench/stderr")"
done
smaps "$FED_PID" | awk '{ print 0, $1, $2, 0 }' >"$WORK/loaded.txt"

if [ -n "$NGINX_DIR" ]; then
        kill "$NGINX_MASTER" 2>/dev/null || true
        NGINX_DIR=
fi
kill "$FLOOR_PID" 2>/dev/null || true
wait "$FLOOR_PID" 2>/dev/null || true
FLOOR_PID=
stop_stack "$BENCH_STACK"

# --- memory: renewals -----------------------------------------------------------------

# Renewals so far: successful fetches of the jwt tokens, less each token's first one.
renewals() {
        "$LOADGEN" --socket "$1" --path /metrics --dump-body "$WORK/metrics.txt" >/dev/null 2>&1 || { echo -1; return; }
        awk -v n="$TOKENS" '/^fedtokend_refreshes_total\{token="jwt\./ && /result="ok"/ { s += $NF }
                END { print s - n }' "$WORK/metrics.txt"
}

: >"$WORK/memory.txt"
if [ -z "${BENCH_SKIP_SOAK:-}" ]; then
        log "run.sh: memory soak: $TOKENS tokens of ${BENCH_SOAK_LIFETIME} s until $((2 * BENCH_RENEWALS)) renewals"
        # The duration is the shortest fedtokend accepts; the fake STS cuts it to the soak lifetime.
        start_stack soak --tag-bytes "$BENCH_TAG_BYTES" --lifetime "$BENCH_SOAK_LIFETIME" --duration 60
        SOAK_STACK=${STACK_PIDS[-1]}
        SOAK_SOCK=$STACK_SOCK
        SOAK_PID=$STACK_PID
        start=$SECONDS
        # A sample at the start, every 100 renewals up to the target, then on to twice the target (where the
        # soak ends) to see whether the heap still grows once the allocator has settled.
        marks=(0)
        for ((m = 100; m < BENCH_RENEWALS; m += 100)); do marks+=("$m"); done
        for ((m = BENCH_RENEWALS; m <= 2 * BENCH_RENEWALS; m += BENCH_RENEWALS / 4 > 0 ? BENCH_RENEWALS / 4 : 1)); do
                marks+=("$m")
        done
        next=0
        limit=$(( 2 * BENCH_RENEWALS * BENCH_SOAK_LIFETIME + 600 ))
        while [ "$next" -lt "${#marks[@]}" ]; do
                kill -0 "$SOAK_PID" 2>/dev/null || die "fedtokend died during the soak: $(tail -5 "$WORK/soak/stderr")"
                # Read every token (JSON and raw), as clients would, so the serving path sees each renewal.
                for i in $(seq 0 $((TOKENS - 1))); do
                        "$LOADGEN" --socket "$SOAK_SOCK" --path "/v1/jwt/t$i" --dump-body /dev/null 2>/dev/null || true
                        "$LOADGEN" --socket "$SOAK_SOCK" --path "/v1/jwt/t$i?format=raw" --dump-body /dev/null 2>/dev/null || true
                done
                n=$(renewals "$SOAK_SOCK")
                while [ "$next" -lt "${#marks[@]}" ] && [ "$n" -ge "${marks[$next]}" ]; do
                        read -r rss pd < <(smaps "$SOAK_PID")
                        echo "$n $rss $pd $((SECONDS - start))" >>"$WORK/memory.txt"
                        log "  $n renewals after $((SECONDS - start)) s: Rss $rss KiB, Private_Dirty $pd KiB"
                        next=$((next + 1))
                done
                if [ $((SECONDS - start)) -gt "$limit" ]; then
                        log "run.sh: the soak reached only $n renewals in $limit s"
                        break
                fi
                sleep 1
        done
        stop_stack "$SOAK_STACK"
fi

# --- report ---------------------------------------------------------------------------

{
        echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "host=$(uname -n)"
        echo "nproc=$NPROC"
        echo "cpu=$(awk -F': ' '/^model name/{ print $2; exit }' /proc/cpuinfo)"
        echo "kernel=$(uname -r)"
        echo "commit=$COMMIT"
        echo "dirty=$DIRTY"
        echo "build=release build (meson -Dbuildtype=release)"
        echo "tokens=$TOKENS"
        echo "nginx=$NGINX_VERSION"
        echo "seconds=$BENCH_SECONDS"
        echo "warmup=$BENCH_WARMUP"
        echo "rounds=$BENCH_ROUNDS"
        echo "pinning=$PINNING"
        echo "path=$REQ_PATH"
        for s in "${!BYTES[@]}"; do echo "bytes_$s=${BYTES[$s]}"; done
        echo "soak_lifetime=$BENCH_SOAK_LIFETIME"
        echo "soak_renewals=$BENCH_RENEWALS"
} >"$WORK/meta.txt"
"$PY" "$HERE/report.py" "$WORK" >"$WORK/results.md"
cp "$WORK/results.md" "$HERE/results.md"
cat "$WORK/results.md"
log "run.sh: written to $HERE/results.md"
