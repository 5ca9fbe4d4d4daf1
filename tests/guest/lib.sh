# Helpers shared by the guest's scenario and demo scripts (sourced).

KO=/lib/modules/ext4_defrag.ko

pass() { echo "E4D-RESULT: PASS $1"; }
fail() { echo "E4D-RESULT: FAIL $1: $2"; }
# skip NAME WHY: a check that cannot run here (the runner lists it apart).
skip() { echo "E4D-RESULT: SKIP $1: $2"; }

# require_cmd CMD NAME WHY: true when CMD is in the guest, else the
# checks NAME are skipped, saying WHY (as fstests' _require_command).
require_cmd() {
	command -v "$1" > /dev/null 2>&1 && return
	skip "$2" "no $1 in the guest: $3"
	return 1
}

# Move the kernel log into /tmp/kernel.log, which the last scenario checks.
save_kernel_log() { dmesg -c >> /tmp/kernel.log; }

# check_kernel_log NAME: no BUG, WARNING (lockdep's reports among them),
# oops, use-after-free, UBSAN or KFENCE report in the kernel log so far.
check_kernel_log() {
	save_kernel_log
	bad=$(grep -E "BUG|WARNING|Oops|Call Trace|general protection|refcount_t|use-after-free|possible .*locking|lock held|UBSAN|KFENCE" \
		/tmp/kernel.log | head -3)
	if [ -z "$bad" ]; then
		pass "$1"
	else
		fail "$1" "$bad"
		# The whole report, for the console log.
		grep -A30 -E "BUG|WARNING" /tmp/kernel.log | head -60
	fi
}

# load_module: insmod; what the kernel logged meanwhile (the KUnit suite's
# KTAP among it) is left in /tmp/insmod.log and appended to the kernel log.
load_module() {
	save_kernel_log
	insmod $KO || return 1
	dmesg -c > /tmp/insmod.log
	cat /tmp/insmod.log >> /tmp/kernel.log
}

# print_ktap: the KUnit suite's KTAP from the last load_module, each line
# prefixed for the host runner.
print_ktap() {
	awk '/KTAP version/ { p = 1 } p { print "KTAP: " $0 }
		/^(not )?ok [0-9]+ ext4_defrag/ { p = 0 }' /tmp/insmod.log
}

# filefrag_map FILE BLOCK...: "BLOCK PBLK STATE" per block, from filefrag -e
# (FIEMAP as e2fsprogs reads it); a hole is "BLOCK 0 hole".
filefrag_map() {
	file=$1
	shift
	filefrag -e "$file" > /tmp/filefrag.out || return 1
	awk -v blocks="$*" '
		$1 ~ /^[0-9]+:$/ {
			line = $0
			gsub(/\.\./, " ", line)
			gsub(/:/, " ", line)
			split(line, f, " ")
			n++
			ls[n] = f[2]; le[n] = f[3]; ps[n] = f[4]
			un[n] = ($0 ~ /unwritten/)
		}
		END {
			nb = split(blocks, b, " ")
			for (i = 1; i <= nb; i++) {
				out = b[i] " 0 hole"
				for (e = 1; e <= n; e++)
					if (b[i] >= ls[e] && b[i] <= le[e]) {
						out = b[i] " " (ps[e] + b[i] - ls[e]) " " \
							(un[e] ? "unwritten" : "mapped")
						break
					}
				print out
			}
		}' /tmp/filefrag.out
}

# tool_map BACKEND FILE BLOCK...: the same, as e4defrag --map answers it.
tool_map() {
	backend=$1 file=$2
	shift 2
	args=""
	for b in "$@"; do args="$args -b $b"; done
	# shellcheck disable=SC2086
	e4defrag --map --backend "$backend" $args "$file" |
		awk '{ sub(/:$/, "", $3); sub(/,$/, "", $5); print $3, $5, $8 }'
}

# fsck_ok NAME: e2fsck -fn of $DEV (unmounted for it) is clean.
# discontinuities: the read-order discontinuities of the set in the report
# of e4defrag -c on standard input.
discontinuities() {
	sed -n 's/.*files read in order: \([0-9]*\) discontinuities.*/\1/p'
}

# cmdline_seeds DEFAULT: the seeds e4d.seeds=1,2,... on the kernel command
# line names, space-separated; DEFAULT without one.
cmdline_seeds() {
	seeds=$1
	for arg in $(cat /proc/cmdline); do
		case $arg in e4d.seeds=*) seeds=$(echo "${arg#e4d.seeds=}" | tr , ' ') ;; esac
	done
	echo "$seeds"
}

