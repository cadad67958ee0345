/* SPDX-License-Identifier: Apache-2.0 */
/* gzip.h: gzip compression (RFC 1952) of a buffer, for request bodies. */
#ifndef EV_GZIP_H
#define EV_GZIP_H

#include <stddef.h>

#include "buf.h"

/* Append data compressed as gzip (RFC 1952). Returns 0, or -1 when out of memory. */
int ev_gzip(ev_buf *out, const void *data, size_t n);

#endif
