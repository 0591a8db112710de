#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine with Python 3.11+.
#   setup.sh app   virtual environment + the app's Python packages
#   setup.sh test  the above + test packages, npm packages, Debian's browsers (Chromium, Firefox ESR, WebKitGTK
#                  with Xvfb), speech voices and redis-server
# Never downloads a browser or a model from anywhere but PyPI, Debian and npm.
set -euo pipefail
mode=${1:-app}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
cd "$(dirname "$0")/.."

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: $PYTHON must be Python 3.11 or newer" >&2
  exit 1
fi

# apt has a version of package $1 to install. Its policy is read whole before grep looks at it: piped, grep -q
# stops at the match, apt-cache dies of SIGPIPE writing the rest (firefox-esr's version table), and pipefail took
# that for "no candidate" on a fresh Debian machine (tests/test_setup_script.py).
has_candidate() {
  local policy
  policy=$(apt-cache policy "$1" 2>/dev/null || true)
  grep -q 'Candidate: [0-9]' <<<"$policy"
}

apt_packages=()
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || apt_packages+=("$1"); }
if [ "$mode" = test ]; then
  # Browsers come from Debian, never from `playwright install`. Festival voices make the test speech. The tests
  # start their own redis-server (loopback, free port, no persistence): the shared-state tests need a real one.
  for p in chromium firefox-esr festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k redis-server; do
    need_pkg "$p"
  done
  # WebKit: WebKitGTK's WebDriver (it brings MiniBrowser), and an X server for it (it has no headless mode);
  # without Mesa's DRI drivers its web process aborts on EGL.
  for p in webkit2gtk-driver xvfb xauth libgl1-mesa-dri; do need_pkg "$p"; done
  # Any Node 18+ with npm will do (Debian's, nodesource's, nvm's): only ask Debian when there is none.
  command -v node >/dev/null || need_pkg nodejs
  command -v npm >/dev/null || need_pkg npm
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_pkg "python3-venv"
fi
if ((${#apt_packages[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # Ubuntu has no firefox-esr package and ships Chromium only as a snap: say so rather than apt's bare refusal.
    for p in chromium firefox-esr; do
      if [[ " ${apt_packages[*]} " == *" $p "* ]] && ! has_candidate "$p"; then
        echo "error: apt has no '$p' package here; the browser tests need Debian's chromium and firefox-esr" \
          "(Ubuntu ships them only as snaps). 'make run' needs neither." >&2
        exit 1
      fi
    done
    apt-get install -y -q --no-install-recommends "${apt_packages[@]}" >/dev/null
  else
    echo "error: these Debian packages are needed; install them as root, then run this again:" >&2
    echo "  sudo apt-get install -y ${apt_packages[*]}" >&2
    exit 1
  fi
fi

stamp="$VENV/.setup-$mode"
reqs=$(cat pyproject.toml package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
if [ "$mode" = test ]; then
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  npm ci --no-audit --no-fund --silent
else
  "$VENV/bin/python" -m pip install -q -e .
fi
echo "$reqs" > "$stamp"
