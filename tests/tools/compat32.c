// SPDX-License-Identifier: GPL-2.0
/*
 * compat32 DEVICE: built with -m32, exercises the 32-bit compat loop ioctls on a bound
 * device: LOOP_GET_STATUS (struct compat_loop_info), LOOP_SET_STATUS, LOOP_GET_STATUS64.
 * Prints "ok" and exits 0, or prints what differed and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct loop_info info;
	struct loop_info64 info64;
	int fd;

	if (argc != 2 || sizeof(long) != 4) {
		fprintf(stderr, "usage: compat32 DEVICE (a 32-bit build)\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, LOOP_GET_STATUS, &info)) {
		perror("LOOP_GET_STATUS");
		return 1;
	}
	/* A legacy caller changes the offset and the name, sets autoclear. */
	info.lo_offset = 4096;
	info.lo_flags |= LO_FLAGS_AUTOCLEAR;
	strcpy(info.lo_name, "compat-name");
	if (ioctl(fd, LOOP_SET_STATUS, &info)) {
		perror("LOOP_SET_STATUS");
		return 1;
	}
	memset(&info64, 0, sizeof(info64));
	if (ioctl(fd, LOOP_GET_STATUS64, &info64)) {
		perror("LOOP_GET_STATUS64");
		return 1;
	}
	if (info64.lo_offset != 4096 || !(info64.lo_flags & LO_FLAGS_AUTOCLEAR) ||
	    strcmp((char *)info64.lo_file_name, "compat-name")) {
		fprintf(stderr, "status64 after compat SET_STATUS: offset %llu flags %u name %s\n",
			(unsigned long long)info64.lo_offset, info64.lo_flags,
			(char *)info64.lo_file_name);
		return 1;
	}
	/*
	 * Every byte the kernel writes is a field or zero: none is left from the buffer. Two
	 * calls into buffers filled differently must give the same bytes.
	 */
	{
		struct loop_info a, b;
		struct loop_info64 a64, b64;

		memset(&a, 0xAA, sizeof(a));
		memset(&b, 0x55, sizeof(b));
		memset(&a64, 0xAA, sizeof(a64));
		memset(&b64, 0x55, sizeof(b64));
		if (ioctl(fd, LOOP_GET_STATUS, &a) || ioctl(fd, LOOP_GET_STATUS, &b) ||
		    ioctl(fd, LOOP_GET_STATUS64, &a64) || ioctl(fd, LOOP_GET_STATUS64, &b64)) {
			perror("GET_STATUS");
			return 1;
		}
		if (a.lo_offset != 4096 || strcmp(a.lo_name, "compat-name")) {
			fprintf(stderr, "compat GET_STATUS: offset %d name %s\n", a.lo_offset,
				a.lo_name);
			return 1;
		}
		if (memcmp(&a, &b, sizeof(a)) || memcmp(&a64, &b64, sizeof(a64))) {
			fprintf(stderr, "compat GET_STATUS(64) left bytes of the user buffer\n");
			return 1;
		}
	}
	/* Unknown commands: the driver says ENOIOCTLCMD, which the VFS turns into ENOTTY. */
	if (ioctl(fd, 0x4C99, 0) != -1 || errno != ENOTTY) {
		fprintf(stderr, "unknown compat ioctl: %s\n", strerror(errno));
		return 1;
	}
	printf("ok\n");
	close(fd);
	return 0;
}
