# Helpers shared by the guest's scenario and demo scripts (sourced).

KO=/lib/modules/ext4_defrag.ko

pass() { echo "E4D-RESULT: PASS $1"; }
fail() { echo "E4D-RESULT: FAIL $1: $2"; }

# Move the kernel log into /tmp/kernel.log, which the last scenario checks.
save_kernel_log() { dmesg -c >> /tmp/kernel.log; }

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

# extent_count FILE: extents as filefrag counts them.
extent_count() { filefrag "$1" | awk '{ print $(NF-2) }'; }

# make_fragmented FILE NBLOCKS: write FILE one block at a time, each write
# synced and interleaved with a filler file that is then deleted, so FILE
# ends up in many short extents. Small requests share a locality-group
# preallocation when mb_stream_req is large, which is what interleaves them.
make_fragmented() {
	file=$1 n=$2
	knob=/sys/fs/ext4/$(basename "$(awk '$2 == "/mnt" { print $1 }' /proc/mounts)")/mb_stream_req
	old=$(cat "$knob")
	echo 1000000 > "$knob"
	i=0
	while [ "$i" -lt "$n" ]; do
		taskset -c 0 dd if=/dev/urandom of="$file" bs=4096 count=1 seek=$i \
			conv=notrunc,fsync 2>/dev/null
		taskset -c 0 dd if=/dev/zero of="$file.filler" bs=4096 count=1 seek=$i \
			conv=notrunc,fsync 2>/dev/null
		i=$((i + 1))
	done
	rm -f "$file.filler"
	echo "$old" > "$knob"
}
