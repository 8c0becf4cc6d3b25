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
# daemon-reload, a restart if code or units changed, enable --now.
set -eu

service_user=materia
checkout=/opt/materia
data_dir=/data/materia
config_dir=/etc/materia
home_dir=/var/lib/materia
unit_dir=/etc/systemd/system
units="materia-supervisor.service materia-backup.service materia-backup.timer materia-alert@.service"
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

# The same ref the daemon's self-update follows, so the two never pull in different directions.
# Read as systemd's EnvironmentFile= does for this simple case: the last assignment, quotes removed.
git_ref=$(sed -n 's/^MATERIA_GIT_REF=//p' "$root$env_file" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\\(.*\\)'$/\\1/")
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

units_changed=false
mkdir -p "$root$unit_dir"
for unit in $units; do
  if ! cmp -s "$root$checkout/infra/systemd/$unit" "$root$unit_dir/$unit"; then
    install -m 0644 "$root$checkout/infra/systemd/$unit" "$root$unit_dir/$unit"
    say "installed $unit_dir/$unit"
    units_changed=true
  fi
done

[ -e "$root$config_dir/rclone.conf" ] ||
  say "no $config_dir/rclone.conf yet: the backup timer fails until it exists (OPERATIONS.md, Backup)"

if $units_changed; then host systemctl daemon-reload; fi
# try-restart touches only a running daemon (an upgrade); a first install is started below.
if $units_changed || $code_changed; then host systemctl try-restart materia-supervisor.service; fi
host systemctl enable --now materia-supervisor.service materia-backup.timer
say "done"