fsck_ok() {
	umount /mnt
	if e2fsck -fn "$DEV" > /tmp/fsck 2>&1; then
		pass "$1"
	else
		fail "$1" "$(tail -5 /tmp/fsck | tr '\n' ';')"
	fi
}

# extent_count FILE: extents as filefrag counts them.
extent_count() { filefrag "$1" | awk '{ print $(NF-2) }'; }

# make_fragmented FILE NBLOCKS: write FILE one block at a time, each write
# synced and interleaved with a filler file that is then deleted, so FILE
# ends up in many short extents (fraggen interleave: one process, where two
# dd and two taskset per block cost most of the time under TCG).
make_fragmented() {
	fraggen interleave "$1" "$2"
}

# sha FILE: the file's SHA-256.
sha() { sha256sum "$1" | cut -d' ' -f1; }

# first_pblk FILE: physical block of logical block 0, as the module says.
first_pblk() { tool_map module "$1" 0 | cut -d' ' -f2; }

# extent_depth FILE: depth of FILE's extent tree (0: extents in the inode).
extent_depth() {
	debugfs -c -R "ex $1" "$(awk '$2 == "/mnt" { print $1 }' /proc/mounts)" 2>/dev/null |
		awk 'NR == 2 { split($0, a, "/"); split(a[2], b, " "); print b[1] + 0; exit }'
}

# fill_fs DIR: fill the filesystem with one-block files DIR/0, DIR/1, ...
# until it is full; prints how many (fraggen fill).
fill_fs() {
	fraggen fill "$1"
}

# make_holey FILE NBLOCKS [STRETCH]: on a small, fresh filesystem, write
# FILE into one-block holes so it has about NBLOCKS extents (a deep extent
# tree for thousands), then free the rest of the space so a contiguous copy
# fits. With STRETCH, FILE is sparse: STRETCH - 1 blocks of data, then a
# one-block hole, and so on (fraggen holey: the holes punched into one
# fallocated filler, where thousands of one-block files written and
# unlinked took minutes under TCG).
make_holey() {
	fraggen holey "$@"
}

# scattered DIR N: N small files (1-3 blocks) each followed on disk by a
# two-block filler; every other filler is deleted afterwards (fraggen
# scatter: one process).
scattered() {
	fraggen scatter "$1" "$2"
}

# crowded_set DIR: on a filesystem with no reserved clusters (set so),
# fill the free space with 64-block files DIR/others/oN, delete every
# other one, write a set of 40 files of 24 blocks (DIR/set/sN) into the
# 64-block holes, and make every 30th remaining other file (o1, o61, ...)
# immutable: no free run holds the set (for making room; fraggen crowded:
# one process, where a dd per file took about a minute under TCG).
crowded_set() {
	fraggen crowded "$1"
}

