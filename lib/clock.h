/* SPDX-License-Identifier: Apache-2.0 */
/* clock.h: the clocks, and a sleep that a shutdown signal ends. */
#ifndef EV_CLOCK_H
#define EV_CLOCK_H

#include <stdint.h>

/* Monotonic clock in nanoseconds (intervals, timeouts). */
uint64_t ev_mono_ns(void);
/* Wall clock in milliseconds since the epoch (what records and checkpoints carry). */
int64_t ev_wall_ms(void);
/* The wall clock as of the kernel's last tick (a few ms behind at most), several times
 * cheaper to read: for a time taken per record, where ms do not matter (idleness). */
int64_t ev_wall_ms_coarse(void);
/* Sleep ms milliseconds (none when ms <= 0). A signal whose handler runs meanwhile (a tool's
 * SIGTERM or SIGINT: a shutdown request) ends the sleep early, so that the caller looks at
 * why and can stop gracefully; a signal without a handler does not wake it. Returns 0 after
 * the whole time, 1 when a signal ended it early. */
int ev_sleep_ms(int64_t ms);

#endif
