// SPDX-License-Identifier: GPL-2.0
/*
 * compat32: the module's ioctls from a 32-bit program, through ext4's
 * compat_ioctl path. Built with gcc -m32 -static into the test initramfs.
 *
 *   compat32 FILE    prints "fibmap PBLK STATE" for logical block 0, then
 *                    "defrag MOVED BEFORE AFTER" for the whole file, or
 *                    "IOCTL: ERRNO-NAME" and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/ext4_defrag.h>

int main(int argc, char **argv)
{
	struct ext4_fibmap_data fb;
	struct ext4_ext_defrag_data d;
	int fd;

	if (argc != 2 || sizeof(void *) != 4) {
		fprintf(stderr, "usage: compat32 FILE (a 32-bit build)\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	memset(&fb, 0, sizeof(fb));
	if (ioctl(fd, EXT4_IOC_FIBMAP, &fb) < 0) {
		printf("EXT4_IOC_FIBMAP: %s\n", strerror(errno));
		return 1;
	}
	printf("fibmap %llu %u\n", (unsigned long long)fb.pblk, fb.state);
	memset(&d, 0, sizeof(d));
	if (ioctl(fd, EXT4_IOC_DEFRAG, &d) < 0) {
		printf("EXT4_IOC_DEFRAG: %s\n", strerror(errno));
		return 1;
	}
	printf("defrag %llu %u %u\n", (unsigned long long)d.moved_blocks,
	       d.extents_before, d.extents_after);
	return 0;
}
