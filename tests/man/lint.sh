#!/bin/bash
# SPDX-License-Identifier: MIT
#
# lint.sh MANDIR: every manual page in MANDIR must format without a single
# warning, with groff (always) and with mandoc's linter (when mandoc is
# installed). Prints one line per page, followed by the warnings of a page
# that has any; exits 1 when any page has a warning, 77 (meson's "skipped")
# when groff is missing, 2 on bad usage.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
        echo "usage: $0 MANDIR" >&2
        exit 2
fi
mandir=$1

if ! command -v groff >/dev/null 2>&1; then
        echo "groff is not installed (package groff-base): cannot check the manual pages"
        exit 77
fi
have_mandoc=false
if command -v mandoc >/dev/null 2>&1; then
        have_mandoc=true
fi

shopt -s nullglob
pages=("$mandir"/*.[1-9])
if [ ${#pages[@]} -eq 0 ]; then
        echo "no manual pages (*.[1-9]) in $mandir"
        exit 1
fi

# The output must not depend on the caller's locale.
export LC_ALL=C.UTF-8

# report TOOL RC OUTPUT: add a tool's complaint to the page's report.
report() {
        problems+=("  $1 (exit $2)")
        if [ -n "$3" ]; then
                while IFS= read -r line; do
                        problems+=("      $line")
                done <<<"$3"
        fi
}

failed=0
for page in "${pages[@]}"; do
        name=${page##*/}
        tools=groff
        problems=()

        # -ww enables every groff warning; -z formats without output, so
        # stderr holds nothing but diagnostics.
        out=$(groff -mandoc -ww -z -Tutf8 "$page" 2>&1 >/dev/null)
        rc=$?
        if [ $rc -ne 0 ] || [ -n "$out" ]; then
                report groff $rc "$out"
        fi

        if $have_mandoc; then
                tools+=", mandoc"
                out=$(mandoc -Tlint -Wwarning "$page" 2>&1)
                rc=$?
                if [ $rc -ne 0 ] || [ -n "$out" ]; then
                        report "mandoc -Tlint" $rc "$out"
                fi
        fi

        if [ ${#problems[@]} -eq 0 ]; then
                echo "ok   $name ($tools)"
        else
                echo "FAIL $name ($tools)"
                printf '%s\n' "${problems[@]}"
                failed=1
        fi
done

if ! $have_mandoc; then
        echo "note: mandoc is not installed; only groff checked the pages"
fi
exit $failed
