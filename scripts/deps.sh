#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every Debian 12 package fedtokend needs to build, test and demo.
# Idempotent: apt-get runs only when something is missing.
set -euo pipefail

packages=(
        # build
        meson ninja-build pkg-config gcc clang-14 libclang-rt-14-dev
        libcurl4-openssl-dev libuv1-dev libcjson-dev libmbedtls-dev libsystemd-dev libexpat1-dev libssl-dev
        # tests: the fake cloud (Python + cryptography), certificates, leak checks
        python3 python3-cryptography openssl curl valgrind
        # systemd tools for the unit tests (systemd-analyze, systemd-socket-activate)
        systemd
        # man page lint (groff comes with man-db; mandoc -Tlint is stricter)
        groff-base mandoc
)

missing=()
for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing+=("$p")
        fi
done
if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
                exit 1
        fi
        echo "deps: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
