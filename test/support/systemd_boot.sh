#!/bin/sh
# Boots systemd as PID 1 of the private PID + mount + UTS + IPC namespace this script runs in.
# test/support/systemd_namespace.ts starts it as
#   unshare --pid --fork --kill-child --mount --uts --ipc --mount-proc sh systemd_boot.sh …
# and talks to the booted manager with `nsenter -t <its PID> -m -p -u -i systemctl …`.
#
#   systemd_boot.sh DIR HOST_MNT_NS CGROUP_NAME TARGET LAYERS_SIZE [ro|rw=HOST_PATH=PATH_INSIDE]…
#
# Nothing the namespace does may reach the host, which other people use at the same time:
# - the root is an overlay of the host's / whose writes go to a tmpfs (DIR/layers), so units,
#   users, /etc/materia, /opt/materia, /data/materia, /var/lib/… exist inside only;
# - THE TRAP: systemd-tmpfiles at boot empties /tmp and /var/tmp. Fresh tmpfs go over /tmp,
#   /var/tmp, /run and /var/log/journal before systemd starts, and the tmpfiles units are masked;
# - /dev is a private tmpfs with its own device nodes: systemd creates directories and symlinks in
#   /dev and chmods the console, which on a bind of the host's /dev would change the host's;
# - /sys is a read-only bind, /proc/sys read-only, and /sys/fs/cgroup a private tmpfs holding
#   binds of the host's hierarchies: systemd remounts /sys/fs/cgroup read-only and mounts the
#   controllers it misses there, which on the host's own tmpfs would change it for everyone;
# - systemd manages its units below a cgroup of its own (CGROUP_NAME), so two namespaces booted
#   at the same time never share one (this kernel has no cgroup namespaces);
# - every unit another target of the host would start is masked, and systemd runs without the
#   capabilities to set the clock or load kernel modules;
# - HOST_PATH=PATH_INSIDE pairs are bind mounts, read-only or not: the only host paths the
#   namespace can write are the rw ones.
set -eu

dir=$1 host_mnt_ns=$2 cgroup_name=$3 target=$4 layers_size=$5
shift 5

die() { echo "systemd_boot: $*" >&2; exit 1; }
# Each line below would change the host if this ran outside a private PID and mount namespace.
[ "$$" = 1 ] || die "must run as PID 1 of a new PID namespace (under unshare --pid --fork)"
[ "$(readlink /proc/self/ns/mnt)" != "$host_mnt_ns" ] || die "must run in a new mount namespace (unshare --mount)"

root=$dir/root
layers=$dir/layers
mount --make-rprivate /

mount -t tmpfs -o "mode=0700,size=$layers_size" materia-test-layers "$layers"
mkdir "$layers/upper" "$layers/work"
mount -t overlay materia-test-root -o "lowerdir=/,upperdir=$layers/upper,workdir=$layers/work" "$root"

mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/var/tmp"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mkdir -p "$root/var/log/journal"
mount -t tmpfs -o mode=2755,nosuid,nodev tmpfs "$root/var/log/journal"
chgrp systemd-journal "$root/var/log/journal" 2>/dev/null || true

mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
for path in /proc/sys /proc/sysrq-trigger; do
  [ -e "$root$path" ] || continue
  mount --bind "$root$path" "$root$path"
  mount -o remount,bind,ro "$root$path"
done

mount --bind /sys "$root/sys"
mount -o remount,bind,ro,nosuid,nodev,noexec "$root/sys"
# The hierarchies systemd uses to track units: the named v1 one and cgroup2.
tracking_hierarchies=$(awk '$5 ~ "^/sys/fs/cgroup(/|$)" { split($0, halves, " - "); split(halves[2], fs, " ");
  if (fs[1] == "cgroup2" || fs[3] ~ /(^|,)name=systemd(,|$)/) print $5 }' /proc/self/mountinfo)
[ -n "$tracking_hierarchies" ] || die "no cgroup2 or name=systemd hierarchy is mounted under /sys/fs/cgroup"
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
  mount --bind /sys/fs/cgroup "$root/sys/fs/cgroup"
else
  mount -t tmpfs -o mode=0755,nosuid,nodev,noexec tmpfs "$root/sys/fs/cgroup"
  for entry in /sys/fs/cgroup/*; do
    if [ -L "$entry" ]; then
      cp -P "$entry" "$root$entry"
    elif mountpoint -q "$entry"; then
      mkdir "$root$entry"
      mount --bind "$entry" "$root$entry"
    fi
  done
fi
for hierarchy in $tracking_hierarchies; do
  mkdir "$hierarchy/$cgroup_name"
  echo $$ > "$hierarchy/$cgroup_name/cgroup.procs"
done

mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev"
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r name major minor <<EOF
$node
EOF
  mknod -m 0666 "$root/dev/$name" c "$major" "$minor"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

for bind in "$@"; do
  access=${bind%%=*} paths=${bind#*=}
  from=${paths%%=*} to=${paths#*=}
  if [ -d "$from" ]; then mkdir -p "$root$to"; else mkdir -p "$(dirname "$root$to")"; touch "$root$to"; fi
  mount --bind "$from" "$root$to"
  if [ "$access" = ro ]; then mount -o remount,bind,ro "$root$to"; fi
done

units=$root/run/systemd/system
mkdir -p "$units"
# Mask every unit a target of the host wants, journald aside: only what a test installs runs.
keep=" systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket systemd-journald-audit.socket systemd-journal-flush.service "
for wanted in /lib/systemd/system/*.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/systemd-tmpfiles-clean.timer /lib/systemd/system/systemd-timesyncd.service; do
  [ -e "$wanted" ] || [ -L "$wanted" ] || continue
  name=${wanted##*/}
  case "$keep" in *" $name "*) continue ;; esac
  ln -sf /dev/null "$units/$name"
done
cat > "$units/$target" <<EOF
[Unit]
Description=materia test namespace
Requires=sysinit.target
After=sysinit.target
EOF

cd "$root"
mkdir -p .host-root
pivot_root . .host-root
umount -l /.host-root
rmdir /.host-root
# container= tells systemd it runs in a container: no udev, no kernel set-up of its own.
exec env -i container=materia-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  setpriv --bounding-set -sys_time,-sys_module /lib/systemd/systemd --system "--unit=$target"
