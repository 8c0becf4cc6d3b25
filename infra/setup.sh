#!/bin/sh
# Installs everything materia needs beyond Node and npm, idempotently: a quick no-op when
# nothing changed. Run by `npm ci` (prepare) and, with --test, before `npm test`.
#   - the Python venv in .venv with the pinned SQLMesh + duckdb (jobs/transform/requirements.txt)
#   - the TypeScript build in dist/
#   - with --test: Debian Chromium for the browser tests
set -eu
cd "$(dirname "$0")/.."
with_test_tools=false
[ "${1:-}" = "--test" ] && with_test_tools=true

requirements=jobs/transform/requirements.txt
stamp=.venv/.requirements.sha256
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x .venv/bin/sqlmesh ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing the Python venv from $requirements"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
  echo "$wanted" > "$stamp"
fi

apt_install() {
  # Only Debian's packages: browsers and tools are never downloaded from anywhere else.
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update -o DPkg::Lock::Timeout=300 -qq >/dev/null
  # Another apt-get (a parallel set-up) may hold the dpkg lock: wait for it, but not forever.
  DEBIAN_FRONTEND=noninteractive $apt_get install -o DPkg::Lock::Timeout=300 -y -qq --no-install-recommends "$@" >/dev/null
}
if $with_test_tools; then
  missing=""
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  # the infra tests: systemd-analyze (units), rclone (the backup command)
  [ -x /usr/bin/systemd-analyze ] || missing="$missing systemd"
  # the daemon tests: systemd-notify against a fake NOTIFY_SOCKET (same Debian package)
  [ -x /usr/bin/systemd-notify ] || missing="$missing systemd"
  [ -x /usr/bin/rclone ] || missing="$missing rclone"
  # the benchmarks' references (npm test runs their quick mode): curl, and unzip -t
  [ -x /usr/bin/curl ] || missing="$missing curl"
  [ -x /usr/bin/unzip ] || missing="$missing unzip"
  # the real-systemd tests: the alert unit pings with curl (above); the venv runs on Debian's python3
  [ -x /usr/bin/python3 ] || missing="$missing python3"
  if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    apt_install $missing
  fi
fi

npx --no-install tsc -p tsconfig.json
