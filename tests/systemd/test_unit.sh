#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Checks the shipped systemd integration without a running systemd:
#     tests/systemd/test_unit.sh BUILD_DIR|SERVICE_FILE
# SERVICE_FILE is the configured fedtokend.service (BUILD_DIR/systemd/ holds
# it after meson setup); the socket, sysusers, tmpfiles and consumer files
# and conf/fedtokend.conf are taken from the source tree beside this script.
#
# Prints one line per check and "N passed, N failed". Exits 0 when nothing
# failed, 77 (meson's "skipped") when systemd-analyze is missing, 1 otherwise.

set -u

max_exposure=1.5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
units="$src/systemd"

if [ $# -ne 1 ]; then
        echo "usage: $0 BUILD_DIR|SERVICE_FILE" >&2
        exit 2
fi
service=$1
[ -d "$service" ] && service="$service/systemd/fedtokend.service"
if [ ! -f "$service" ]; then
        echo "$service: no such file (configure the build first)" >&2
        exit 2
fi
socket="$units/fedtokend.socket"
sysusers="$units/fedtokend.sysusers"
tmpfiles="$units/fedtokend.tmpfiles"
consumer="$units/consumer-dropin.conf.example"
conf="$src/conf/fedtokend.conf"

if ! command -v systemd-analyze >/dev/null; then
        echo "skip: systemd-analyze not found"
        exit 77
fi

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "FAIL - $1: $2"; failed=$((failed + 1)); }
skip() { echo "skip - $1: $2"; }
check() { # NAME ACTUAL EXPECTED
        if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "'$2', expected '$3'"; fi
}

