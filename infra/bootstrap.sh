#!/bin/sh
# Installs or updates materia on a Debian box with systemd, idempotently: running it again
# changes nothing unless the repo, the units or the lock files changed. As root:
#
#   sh infra/bootstrap.sh [--repo URL] [--root DIR]
#
#   --repo URL  git origin to clone into /opt/materia (default: the origin of the checkout
#               this script is in). Only used when /opt/materia is not a checkout yet.
#   --root DIR  write every file under DIR instead of /, and instead of touching the host
#               (apt-get, useradd, chown, npm, systemctl) print what it would run. For tests.
#
# What it does: Debian packages (git, python3-venv, rclone, curl for the alert unit), the `materia` system user,
# /data/materia, /etc/materia, the checkout in /opt/materia switched to MATERIA_GIT_REF,
# npm ci + infra/setup.sh when package-lock.json changed, /etc/materia/materia.env from the
# template ONLY when missing (an operator's file is never touched), the systemd units,
# daemon-reload, a restart if code or units changed, enable --now. materia-web.socket gets its
# ListenStream= from WEB_HOST:WEB_PORT in the env file (socket activation: the dashboard's port
# is systemd's, so a restart of the daemon refuses no connection).
set -eu

service_user=materia
checkout=/opt/materia
data_dir=/data/materia
config_dir=/etc/materia
home_dir=/var/lib/materia
unit_dir=/etc/systemd/system
units="materia-supervisor.service materia-backup.service materia-backup.timer materia-alert@.service"
socket_unit=materia-web.socket
node_bin=/usr/bin/node
node_version_min=20.12

root=""
repo_url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=${2:?"--root needs a directory"}; shift 2 ;;
    --repo) repo_url=${2:?"--repo needs a git URL"}; shift 2 ;;
    *) echo "bootstrap: unknown argument $1 (expected --repo URL, --root DIR)" >&2; exit 2 ;;
  esac
done

say() { echo "bootstrap: $*"; }
die() { echo "bootstrap: $*" >&2; exit 1; }

if [ -n "$root" ]; then
  mkdir -p "$root"
  root=$(cd "$root" && pwd)
  host() { say "--root, would run: $*"; }
else
  [ "$(id -u)" = 0 ] || die "run as root (or with --root DIR)"
  host() { "$@"; }
fi

# Runs git/npm as the service user: the checkout stays writable by the daemon's self-update,
# and git refuses to work in a repo owned by another user. With --root there is no such
# user: run as whoever runs the test.
as_service_user() {
  if [ -n "$root" ]; then "$@"; else runuser -u "$service_user" -- env HOME="$home_dir" "$@"; fi
}

# ensure_dir PATH MODE OWNER: create it if missing; mode and owner are set every time.
ensure_dir() {
  mkdir -p "$root$1"
  chmod "$2" "$root$1"
  host chown "$3" "$1"
}

