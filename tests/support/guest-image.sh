#!/usr/bin/env bash
# Builds the guest image the VM tests boot: a minimal Debian with systemd, sshd, cloud-init (NoCloud) and
# docker.io, as a qcow2 disk plus the kernel and initrd for direct kernel boot. No image comes from the
# internet: everything is debootstrapped from the Debian mirror apt already uses.
#
# Usage: tests/support/guest-image.sh        (as root; prints the image folder on stdout, progress on stderr)
#
# The result is cached by its inputs (this script, which holds the package list, and the suite) in
# ${SWARMFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swarmform}/guest-<hash>/, so a machine builds it once:
#   disk.qcow2  root filesystem (ext4, whole disk, no partition table: root=/dev/vda)
#   vmlinuz     kernel
#   initrd.img  initramfs with virtio_pci, virtio_blk, virtio_net and ext4
#   cmdline     kernel command line to boot it with
#   build.log   what the build printed, with the time of each step
# No loop devices, no mounts of the image: mkfs.ext4 -d copies the root tree into a sparse file.
# Needs: debootstrap, e2fsprogs (mkfs.ext4 -d), qemu-utils (qemu-img). Set SWARMFORM_DEBIAN_MIRROR to
# override the mirror (default: the first URIs of /etc/apt/sources.list.d/debian.sources).
set -euo pipefail

SUITE="${SWARMFORM_GUEST_SUITE:-bookworm}"
# python3-cffi-backend: cloud-init needs it and debootstrap does not resolve the virtual package that
# provides it. dbus: `virsh shutdown` and hostnamectl. qemu-guest-agent: addresses and clean shutdown.
PACKAGES=(
  linux-image-amd64 systemd-sysv udev dbus sudo openssh-server cloud-init python3-cffi-backend
  docker.io iproute2 ifupdown isc-dhcp-client ca-certificates qemu-guest-agent
)
# The root filesystem size (a sparse file: only what is written takes space).
DISK_SIZE="${SWARMFORM_GUEST_DISK_SIZE:-3G}"
CMDLINE="root=/dev/vda rw console=ttyS0 apparmor=0 net.ifnames=0"

for tool in debootstrap mkfs.ext4 qemu-img sha256sum flock; do
  if ! command -v "$tool" >/dev/null; then
    echo "guest-image: '$tool' not found; install: apt-get install debootstrap e2fsprogs qemu-utils coreutils util-linux" >&2
    exit 2
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "guest-image: must run as root (debootstrap chroots, and the image keeps root-owned files)" >&2
  exit 2
fi

CACHE="${SWARMFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swarmform}"
HASH="$( (cat "$0"; echo "$SUITE") | sha256sum | cut -c1-16)"
OUT="$CACHE/guest-$HASH"
mkdir -p "$CACHE"

# One build at a time per cache folder; a second caller waits, then finds the image cached.
exec 9>"$CACHE/guest-$HASH.lock"
flock 9

if [ -f "$OUT/disk.qcow2" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] && [ -f "$OUT/cmdline" ]; then
  echo "guest-image: cached $OUT" >&2
  echo "$OUT"
  exit 0
fi

mirror="${SWARMFORM_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

WORK="$(mktemp -d "$CACHE/.guest-$HASH.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
LOG="$WORK/build.log"
started=$(date +%s)
step() { echo "guest-image: [$(($(date +%s) - started))s] $*" | tee -a "$LOG" >&2; }

step "debootstrap $SUITE from $mirror into $ROOT (takes minutes)"
include="$(
  IFS=,
  echo "${PACKAGES[*]}"
)"
if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$ROOT" "$mirror" >>"$LOG" 2>&1; then
  echo "guest-image: debootstrap failed; last lines of its log:" >&2
  tail -n 30 "$LOG" >&2
  [ -f "$ROOT/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2
  exit 1
fi

step "configure the root tree"
echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" >"$ROOT/etc/fstab"
echo "localhost" >"$ROOT/etc/hostname"
# Each guest gets its own machine-id and SSH host keys on first boot (systemd and cloud-init make them).
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT"/etc/ssh/ssh_host_*
# Only our NoCloud seed: no probing of cloud metadata services that do not exist here.
cat >"$ROOT/etc/cloud/cloud.cfg.d/90_swarmform.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
# No `locales` package in the image: C.UTF-8 is built in, so cloud-init must not try to generate one.
locale: C.UTF-8
EOF
# A small initrd with just what a virtio guest needs to mount its root (7 MB instead of 36 MB).
sed -i 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk virtio_net ext4 >>"$ROOT/etc/initramfs-tools/modules"
chroot "$ROOT" update-initramfs -u -k all >>"$LOG" 2>&1
# Downloaded packages are not needed in the guest.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT/debootstrap"

step "mkfs.ext4 -d (sparse $DISK_SIZE file, no loop device) and qemu-img convert to qcow2"
truncate -s "$DISK_SIZE" "$WORK/disk.raw"
mkfs.ext4 -q -F -L swarmform-root -d "$ROOT" "$WORK/disk.raw" >>"$LOG" 2>&1
qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
rm -f "$WORK/disk.raw"
cp -L "$ROOT/vmlinuz" "$WORK/vmlinuz"
cp -L "$ROOT/initrd.img" "$WORK/initrd.img"
echo "$CMDLINE" >"$WORK/cmdline"
rm -rf "$ROOT"

step "done: $(du -h "$WORK/disk.qcow2" | cut -f1) disk, $(du -h "$WORK/initrd.img" | cut -f1) initrd"
rm -rf "$OUT"
mv "$WORK" "$OUT"
trap - EXIT
echo "$OUT"