# Every value of Key= in FILE, one per line (assignments, not comments).
values() {
        sed -n "s/^$2=//p" "$1"
}
# The last value of Key=, which is the one systemd uses for scalar settings.
value() {
        values "$1" "$2" | tail -n 1
}
# The program path of an Exec*= line: its first word without the
# "-@:+!" prefixes.
program() {
        value "$1" "$2" | awk '{ print $1 }' | sed 's/^[-@:+!]*//'
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. meson substituted every @variable@.
left=$(grep -o '@[a-z_]*@' "$service" | sort -u | tr '\n' ' ')
check "unit is fully configured" "$left" ""

# 2. The exposure score, the number this file is built for.
if systemd-analyze security --offline=true "$service" >"$tmp/security" 2>"$tmp/security.err"; then
        score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' "$tmp/security")
        if [ -z "$score" ]; then
                not_ok "security exposure" "no score in the output of systemd-analyze security"
        elif LC_ALL=C awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
                ok "security exposure $score <= $max_exposure"
        else
                not_ok "security exposure" "$score > $max_exposure; the settings that cost:"
                grep '✗' "$tmp/security" | sed 's/^/#   /'
        fi
else
        not_ok "security exposure" "systemd-analyze security failed: $(head -n 3 "$tmp/security.err")"
fi

# 3. systemd-analyze verify needs the commands and the standard targets to
# exist, so it runs against a scratch root: stubs for the programs, the
# host's targets and slices, our units in /etc/systemd/system. Any message
# (unknown key, bad value, missing unit) is a failure: verify itself exits 0
# on most of them.
hostunits=
for d in /usr/lib/systemd/system /lib/systemd/system; do
        if [ -f "$d/sysinit.target" ]; then
                hostunits=$d
                break
        fi
done
root="$tmp/root"
stub() {
        mkdir -p "$root$(dirname "$1")"
        printf '#!/bin/sh\n' >"$root$1"
        chmod 755 "$root$1"
}
verify() { # NAME UNIT...
        local name=$1
        shift
        if systemd-analyze verify --man=no --generators=no --root="$root" "$@" >"$tmp/verify" 2>&1 &&
           [ ! -s "$tmp/verify" ]; then
                ok "$name"
        else
                not_ok "$name" "$(tr '\n' ' ' <"$tmp/verify")"
        fi
}
if [ -z "$hostunits" ]; then
        skip "verify units" "no sysinit.target on this host to verify against"
        skip "verify consumer drop-in" "no sysinit.target on this host to verify against"
else
        mkdir -p "$root/usr/lib/systemd/system" "$root/etc/systemd/system/consumer.service.d" "$root/usr/bin"
        cp "$hostunits"/*.target "$hostunits"/*.slice "$root/usr/lib/systemd/system/"
        # Debian 12 has a merged /usr: /bin/kill is /usr/bin/kill.
        ln -s usr/bin "$root/bin"
        stub "$(program "$service" ExecStart)"
        stub "$(program "$service" ExecReload)"
        cp "$service" "$socket" "$root/etc/systemd/system/"
        verify "verify fedtokend.service and fedtokend.socket" fedtokend.service fedtokend.socket

        stub /usr/bin/consumer
        printf '[Service]\nExecStart=/usr/bin/consumer\n' >"$root/etc/systemd/system/consumer.service"
        cp "$consumer" "$root/etc/systemd/system/consumer.service.d/fedtokend.conf"
        verify "verify consumer drop-in" consumer.service
fi

# 4. Install time as a package does it: sysusers creates the user, then
# tmpfiles the runtime directory, owned by that user, with the unit's mode.
user=$(value "$service" User)
rundir=/run/$(value "$service" RuntimeDirectory)
if ! command -v systemd-sysusers >/dev/null || ! command -v systemd-tmpfiles >/dev/null; then
        skip "sysusers and tmpfiles" "systemd-sysusers or systemd-tmpfiles not found"
else
        inst="$tmp/install"
        mkdir -p "$inst/etc" "$inst/run"
        uid=
        if ! systemd-sysusers --root="$inst" "$sysusers" >"$tmp/sysusers" 2>&1; then
                not_ok "sysusers creates the user" "$(tr '\n' ' ' <"$tmp/sysusers")"
        else
                uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$inst/etc/passwd")
                [ -n "$uid" ] || not_ok "sysusers creates the user" "no user '$user' in the new /etc/passwd"
        fi
        if [ -z "$uid" ]; then
                skip "tmpfiles creates $rundir" "no user to own it"
        else
                gid=$(awk -F: -v g="$(value "$service" Group)" '$1 == g { print $3 }' "$inst/etc/group")
                ok "sysusers creates the user '$user'"
                if systemd-tmpfiles --root="$inst" --create "$tmpfiles" >"$tmp/tmpfiles" 2>&1 &&
                   [ -d "$inst$rundir" ]; then
                        check "tmpfiles creates $rundir as the unit's user, group and mode" \
                              "$(stat -c '%u %g %04a' "$inst$rundir")" \
                              "$uid $gid $(value "$service" RuntimeDirectoryMode)"
                else
                        not_ok "tmpfiles creates $rundir" "$(tr '\n' ' ' <"$tmp/tmpfiles")"
                fi
        fi
fi

# 5. The files name the same group and the same socket.
check "Group= is the user's own group" "$(value "$service" Group)" "$user"
check "socket belongs to the service's user" "$(value "$socket" SocketUser)" "$user"
check "socket belongs to the service's group" "$(value "$socket" SocketGroup)" "$user"
check "consumers join the service's group" "$(value "$consumer" SupplementaryGroups)" "$user"
sock=$(value "$socket" ListenStream)
check "socket is in the runtime directory" "$(dirname "$sock")" "$rundir"
check "socket is the configuration's default" \
      "$(sed -n 's/^#\{0,1\}socket *= *//p' "$conf" | head -n 1)" "$sock"
check "consumers are given the socket" \
      "$(values "$consumer" Environment | sed -n 's/^FEDTOKEN_SOCKET=//p')" "$sock"

# 6. NoExecPaths=/ leaves only ExecPaths= executable: every program systemd
# starts for us must be under one of them, or the service cannot start.
execpaths=$(value "$service" ExecPaths | tr ' ' '\n' | sed 's/^-//')
covered() {
        local p
        p=$(realpath -m "$1")
        for e in $execpaths; do
                e=$(realpath -m "$e")
                case "$p" in
                "$e" | "$e"/*) return 0 ;;
                esac
        done
        return 1
}
for key in ExecStart ExecReload; do
        prog=$(program "$service" $key)
        if [ "$(value "$service" NoExecPaths)" != / ] || covered "$prog"; then
                ok "$key program $prog is executable in the sandbox"
        else
                not_ok "$key program is executable in the sandbox" "$prog is not under ExecPaths="
        fi
done

# 7. Settings the score would reward but the daemon cannot live with, and
# ones it needs for socket activation and supervision.
case "$(value "$service" PrivateUsers)" in
yes | true | on | 1) not_ok "PrivateUsers= is off" "it maps client users to nobody in SO_PEERCRED" ;;
*) ok "PrivateUsers= is off (it would map client users to nobody in SO_PEERCRED)" ;;
esac
check "RuntimeDirectoryPreserve=yes (the socket's directory outlives restarts)" \
      "$(value "$service" RuntimeDirectoryPreserve)" "yes"
check "Type=notify" "$(value "$service" Type)" "notify"
check "NotifyAccess=main" "$(value "$service" NotifyAccess)" "main"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
