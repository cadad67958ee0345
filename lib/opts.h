/* opts.h: parsing of option values shared by the tools (durations, sizes, counts, lists). */
#ifndef EV_OPTS_H
#define EV_OPTS_H

#include <stddef.h>
#include <stdint.h>

/* "250ms", "5s", "1m", "2h", "1d"; a bare number is in default_unit_ms units.
 * Returns 0 and sets *ms, or -1. */
int ev_opt_duration_ms(const char *s, int64_t default_unit_ms, int64_t *ms);
/* "4096", "64KiB", "1MiB", "2GiB", also "k", "M", "G" (powers of 1024). Returns 0 or -1. */
int ev_opt_size(const char *s, uint64_t *bytes);
/* A decimal integer within [min, max]. Returns 0 or -1. */
int ev_opt_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* Read a whole small file (secrets, configs) into a NUL-terminated malloc'd string with
 * trailing newlines removed. Returns NULL with a message in err. */
char *ev_opt_read_file(const char *path, size_t max, char *err, size_t errlen);

#endif
