#!/bin/sh
# Property tests on seeded layouts nobody tuned the module for (see
# tests/layouts.sh): each seed's image is defragmented once with the
# module and once, on a copy, with the stock EXT4_IOC_MOVE_EXT path, and
# the module must do no worse. The host makes the images (tests/qemu.py:
# layouts.sh --prepare, at native speed; e4d.seeds=1,2,... on its
# --append picks the seeds) and hands the guest two virtio disks per seed,
# serial layout-SEED-module and layout-SEED-move-ext (QEMU keeps each
# one's writes in an overlay of its own), and one tar of the records
# (serial layout-records: the checksums and extents before).
. /bin/lib.sh
lsmod | grep -q ext4_defrag || insmod $KO
# disk_of SERIAL: the virtio disk with that serial number.
disk_of() {
	for s in /sys/block/vd*/serial; do
		[ "$(cat "$s")" = "$1" ] && { d=${s%/serial}; echo "/dev/${d##*/}"; return; }
	done
}
records=$(disk_of layout-records)
if [ -z "$records" ]; then
	fail layouts_disks "no disk with serial layout-records: tests/qemu.py makes them"
	exit 0
fi
mkdir -p /tmp/layouts
tar -xf "$records" -C /tmp/layouts || fail layouts_records "tar -xf $records failed"
seeds=$(cat /tmp/layouts/seeds)
for seed in $seeds; do
	echo "== layout seed $seed"
	devs="module:$(disk_of "layout-$seed-module") move-ext:$(disk_of "layout-$seed-move-ext")"
	LAYOUT_DEVS=$devs WORK=/tmp/layouts /bin/layouts.sh "$seed" module move-ext
done
rm -rf /tmp/layouts
