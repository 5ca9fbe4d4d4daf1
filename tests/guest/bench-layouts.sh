#!/bin/sh
# Benchmark part (make bench): e4defrag -r with each backend on the seeded
# layouts of tests/layouts.sh, each run starting from the same untouched
# image (a fresh copy), written back and with cold caches, three runs per
# backend, alternating. Prints per seed the median and all runs; the
# figures behind "the module is not slower than MOVE_EXT on the same
# work". Under TCG one run varies by 10-15 %, hence medians.
#   bench-layouts.sh [SEED...]   (default: 1 2 3 4 5)
. /bin/lib.sh
lsmod | grep -q ext4_defrag || insmod $KO
seeds=${*:-1 2 3 4 5}
work=/tmp/bench-layouts
mkdir -p $work
mount -t tmpfs -o size=75% tmpfs $work
mnt=$work/mnt
mkdir -p $mnt
opts=nodelalloc,noinit_itable,mb_optimize_scan=1

uptime_s() { cut -d' ' -f1 /proc/uptime; }
# median A B C
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }

for seed in $seeds; do
	set -- $(fraggen params "$seed")
	bs=$1 mib=$2
	base=$work/base.img
	rm -f $base
	truncate -s "${mib}M" $base
	mkfs.ext4 -q -F -b "$bs" -E lazy_itable_init=1,nodiscard $base || continue
	loop=$(losetup -f) && losetup "$loop" $base && mount -t ext4 -o $opts "$loop" $mnt || continue
	fraggen build "$seed" $mnt > /dev/null 2>&1
	umount $mnt
	losetup -d "$loop"
	times_module="" times_move_ext="" result=""
	for rep in 1 2 3; do
		for b in module move-ext; do
			fraggen copy $base $work/w.img || continue
			loop=$(losetup -f) && losetup "$loop" $work/w.img &&
				mount -t ext4 -o $opts "$loop" $mnt || continue
			sync
			echo 3 > /proc/sys/vm/drop_caches
			t0=$(uptime_s)
			out=$(e4defrag --backend $b -r $mnt/boot 2>&1) || result="$result $b:FAILED"
			t1=$(uptime_s)
			t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
			disc=$(echo "$out" | sed -n 's/.*discontinuities \([0-9]* -> [0-9]*\).*/\1/p')
			if [ $b = module ]; then
				times_module="$times_module $t" disc_module=$disc
			else
				times_move_ext="$times_move_ext $t" disc_move_ext=$disc
			fi
			umount $mnt
			losetup -d "$loop"
			rm -f $work/w.img
		done
	done
	m=$(median $times_module) x=$(median $times_move_ext)
	printf 'bench: layout seed %s -r: module %s s (runs%s, discontinuities %s), move-ext %s s (runs%s, discontinuities %s), module/move-ext %s%s\n' \
		"$seed" "$m" "$times_module" "$disc_module" "$x" "$times_move_ext" "$disc_move_ext" \
		"$(awk -v a="$m" -v b="$x" 'BEGIN { printf "%.2f", a / b }')" "$result"
	rm -f $base
done
umount $work
