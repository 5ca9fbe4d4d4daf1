#!/bin/sh
# ioctl fuzz: 10,000 seeded random EXT4_IOC_DEFRAG and EXT4_IOC_FIBMAP
# calls (tests/drivers/src/bin/ioctlfuzz.rs) on descriptors of every kind
# (read-only, O_PATH, directory, FIFO, another filesystem, a deleted file,
# an O_TMPFILE...), with random fields, flags and argument pointers. No
# data may change, e2fsck must be clean and the kernel log quiet (no oops,
# WARN, lockdep, KFENCE or UBSAN report).
. /bin/lib.sh
DEV=/dev/vda
lsmod | grep -q ext4_defrag || insmod $KO
umount /mnt 2>/dev/null
mkfs.ext4 -q -F -b 4096 "$DEV" 256M && mount -t ext4 "$DEV" /mnt ||
	{ fail fuzz_mkfs "mkfs or mount failed"; exit 0; }
for seed in 1 2; do
	mkdir -p /mnt/fuzz
	echo "== ioctl fuzz: seed $seed, 5000 calls"
	if ioctlfuzz "$seed" 5000 /mnt/fuzz /tmp > /tmp/fuzz.out 2>&1; then
		pass "ioctl_fuzz_seed_${seed}_data_intact"
	else
		fail "ioctl_fuzz_seed_${seed}_data_intact" "$(tail -1 /tmp/fuzz.out)"
	fi
	# The outcomes, most frequent first.
	sort -rn /tmp/fuzz.out | head -12 | sed 's/^/== /'
	tail -1 /tmp/fuzz.out | sed 's/^/== /'
	rm -rf /mnt/fuzz
done
fsck_ok e2fsck_clean_after_ioctl_fuzz
check_kernel_log ioctl_fuzz_kernel_log_clean
