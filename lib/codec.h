/* SPDX-License-Identifier: Apache-2.0 */
/* codec.h: UTF-8 validation and base64, for carrying arbitrary bytes in JSON. */
#ifndef EV_CODEC_H
#define EV_CODEC_H

#include <stddef.h>

#include "buf.h"

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
int ev_utf8_valid(const char *s, size_t n);
/* The length of the longest prefix of s[0..n) that is well-formed UTF-8. */
size_t ev_utf8_valid_prefix(const char *s, size_t n);
/* Append the standard base64 (RFC 4648, padded) of data. */
int ev_base64_encode(ev_buf *out, const void *data, size_t n);
/* Append the bytes decoded from base64 text; returns 0, or -1 on malformed input. */
int ev_base64_decode(ev_buf *out, const char *s, size_t n);

#endif
