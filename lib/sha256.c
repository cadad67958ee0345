/* SPDX-License-Identifier: Apache-2.0 */
/* sha256.c: SHA-256 digests as hex text, of bytes and of files. */
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

static void to_hex(const unsigned char *md, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
}

int ev_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	int rc = 0;
	if (!EVP_Digest(len ? data : "", len, md, &n, EVP_sha256(), NULL) || n != 32) {
		memset(md, 0, sizeof(md));
		rc = -1;
	}
	to_hex(md, hex);
	return rc;
}

int ev_sha256_file(const char *path, char hex[65], uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *buf = malloc(READ_CHUNK);
	int rc = ctx && buf && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -1;
	int e = rc < 0 ? ENOMEM : 0;
	uint64_t total = 0;
	while (rc == 0) {
		ssize_t r = read(fd, buf, READ_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			rc = -1;
		} else if (r == 0) {
			break;
		} else if (!EVP_DigestUpdate(ctx, buf, (size_t)r)) {
			e = EIO;
			rc = -1;
		}
		total += r > 0 ? (uint64_t)r : 0;
	}
	unsigned char md[32];
	unsigned int n = 0;
	if (rc == 0 && (!EVP_DigestFinal_ex(ctx, md, &n) || n != 32)) {
		e = EIO;
		rc = -1;
	}
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	if (rc < 0) {
		errno = e;
		return -1;
	}
	to_hex(md, hex);
	if (size)
		*size = total;
	return 0;
}