# start_recording LIST MOUNT ERRFILE: e4defrag --record LIST of MOUNT in
# the background (for 600 s at most; its pid in $rec), returning once it
# says it is recording (or after 20 s).
start_recording() {
	e4defrag --record "$1" --time-limit 600s "$2" 2> "$3" &
	rec=$!
	i=0
	while ! grep -q "recording the files" "$3" && [ $i -lt 200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# The seek-aware disk model (tests/nbd_disk.py) on DEV: its control MiB
# past the image's end, in 4 KiB blocks. model_stats DEV prints its
# counters (key=value words), model_drop DEV empties the drive's
# read-ahead cache, model_delta DEV BEFORE prints what it did since the
# counters were BEFORE, as model_KEY=value words. model_map DEV MOUNT
# tells it where the filesystem mounted at MOUNT keeps its inode tables,
# directory blocks and bitmaps, so that its counters split reads by kind
# (the metadata moves when a variant copies or creates files: map it
# again before each read). model_restore DEV has the host copy the
# model's master image over DEV (uncharged) and drops DEV's page cache,
# which no longer matches; DEV must not be mounted. model_pace DEV 0
# stops the model's waiting between measured phases (it still counts),
# model_pace DEV 1 starts it again.
model_ctl() { echo $(($(cat "/sys/block/$1/size") / 8 - 256)); }
model_stats() {
	dd if="/dev/$1" bs=4096 skip="$(model_ctl "$1")" count=1 iflag=direct 2>/dev/null | head -1
}
model_drop() {
	printf drop | model_ctl_write "$1" drop
}
model_restore() {
	printf restore | model_ctl_write "$1" restore && blockdev --flushbufs "/dev/$1"
}
model_pace() {
	printf "sleep %s" "$2" | model_ctl_write "$1" "sleep $2"
}
# model_ctl_write DEV WHAT: standard input, one block, into DEV's control
# MiB; a refusal is a benchmark error (a mounted disk needs
# bdev_allow_write_mounted=1 on this kernel: tests/bench.py gives it).
model_ctl_write() {
	dd of="/dev/$1" bs=4096 seek="$(model_ctl "$1")" count=1 oflag=direct conv=sync \
		2>/tmp/model-ctl.err && return
	echo "E4D-BENCH: error the model's control MiB refused $2: $(tail -1 /tmp/model-ctl.err)"
	return 1
}
model_delta() {
	awk -v a="$2" -v b="$(model_stats "$1")" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= n; i++) {
			split(x[i], kv, "="); split(y[i], kw, "=")
			printf "%smodel_%s=%s", (i > 1 ? " " : ""), kv[1], kw[2] - kv[2]
		}
	}'
}
model_map() {
	local bs f
	bs=$(dumpe2fs -h "/dev/$1" 2>/dev/null | awk '/^Block size:/ { print $3 }')
	rm -f /tmp/model-map.*
	{
		dumpe2fs "/dev/$1" 2>/dev/null | awk '
			function out(kind, what,  r) {
				split(what, r, "-")
				print kind, r[1], (r[2] == "" ? 1 : r[2] - r[1] + 1)
			}
			/superblock at/ { sub(",", "", $4); out("bitmap", $4) }
			/Group descriptors at/ { out("bitmap", $NF) }
			/Reserved GDT blocks at/ { out("bitmap", $NF) }
			/Block bitmap at|Inode bitmap at/ { out("bitmap", $4) }
			/Inode table at/ { out("itable", $4) }'
		find "$2" -xdev -type d -exec filefrag -e {} + 2>/dev/null | awk -F'[:.]+' '
			/^ *[0-9]+: / { print "dir", $4 + 0, $6 + 0 }'
	} | awk -v bs="$bs" '
		# Blocks of at most 4000 bytes, each a command of its own.
		function start() { n++; f = "/tmp/model-map." n; len = 0
			printf "%s %d\n", (n == 1 ? "map" : "map+"), bs > f }
		BEGIN { start() }
		{ if (len + length($0) > 3900) { close(f); start() }
		  print > f; len += length($0) + 1 }'
	for f in /tmp/model-map.*; do
		model_ctl_write "$1" map < "$f"
	done
}

# The EXT4_IOC_DEFRAG scenarios' helpers (test-2*.sh), on $DEV.

# fresh_fs [MKE2FS OPTIONS]: a new ext4 on $DEV mounted at /mnt, of
# $FS_SIZE (mke2fs syntax) or the whole disk.
fresh_fs() {
	umount /mnt 2>/dev/null
	# shellcheck disable=SC2086
	mkfs.ext4 -q -F -b 4096 "$@" "$DEV" $FS_SIZE && mount -t ext4 "$DEV" /mnt
}

# as_user CMD...: run CMD as the unprivileged user 1000.
as_user() { su user -c "$*"; }

# expect_refused NAME ERRNO FILE [E4DEFRAG ARGS]: the defrag (run through
# $RUNNER, if set) fails with ERRNO and leaves FILE's data and extents as
# they were.
expect_refused() {
	name=$1 errno=$2 file=$3
	shift 3
	sum=$(sha "$file") ext=$(extent_count "$file")
	if $RUNNER e4defrag "$@" "$file" > /tmp/out 2>&1; then
		fail "$name" "succeeded: $(cat /tmp/out)"
	elif ! grep -q "$errno" /tmp/out; then
		fail "$name" "wanted $errno: $(cat /tmp/out)"
	elif [ "$(sha "$file")" != "$sum" ] || [ "$(extent_count "$file")" != "$ext" ]; then
		fail "$name" "the file changed"
	else
		pass "$name"
	fi
}

# group1_first_free: the first free block of group 1 of $DEV, as the
# on-disk bitmap says (dumpe2fs).
group1_first_free() {
	dumpe2fs "$DEV" 2>/dev/null | awk '/^Group 1:/ { g = 1 } g && /Free blocks: [0-9]/ {
	sub(/-.*/, "", $3); print $3; exit }'
}

# data_runs FILE: FILE's data blocks in file order, as "first-last" runs.
data_runs() { filefrag -e "$1" | awk -F'[:.]+' '/^ *[0-9]+: / { printf "%d-%d ", $4, $5 }'; }
