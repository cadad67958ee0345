/* log.h: diagnostics on stderr as "prog: message", with levels. */
#ifndef EV_LOG_H
#define EV_LOG_H

enum ev_log_level { EV_LOG_ERROR, EV_LOG_WARN, EV_LOG_INFO, EV_LOG_DEBUG };

/* Set the program name printed before every message (not copied). */
void ev_log_set_prog(const char *prog);
const char *ev_log_prog(void);
void ev_log_set_level(enum ev_log_level level);
/* Parse "error", "warn", "info" or "debug"; returns -1 on an unknown name. */
int ev_log_parse_level(const char *name);
int ev_log_enabled(enum ev_log_level level);

void ev_log(enum ev_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ev_error(...) ev_log(EV_LOG_ERROR, __VA_ARGS__)
#define ev_warn(...) ev_log(EV_LOG_WARN, __VA_ARGS__)
#define ev_info(...) ev_log(EV_LOG_INFO, __VA_ARGS__)
#define ev_debug(...) ev_log(EV_LOG_DEBUG, __VA_ARGS__)

#endif
