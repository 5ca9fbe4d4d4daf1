#!/bin/sh
# e4defrag, the tool, with the module backend: the host tests
# (tools/e4defrag/tests/host_ext4.rs, which the host runs with the stock
# kernel's EXT4_IOC_MOVE_EXT) run here as they are, the same test binary
# (scripts/host-tests.sh), with E4D_BACKEND=module. Each test makes its
# ext4 images with mke2fs, loop-mounts them, checks data, timestamps and
# extents, and ends with e2fsck -fn. One "E4D-RESULT" line per test,
# tool_NAME.
. /bin/lib.sh

lsmod | grep -q ext4_defrag || insmod $KO

# The test's stop point between planning and moving is the MOVE_EXT
# backend's; the module moves a file in one call (test-25's truncate
# between two steps of a move is the kernel's side of it).
# Two -c tests have no backend in them (a check moves nothing) and write
# thousands of files or a 1 GiB image: the host runs them; under TCG they
# cost more than the rest of this script.
skip_tests="a_file_that_shrinks_during_the_run checking_takes_memory_flat_in_the_number_of_files
the_disk_map_counts_every_block_of_a_full_filesystem"
args=""
for t in $skip_tests; do args="$args --skip $t"; done

# util-linux's mount, losetup, findmnt and setpriv for the tests, ahead
# of busybox's (scripts/initramfs.sh); images in /tmp (tmpfs).
cd /tmp || exit 0
export PATH=/usr/lib/util-linux/bin:$PATH E4D_BACKEND=module E4DEFRAG=/usr/sbin/e4defrag
want=$(host_ext4 --list 2>/dev/null | grep -c ': test$')
# shellcheck disable=SC2086
host_ext4 --test-threads 2 $args > /tmp/host_ext4.out 2>&1
echo "== host_ext4 (module backend): $(grep '^test result' /tmp/host_ext4.out)"
# The failures' panics, for the console log.
sed -n '/^failures:$/,/^test result/p' /tmp/host_ext4.out | head -80
ran=0
for t in $(sed -n 's/^test \([a-z0-9_]*\) \.\.\. \(ok\|FAILED\)$/\1:\2/p' /tmp/host_ext4.out); do
	ran=$((ran + 1))
	name=${t%%:*}
	if [ "${t#*:}" = ok ]; then
		pass "tool_$name"
	else
		fail "tool_$name" "$(sed -n "/^---- $name stdout ----$/,/^$/p" /tmp/host_ext4.out |
			grep -v '^----' | grep -v '^$' | head -3 | tr '\n' ' ' | cut -c1-300)"
	fi
done
skipped=$(echo $skip_tests | wc -w)
# Every test of the binary ran (or is skipped above, with its reason).
[ "$want" -gt 0 ] && [ $((ran + skipped)) -eq "$want" ] && pass tool_host_tests_all_ran ||
	fail tool_host_tests_all_ran "$ran ran and $skipped skipped of $want"
