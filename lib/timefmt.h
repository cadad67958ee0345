/* SPDX-License-Identifier: Apache-2.0 */
/* timefmt.h: event times: RFC 3339 text and epoch milliseconds. */
#ifndef EV_TIMEFMT_H
#define EV_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Parse an RFC 3339 date-time ("2024-11-24T10:00:00.123Z", "...+01:00"; 't', 'z' and a space
 * for 'T' accepted) into epoch milliseconds. Returns 0, or -1 when it is not one. */
int ev_time_parse_rfc3339(const char *s, size_t n, int64_t *ms);
/* Epoch milliseconds, or an RFC 3339 date-time. Returns 0 or -1. */
int ev_time_parse(const char *s, int64_t *ms);
/* "YYYY-MM-DD hh:mm:ss" in UTC (ClickHouse DateTime's text form) into out[20]. */
void ev_time_format_datetime(int64_t ms, char out[20]);
/* The milliseconds of ms past the second ev_time_format_datetime shows: 0-999 (the second is
 * rounded down, before 1970 too). */
int ev_time_msec(int64_t ms);

#endif
