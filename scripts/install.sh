#!/usr/bin/env bash
# Installs bankml under one prefix that can be copied, as it is, to another server:
#
#   PREFIX/bin/bankml                 stripped; finds its library through $ORIGIN/../lib only
#   PREFIX/lib/libxgboost.so.3        the XGBoost library it was built against (stripped)
#   PREFIX/lib/debug/bankml.debug     its debug info, linked by .gnu_debuglink (gdb, backtraces)
#   PREFIX/share/bankml/              the shipped project: config/, jobs/, alerts/, data/README.md,
#                                     data/scenarios/ — copy it to the daemon's working folder
#
# Usage: scripts/install.sh [--prefix DIR] [--binary PATH]
#   --prefix DIR    where to install (default /opt/bankml); replaced as a whole, never half-written
#   --binary PATH   install this build of bankml instead of building the release one
# Needs: objcopy, strip (binutils), patchelf (Debian packages; scripts/setup.sh installs them).
set -euo pipefail

prefix=/opt/bankml
binary=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
        --binary) binary="${2:?--binary needs a file}"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

for tool in objcopy strip patchelf ldd; do
    command -v "$tool" >/dev/null || {
        echo "install.sh: $tool is missing (apt-get install binutils patchelf, or scripts/setup.sh)" >&2
        exit 1
    }
done

root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "$binary" ]]; then
    (cd "$root" && cargo build --release --locked)
    binary="${CARGO_TARGET_DIR:-$root/target}/release/bankml"
fi
[[ -x "$binary" ]] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

# The library the binary loads now (through its build-folder rpath).
library="$(ldd "$binary" | awk '/libxgboost/ { print $3 }')"
[[ -f "$library" ]] || { echo "install.sh: $binary does not find libxgboost (ldd: ${library:-nothing})" >&2; exit 1; }

prefix="$(mkdir -p "$(dirname "$prefix")" && cd "$(dirname "$prefix")" && pwd)/$(basename "$prefix")"
staging="$prefix.staging-$$"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/bin" "$staging/lib/debug" "$staging/share/bankml/data"

cp -L "$library" "$staging/lib/libxgboost.so.3"
strip --strip-unneeded "$staging/lib/libxgboost.so.3"

cp "$binary" "$staging/bin/bankml"
objcopy --only-keep-debug "$staging/bin/bankml" "$staging/lib/debug/bankml.debug"
strip --strip-debug --strip-unneeded "$staging/bin/bankml"
(cd "$staging/lib/debug" && objcopy --add-gnu-debuglink=bankml.debug "$staging/bin/bankml")
patchelf --set-rpath '$ORIGIN/../lib' "$staging/bin/bankml"

cp -R "$root/config" "$root/jobs" "$root/alerts" "$staging/share/bankml/"
cp "$root/data/README.md" "$staging/share/bankml/data/"
cp -R "$root/data/scenarios" "$staging/share/bankml/data/"

# Checked before it replaces anything: the installed binary starts with its own library.
env -u LD_LIBRARY_PATH "$staging/bin/bankml" --version >/dev/null

if [[ -e "$prefix" ]]; then
    mv "$prefix" "$prefix.old-$$"
    mv "$staging" "$prefix"
    rm -rf "$prefix.old-$$"
else
    mv "$staging" "$prefix"
fi
trap - EXIT
echo "installed $("$prefix/bin/bankml" --version) in $prefix ($(du -sh "$prefix" | cut -f1)):"
du -sh "$prefix/bin/bankml" "$prefix/lib/libxgboost.so.3" "$prefix/lib/debug/bankml.debug"
