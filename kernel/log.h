/* log: the kernel's one logging function. Lines go to stderr (the kernel's log, which the
 * Jupyter server keeps), never to a cell. Level from SPARKERNEL_LOG_LEVEL. */
#ifndef SPARKERNEL_LOG_H
#define SPARKERNEL_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Reads SPARKERNEL_LOG_LEVEL (error|warn|info|debug); default info. */
void log_init(void);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