if [ -z "$repo_url" ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  repo_url=$(git -C "$here" remote get-url origin 2>/dev/null) || repo_url=$here
fi

# Node 20.12+ from an absolute path: the unit's ExecStart names /usr/bin/node, so a Node
# found only on some PATH (nvm, a tarball) would pass here and fail under systemd.
if [ -z "$root" ]; then
  [ -x "$node_bin" ] || die "$node_bin is missing: install Node.js >= $node_version_min (e.g. NodeSource's nodejs package)"
  "$node_bin" -e "
    const [major, minor] = process.versions.node.split('.').map(Number);
    const [want_major, want_minor] = '$node_version_min'.split('.').map(Number);
    process.exit(major > want_major || (major === want_major && minor >= want_minor) ? 0 : 1);" ||
    die "$node_bin is Node $("$node_bin" --version), materia needs >= $node_version_min"
  missing=""
  for package in git python3-venv rclone ca-certificates curl; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
  done
  if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
else
  host "apt-get install (only if missing) git python3-venv rclone ca-certificates curl; check $node_bin >= $node_version_min"
fi

if [ -n "$root" ] || ! getent passwd "$service_user" >/dev/null; then
  host useradd --system --user-group --home-dir "$home_dir" --no-create-home --shell /usr/sbin/nologin "$service_user"
fi

ensure_dir "$config_dir" 0750 "root:$service_user"
ensure_dir "$data_dir" 0750 "$service_user:$service_user"
ensure_dir "$home_dir" 0750 "$service_user:$service_user"

if [ ! -d "$root$checkout/.git" ]; then
  ensure_dir "$checkout" 0755 "$service_user:$service_user"
  say "cloning $repo_url into $checkout"
  as_service_user git clone --quiet "$repo_url" "$root$checkout"
fi

env_file=$config_dir/materia.env
if [ -e "$root$env_file" ]; then
  say "kept $env_file as it is"
else
  install -m 0640 "$root$checkout/infra/materia.env.example" "$root$env_file"
  host chown "root:$service_user" "$env_file"
  say "wrote $env_file from the template: set ADMIN_PASSWORD and BACKUP_RCLONE_REMOTE in it"
fi

# env_setting NAME DEFAULT: read as systemd's EnvironmentFile= does for this simple case: the
# last assignment, quotes removed; DEFAULT when unset or empty (config/schema.ts's default).
env_setting() {
  value=$(sed -n "s/^$1=//p" "$root$env_file" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\\(.*\\)'$/\\1/")
  echo "${value:-$2}"
}
# The same ref the daemon's self-update follows, so the two never pull in different directions.
git_ref=$(env_setting MATERIA_GIT_REF "")
code_changed=false
if [ -n "$git_ref" ]; then
  as_service_user git -C "$root$checkout" fetch --quiet origin
  target=$(as_service_user git -C "$root$checkout" rev-parse --verify --quiet "$git_ref^{commit}") ||
    die "MATERIA_GIT_REF=$git_ref (in $env_file) is not a commit in $checkout after git fetch"
  if [ "$(as_service_user git -C "$root$checkout" rev-parse HEAD)" != "$target" ]; then
    say "switching $checkout to $git_ref ($target)"
    as_service_user git -C "$root$checkout" switch --quiet --discard-changes --detach "$target"
    code_changed=true
  fi
fi

# npm ci runs infra/setup.sh (venv, tsc) through `prepare`; the stamp skips it when the lock
# file is unchanged, and setup.sh alone rebuilds dist/ for a new commit.
stamp=$checkout/node_modules/.materia-package-lock.sha256
if [ -n "$root" ]; then
  host "cd $checkout && npm ci (when package-lock.json changed) && sh infra/setup.sh"
elif [ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum "$checkout/package-lock.json" | cut -d' ' -f1)" ]; then
  say "installing dependencies (npm ci)"
  # --include=dev: the build needs TypeScript, a devDependency, whatever NODE_ENV says.
  (cd "$checkout" && as_service_user npm ci --include=dev --no-audit --no-fund)
  sha256sum "$checkout/package-lock.json" | cut -d' ' -f1 | as_service_user tee "$stamp" >/dev/null
elif $code_changed; then
  (cd "$checkout" && as_service_user sh infra/setup.sh)
fi

web_host=$(env_setting WEB_HOST 127.0.0.1)
web_port=$(env_setting WEB_PORT 5000)
if [ "$web_port" = 0 ]; then
  # systemd's ListenStream= needs a fixed port; without the socket the daemon binds one itself.
  say "WEB_PORT=0 (any free port): no $socket_unit; the daemon binds the port itself"
  socket_unit=""
fi
case $web_host in
  *:*) listen_stream="[$web_host]:$web_port" ;;
  *) listen_stream="$web_host:$web_port" ;;
esac
# render_unit UNIT: the unit as installed; the socket listens where the env file says.
render_unit() {
  sed "s|^ListenStream=.*|ListenStream=$listen_stream|" "$root$checkout/infra/systemd/$1"
}

units_changed=false
socket_changed=false
mkdir -p "$root$unit_dir"
for unit in $socket_unit $units; do
  if ! render_unit "$unit" | cmp -s - "$root$unit_dir/$unit"; then
    render_unit "$unit" > "$root$unit_dir/$unit.new"
    chmod 0644 "$root$unit_dir/$unit.new"
    mv "$root$unit_dir/$unit.new" "$root$unit_dir/$unit"
    say "installed $unit_dir/$unit"
    units_changed=true
    if [ "$unit" = "$socket_unit" ]; then socket_changed=true; fi
  fi
done

[ -e "$root$config_dir/rclone.conf" ] ||
  say "no $config_dir/rclone.conf yet: the backup timer fails until it exists (OPERATIONS.md, Backup)"

if $units_changed; then host systemctl daemon-reload; fi
# A new or moved socket takes the port over from a running daemon, which holds it itself (or the
# old address): both stop, and enable --now below starts the socket first, then the daemon.
if $socket_changed; then host systemctl stop materia-supervisor.service "$socket_unit"; fi
# try-restart touches only a running daemon (an upgrade); a first install is started below.
if $units_changed || $code_changed; then host systemctl try-restart materia-supervisor.service; fi
# shellcheck disable=SC2086 # no word when there is no socket unit
host systemctl enable --now $socket_unit materia-supervisor.service materia-backup.timer
say "done"
