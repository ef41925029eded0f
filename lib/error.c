/*
 * Error codes, their names and texts, and the library's version.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* One table for trail's own codes: name and text side by side. */
#define TRAIL__ERRORS(X)                                                       \
  X(TRAIL_EINVAL_LEVEL, "not a level name (trace, debug, info, warn, error, "  \
                        "fatal, off)")                                         \
  X(TRAIL_EINVAL_NAME, "not a valid logger or service name")                   \
  X(TRAIL_EINVAL_SPEC, "malformed configuration value")                        \
  X(TRAIL_EINVAL_ID, "malformed request, trace or span id")                    \
  X(TRAIL_EINVAL_TRACEPARENT, "traceparent value not valid per W3C")           \
  X(TRAIL_ETOOLONG, "value longer than its fixed storage")                     \
  X(TRAIL_ENOSPACE, "fixed field storage is full")                             \
  X(TRAIL_ENOSINK, "no sink with that id")                                     \
  X(TRAIL_ERANGE, "number outside the accepted range")                         \
  X(TRAIL_EINVAL_TRACESTATE, "tracestate value not valid per W3C")

/*
 * A static description of code. trail's codes come from the table above;
 * -errno values from the C library's own static table (strerrordesc_np, which
 * unlike strerror() never writes a shared buffer).
 */
TRAIL_API const char *trail_strerror(int code) {
  switch (code) {
#define X(name, text)                                                          \
  case name:                                                                   \
    return text;
    TRAIL__ERRORS(X)
#undef X
  case 0:
    return "success";
  default:
    break;
  }
  if (code < 0 && code > -4096) {
    const char *s = strerrordesc_np(-code);
    if (s != NULL)
      return s;
  }
  return "unknown error";
}

/* The symbolic name of code: "TRAIL_EINVAL_LEVEL", "ENOENT", ... */
TRAIL_API const char *trail_err_name(int code) {
  switch (code) {
#define X(name, text)                                                          \
  case name:                                                                   \
    return #name;
    TRAIL__ERRORS(X)
#undef X
  case 0:
    return "OK";
  default:
    break;
  }
  if (code < 0 && code > -4096) {
    const char *s = strerrorname_np(-code);
    if (s != NULL)
      return s;
  }
  return "UNKNOWN";
}

TRAIL_API const char *trail_version(void) { return TRAIL_VERSION_STRING; }

TRAIL_API unsigned int trail_version_hex(void) { return TRAIL_VERSION_HEX; }

/* Fills a caller's trail_config_error, when there is one. */
void trail__config_error(trail_config_error *err, int code, const char *source,
                         const char *fmt, ...) {
  if (err == NULL)
    return;
  err->code = code;
  snprintf(err->source, sizeof err->source, "%s", source ? source : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->text, sizeof err->text, fmt, ap);
  va_end(ap);
}
