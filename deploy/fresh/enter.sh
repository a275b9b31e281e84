#!/usr/bin/env bash
# Enters the fresh root. Run by `python -m deploy.fresh` through
#   ip netns exec <ns> unshare --pid --fork --kill-child --mount --uts --mount-proc=<root>/proc
# so it is already in the root's own network, PID, mount and UTS namespaces, with /proc
# mounted. It mounts the rest of what a booted Debian has (/sys, a private /dev with its
# own devpts, /dev/shm, /run), names the machine, and becomes the root's PID 1: inside.sh
# in the chroot with the arguments given after the root.
#
# Every mount here belongs to this mount namespace only (unshare makes it private), so
# they vanish with its last process: the host never sees them and nothing needs
# unmounting by hand, even after a kill -9.
#
# Usage: enter.sh ROOT COMMAND...   (COMMAND is run in the chroot)
set -euo pipefail

root="$1"
shift

mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"

# A /dev of its own: the usual character devices bound from the host, a new devpts
# instance (the desktop tests' pseudo-terminals), and a private /dev/shm (PostgreSQL's
# shared memory), so that nothing in the root writes to the host's.
mount -t tmpfs -o mode=0755,nosuid,size=16m tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    : >"$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
# gid 5 is Debian's tty group.
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

# /run is a tmpfs on a booted Debian (/var/run points there).
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
install -d -m 1777 "$root/run/lock"

hostname "$(cat "$root/etc/hostname")"

exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
