#!/bin/sh
# Property tests on seeded layouts nobody tuned the module for (see
# tests/layouts.sh): each seed's image is defragmented once with the
# module and once, on a copy, with the stock EXT4_IOC_MOVE_EXT path, and
# the module must do no worse. Seeds 1-4 cover 1 KiB blocks (1), a
# 2 GiB filesystem (2), a file of 3000-5000 extents (3) and sparse files
# (2, 4); seed 5 (1 KiB blocks again) was dropped to keep make test short.
# e4d.seeds=1,2,... on the kernel command line picks others.
. /bin/lib.sh
lsmod | grep -q ext4_defrag || insmod $KO
seeds=$(cmdline_seeds "1 2 3 4")
# The images live in RAM: a tmpfs of its own, bigger than /tmp's default
# half of it (one image and one working copy at a time, a few hundred MiB).
mkdir -p /tmp/layouts
mount -t tmpfs -o size=75% tmpfs /tmp/layouts
for seed in $seeds; do
	echo "== layout seed $seed"
	WORK=/tmp/layouts /bin/layouts.sh "$seed" module move-ext
done
umount /tmp/layouts
