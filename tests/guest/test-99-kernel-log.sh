#!/bin/sh
# Last of the test scripts: the kernel said nothing alarming during all of
# them (the test kernel has lockdep, so this covers lock order too).
. /bin/lib.sh
check_kernel_log kernel_log_clean
# lockdep ran and is still on: it switches itself off after a report.
if grep -Eq "debug_locks: +1" /proc/lockdep_stats 2>/dev/null; then
	pass lockdep_active
else
	fail lockdep_active "$(grep debug_locks /proc/lockdep_stats 2>&1)"
fi
