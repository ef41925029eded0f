/*
 * trail: structured JSON logs for C services, one line per event, every line
 * carrying the request it belongs to.
 *
 * This header is the whole public core API. The reference, with ownership,
 * thread-safety and async-signal-safety notes for every name, is docs/api.md;
 * the line it writes is specified in docs/log-format.md.
 *
 * Copyright (c) 2026 the trail developers. MIT licence, see LICENSE.
 */
#ifndef TRAIL_H
#define TRAIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version and export                                                       */
/* ------------------------------------------------------------------------ */

#define TRAIL_VERSION_MAJOR 0
#define TRAIL_VERSION_MINOR 1
#define TRAIL_VERSION_PATCH 0
#define TRAIL_VERSION_STRING "0.1.0"
#define TRAIL_VERSION_HEX                                                      \
  ((TRAIL_VERSION_MAJOR << 16) | (TRAIL_VERSION_MINOR << 8) |                  \
   TRAIL_VERSION_PATCH)

#if defined(__GNUC__) || defined(__clang__)
#define TRAIL_API __attribute__((visibility("default")))
#define TRAIL__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TRAIL_API
#define TRAIL__PRINTF(fmt, args)
#endif

/* The version of the library linked at run time, e.g. "0.1.0". */
TRAIL_API const char *trail_version(void);
/* TRAIL_VERSION_HEX of the library linked at run time. */
TRAIL_API unsigned int trail_version_hex(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Fallible calls return 0 (or a non-negative value) on success and a negative
 * code on failure. System errors pass through as -errno (-ENOENT, -EACCES,
 * ...); trail's own codes sit far below any errno value.
 */
enum trail_error {
  TRAIL_EINVAL_LEVEL = -30001,       /* not a level name */
  TRAIL_EINVAL_NAME = -30002,        /* not a valid logger or service name */
  TRAIL_EINVAL_SPEC = -30003,        /* malformed configuration value */
  TRAIL_EINVAL_ID = -30004,          /* malformed request, trace or span id */
  TRAIL_EINVAL_TRACEPARENT = -30005, /* traceparent not valid per W3C */
  TRAIL_ETOOLONG = -30006,           /* value longer than its fixed storage */
  TRAIL_ENOSPACE = -30007,           /* fixed field storage is full */
  TRAIL_ENOSINK = -30008,            /* no sink with that id */
  TRAIL_ERANGE = -30009,             /* number outside the accepted range */
  TRAIL_EINVAL_TRACESTATE = -30010   /* tracestate not valid per W3C */
};

/* A static, never-NULL English description of any code, trail's or -errno. */
TRAIL_API const char *trail_strerror(int code);
/* A static, never-NULL name of the code ("TRAIL_EINVAL_LEVEL", "ENOENT"). */
TRAIL_API const char *trail_err_name(int code);

/*
 * Detail for a failed configuration call, filled by the callee when the
 * caller passes a non-NULL pointer (like jansson's json_error_t).
 */
typedef struct trail_config_error {
  int code;        /* the value the call returned */
  char source[32]; /* "TRAIL_LEVEL", "trail_levels_set", ... */
  char text[224];  /* what was wrong and what is accepted, one line */
} trail_config_error;

/* ------------------------------------------------------------------------ */
/* Levels                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum trail_level {
  TRAIL_LEVEL_TRACE = 0,
  TRAIL_LEVEL_DEBUG = 1,
  TRAIL_LEVEL_INFO = 2,
  TRAIL_LEVEL_WARN = 3,
  TRAIL_LEVEL_ERROR = 4,
  TRAIL_LEVEL_FATAL = 5,
  TRAIL_LEVEL_OFF = 6 /* as a threshold only: nothing passes */
} trail_level;

#define TRAIL_LEVEL_COUNT 6 /* trace .. fatal */

/* "trace" .. "fatal", "off"; "?" for a value outside the enum. */
TRAIL_API const char *trail_level_name(trail_level level);
/*
 * Parses a level name (case-insensitive; "warning" is accepted for warn).
 * Returns 0, or TRAIL_EINVAL_LEVEL and leaves *out alone.
 */
TRAIL_API int trail_level_parse(const char *name, trail_level *out);

/* ------------------------------------------------------------------------ */
/* Fields                                                                   */
/* ------------------------------------------------------------------------ */

struct json_t; /* jansson's value type; include <jansson.h> to build one */

typedef enum trail_field_kind {
  TRAIL_FIELD_STR = 1,
  TRAIL_FIELD_INT,
  TRAIL_FIELD_UINT,
  TRAIL_FIELD_DOUBLE,
  TRAIL_FIELD_BOOL,
  TRAIL_FIELD_JSON
} trail_field_kind;

/* (size_t)-1 as a string length: the string is NUL-terminated. */
#define TRAIL_NTS ((size_t)-1)

/*
 * One key and its typed value. Built with the TRAIL_STR .. TRAIL_JSON macros;
 * everything it points to is borrowed for the duration of the call.
 */
typedef struct trail_field {
  const char *key;
  trail_field_kind kind;
  uint32_t klen; /* strlen(key) when known at compile time, else 0 */
  size_t len;    /* TRAIL_FIELD_STR only: byte length, or TRAIL_NTS */
  union {
    const char *s;
    int64_t i;
    uint64_t u;
    double d;
    int b;
    const struct json_t *j;
  } v;
} trail_field;

/*
 * Private: the length of a literal key, folded by the compiler, so that a
 * field's key costs no strlen() per event (a runtime key, or NULL, gives
 * the "unknown" value and is measured as before). Values are not folded:
 * a value is often an expression that may be NULL, which the folding
 * would have the compiler warn about.
 */
#if defined(__GNUC__) || defined(__clang__)
#define TRAIL__CLEN(s_, unknown_)                                              \
  (__builtin_constant_p(__builtin_strlen((uintptr_t)(s_) ? (s_) : ""))         \
       ? __builtin_strlen((uintptr_t)(s_) ? (s_) : "")                         \
       : (unknown_))
#else
#define TRAIL__CLEN(s_, unknown_) (unknown_)
#endif
#define TRAIL__KLEN(key_) ((uint32_t)TRAIL__CLEN(key_, 0))

#ifndef __cplusplus
#define TRAIL_STR(key_, str_)                                                  \
  ((trail_field){.key = (key_),                                                \
                 .kind = TRAIL_FIELD_STR,                                      \
                 .klen = TRAIL__KLEN(key_),                                    \
                 .len = TRAIL_NTS,                                             \
                 .v.s = (str_)})
#define TRAIL_STRN(key_, str_, len_)                                           \
  ((trail_field){.key = (key_),                                                \
                 .kind = TRAIL_FIELD_STR,                                      \
                 .klen = TRAIL__KLEN(key_),                                    \
                 .len = (size_t)(len_),                                        \
                 .v.s = (str_)})
#define TRAIL_INT(key_, val_)                                                  \
  ((trail_field){.key = (key_),                                                \
                 .kind = TRAIL_FIELD_INT,                                      \
                 .klen = TRAIL__KLEN(key_),                                    \
                 .v.i = (int64_t)(val_)})
#define TRAIL_UINT(key_, val_)                                                 \
  ((trail_field){.key = (key_),                                                \
                 .kind = TRAIL_FIELD_UINT,                                     \
                 .klen = TRAIL__KLEN(key_),                                    \
                 .v.u = (uint64_t)(val_)})
#define TRAIL_DOUBLE(key_, val_)                                               \
  ((trail_field){.key = (key_),                                                \
                 .kind = TRAIL_FIELD_DOUBLE,                                   \
                 .klen = TRAIL__KLEN(key_),                                    \
                 .v.d = (double)(val_)})
#define TRAIL_BOOL(key_, val_)                                                 \
  ((trail_field){.key = (key_),                                                \
                 .kind = TRAIL_FIELD_BOOL,                                     \
                 .klen = TRAIL__KLEN(key_),                                    \
                 .v.b = (val_) ? 1 : 0})
#define TRAIL_JSON(key_, val_)                                                 \
  ((trail_field){.key = (key_),                                                \
                 .kind = TRAIL_FIELD_JSON,                                     \
                 .klen = TRAIL__KLEN(key_),                                    \
                 .v.j = (val_)})
#else
/*
 * C++ has no compound literal and, before C++20, no designated initializer:
 * there the same macros call these inline helpers, which fill the same
 * members (the others zero, as in C).
 */
extern "C++" {
inline trail_field trail__field(const char *key, trail_field_kind kind,
                                uint32_t klen, size_t len) {
  trail_field f = trail_field();
  f.key = key;
  f.kind = kind;
  f.klen = klen;
  f.len = len;
  return f;
}
inline trail_field trail__field_s(const char *key, uint32_t klen, size_t len,
                                  const char *s) {
  trail_field f = trail__field(key, TRAIL_FIELD_STR, klen, len);
  f.v.s = s;
  return f;
}
inline trail_field trail__field_i(const char *key, uint32_t klen, int64_t i) {
  trail_field f = trail__field(key, TRAIL_FIELD_INT, klen, 0);
  f.v.i = i;
  return f;
}
inline trail_field trail__field_u(const char *key, uint32_t klen, uint64_t u) {
  trail_field f = trail__field(key, TRAIL_FIELD_UINT, klen, 0);
  f.v.u = u;
  return f;
}
inline trail_field trail__field_d(const char *key, uint32_t klen, double d) {
  trail_field f = trail__field(key, TRAIL_FIELD_DOUBLE, klen, 0);
  f.v.d = d;
  return f;
}
inline trail_field trail__field_b(const char *key, uint32_t klen, int b) {
  trail_field f = trail__field(key, TRAIL_FIELD_BOOL, klen, 0);
  f.v.b = b;
  return f;
}
inline trail_field trail__field_j(const char *key, uint32_t klen,
                                  const struct json_t *j) {
  trail_field f = trail__field(key, TRAIL_FIELD_JSON, klen, 0);
  f.v.j = j;
  return f;
}
}
#define TRAIL_STR(key_, str_)                                                  \
  trail__field_s((key_), TRAIL__KLEN(key_), TRAIL_NTS, (str_))
#define TRAIL_STRN(key_, str_, len_)                                           \
  trail__field_s((key_), TRAIL__KLEN(key_), (size_t)(len_), (str_))
#define TRAIL_INT(key_, val_)                                                  \
  trail__field_i((key_), TRAIL__KLEN(key_), (int64_t)(val_))
#define TRAIL_UINT(key_, val_)                                                 \
  trail__field_u((key_), TRAIL__KLEN(key_), (uint64_t)(val_))
#define TRAIL_DOUBLE(key_, val_)                                               \
  trail__field_d((key_), TRAIL__KLEN(key_), (double)(val_))
#define TRAIL_BOOL(key_, val_)                                                 \
  trail__field_b((key_), TRAIL__KLEN(key_), (val_) ? 1 : 0)
#define TRAIL_JSON(key_, val_) trail__field_j((key_), TRAIL__KLEN(key_), (val_))
#endif

/* Nanoseconds of the monotonic clock (CLOCK_MONOTONIC): for durations. */
TRAIL_API int64_t trail_now_ns(void);

/*
 * Two fields for an error number err (errno, or a positive code of the same
 * kind): "error", the system's message for it (static, thread-safe), and
 * "errno", the number. err is evaluated twice: pass a variable or errno
 * itself (reading the message does not change errno).
 *   trail_warn(lg, "open failed", TRAIL_STR("path", p), TRAIL_ERRNO(errno));
 */
#define TRAIL_ERRNO(err_)                                                      \
  TRAIL_STR("error", trail_strerror(-(err_))), TRAIL_INT("errno", (err_))

/* The milliseconds since start_ns (from trail_now_ns()), as a double field. */
#define TRAIL_DURATION_MS(key_, start_ns_)                                     \
  TRAIL_DOUBLE((key_), (double)(trail_now_ns() - (int64_t)(start_ns_)) / 1e6)

/*
 * Private: the compile-time check that every field argument of the logging
 * macros is a trail_field (printf arguments given to trail_info() instead of
 * trail_infof() are the usual mistake). TRAIL__FIELDS_CHECK(message, fields)
 * is a static assertion: it costs nothing at run time and evaluates nothing.
 */
#ifdef __cplusplus
extern "C++" {
template <class T> struct trail__is_field { static const bool value = false; };
template <> struct trail__is_field<trail_field> {
  static const bool value = true;
};
template <class... T> struct trail__all_fields {
  static const bool value = true;
};
template <class T, class... R> struct trail__all_fields<T, R...> {
  static const bool value =
      trail__is_field<T>::value && trail__all_fields<R...>::value;
};
template <bool B> struct trail__bool { static const bool value = B; };
/* Only named in decltype: never defined, never called. */
template <class... T>
trail__bool<trail__all_fields<T...>::value> trail__fields_ok(const T &...);
}
#define TRAIL__FIELDS_CHECK(what_, ...)                                        \
  static_assert(decltype(trail__fields_ok(__VA_ARGS__))::value, what_);
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
/*
 * C: a _Generic test of each of the first 32 field arguments (those after
 * are left to the compiler's own type errors), padded with values of type
 * trail_field that are never evaluated. The tests nest, each selecting the
 * next one or 0, so that a failure is the plain literal 0 and the compiler
 * shows the message alone. One flat macro: the preprocessor scans the
 * arguments only a few times.
 */
/* clang-format off */
#define TRAIL__ISF32(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12,   \
                     a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,   \
                     a24, a25, a26, a27, a28, a29, a30, a31, ...)             \
  _Generic((a0), trail_field:                                                \
  _Generic((a1), trail_field:                                                \
  _Generic((a2), trail_field:                                                \
  _Generic((a3), trail_field:                                                \
  _Generic((a4), trail_field:                                                \
  _Generic((a5), trail_field:                                                \
  _Generic((a6), trail_field:                                                \
  _Generic((a7), trail_field:                                                \
  _Generic((a8), trail_field:                                                \
  _Generic((a9), trail_field:                                                \
  _Generic((a10), trail_field:                                               \
  _Generic((a11), trail_field:                                               \
  _Generic((a12), trail_field:                                               \
  _Generic((a13), trail_field:                                               \
  _Generic((a14), trail_field:                                               \
  _Generic((a15), trail_field:                                               \
  _Generic((a16), trail_field:                                               \
  _Generic((a17), trail_field:                                               \
  _Generic((a18), trail_field:                                               \
  _Generic((a19), trail_field:                                               \
  _Generic((a20), trail_field:                                               \
  _Generic((a21), trail_field:                                               \
  _Generic((a22), trail_field:                                               \
  _Generic((a23), trail_field:                                               \
  _Generic((a24), trail_field:                                               \
  _Generic((a25), trail_field:                                               \
  _Generic((a26), trail_field:                                               \
  _Generic((a27), trail_field:                                               \
  _Generic((a28), trail_field:                                               \
  _Generic((a29), trail_field:                                               \
  _Generic((a30), trail_field:                                               \
  _Generic((a31), trail_field:                                               \
  1, default: 0), default: 0), default: 0), default: 0)                      \
   , default: 0), default: 0), default: 0), default: 0)                      \
   , default: 0), default: 0), default: 0), default: 0)                      \
   , default: 0), default: 0), default: 0), default: 0)                      \
   , default: 0), default: 0), default: 0), default: 0)                      \
   , default: 0), default: 0), default: 0), default: 0)                      \
   , default: 0), default: 0), default: 0), default: 0)                      \
   , default: 0), default: 0), default: 0), default: 0)                      
#define TRAIL__PAD8                                                            \
  *(trail_field *)0, *(trail_field *)0, *(trail_field *)0, *(trail_field *)0, \
  *(trail_field *)0, *(trail_field *)0, *(trail_field *)0, *(trail_field *)0
/* clang-format on */
/* The padding must be expanded before TRAIL__ISF32 counts its arguments. */
#define TRAIL__APPLY(m_, ...) m_(__VA_ARGS__)
#define TRAIL__FIELDS_CHECK(what_, ...)                                        \
  _Static_assert(TRAIL__APPLY(TRAIL__ISF32, __VA_ARGS__, TRAIL__PAD8,          \
                              TRAIL__PAD8, TRAIL__PAD8, TRAIL__PAD8),          \
                 what_);
#else
#define TRAIL__FIELDS_CHECK(what_, ...)
#endif
/* The message of a failed check, naming the printf-style variant. */
#define TRAIL__NOT_FIELD(f_)                                                   \
  "trail: a field argument is not a trail_field; for printf-style arguments "  \
  "use " #f_ "()"

/* ------------------------------------------------------------------------ */
/* Loggers                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct trail_logger trail_logger;

/*
 * Private: the first member of every trail_logger, read by the inline level
 * check so that a disabled level costs one load and one comparison.
 */
struct trail__logger_head {
  int threshold; /* lowest level that any sink of this logger would take */
};
TRAIL_API extern struct trail__logger_head *const trail__root_head;

/*
 * The registry's logger of that name, made on first use and kept until the
 * process exits (the same pointer for the same name). A name is 1 to 128
 * ASCII letters, digits, '.', '_' or '-'. NULL gives the root logger; an
 * invalid name gives NULL (and a NULL logger logs as root).
 */
TRAIL_API trail_logger *trail_logger_get(const char *name);
/* The root logger, named "root". */
TRAIL_API trail_logger *trail_logger_root(void);
/*
 * A child of parent (NULL: root) with the same name and level, whose lines
 * also carry the given fields, encoded once here. The caller owns the child
 * and frees it with trail_logger_free() after its last use. NULL on ENOMEM.
 */
TRAIL_API trail_logger *trail_logger_with(trail_logger *parent,
                                          const trail_field *fields,
                                          size_t nfields);
#ifndef __cplusplus
#define trail_logger_child(parent, ...)                                        \
  trail_logger_with((parent), (const trail_field[]){__VA_ARGS__},              \
                    sizeof((const trail_field[]){__VA_ARGS__}) /               \
                        sizeof(trail_field))
#else
extern "C++" {
template <class... F>
inline trail_logger *trail__logger_child(trail_logger *parent, const F &...f) {
  const trail_field fields[] = {f...};
  return trail_logger_with(parent, fields, sizeof...(F));
}
}
#define trail_logger_child(parent, ...)                                        \
  trail__logger_child((parent), __VA_ARGS__)
#endif
/* Frees a child logger; NULL and registry loggers are ignored. */
TRAIL_API void trail_logger_free(trail_logger *logger);
TRAIL_API const char *trail_logger_name(const trail_logger *logger);
/* Sets the logger's own minimum level (NULL: root). Takes effect at once. */
TRAIL_API int trail_logger_set_level(trail_logger *logger, trail_level level);
TRAIL_API trail_level trail_logger_level(const trail_logger *logger);
/*
 * Flood control for one logger (NULL: root): of the events with one message
 * (the format, for the f variants) in one second, the first `first` are
 * written, then every `thereafter`-th (0: none more); the others are
 * counted in `suppressed` and reported by a warn line "log events
 * suppressed by sampling" with field "suppressed" before the logger's next
 * written event (and at trail_flush()). fatal is never sampled. first 0
 * turns sampling off. Children get their parent's setting.
 */
TRAIL_API int trail_logger_set_sampling(trail_logger *logger, uint32_t first,
                                        uint32_t thereafter);
/* The same for every logger, now and made later (TRAIL_SAMPLING=N,M). */
TRAIL_API int trail_sampling_set(uint32_t first, uint32_t thereafter);
/*
 * Process fields: replaces the fields every line of the process carries,
 * right after the reserved keys and before the logger's (TRAIL_FIELDS sets
 * them at trail_init()). Copied and encoded here; NULL, 0 clears them. At
 * most 32 fields, 1024 bytes as JSON (-ENOSPC); a key NULL, empty or given
 * twice is -EINVAL. Safe while other threads log.
 */
TRAIL_API int trail_fields_set(const trail_field *fields, size_t n);

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

#ifndef TRAIL_MIN_LEVEL
/* Lower levels compile to nothing. */
#define TRAIL_MIN_LEVEL TRAIL_LEVEL_TRACE
#endif

/* True when an event at this level on this logger would reach some sink. */
static inline bool trail_enabled(const trail_logger *logger,
                                 trail_level level) {
  const struct trail__logger_head *h =
      logger ? (const struct trail__logger_head *)(const void *)logger
             : trail__root_head;
  return (int)level >= __atomic_load_n(&h->threshold, __ATOMIC_RELAXED);
}

/*
 * The functions behind the macros. Prefer the macros: they check the level
 * before evaluating any argument and pass the call site for "caller".
 * msg is data, never a format. A NULL logger is the root logger.
 */
TRAIL_API void trail_log(trail_logger *logger, trail_level level,
                         const char *msg, const trail_field *fields,
                         size_t nfields);
TRAIL_API void trail_logf(trail_logger *logger, trail_level level,
                          const char *fmt, ...) TRAIL__PRINTF(3, 4);
TRAIL_API void trail_logv(trail_logger *logger, trail_level level,
                          const char *fmt, va_list ap) TRAIL__PRINTF(3, 0);
TRAIL_API void trail__log(trail_logger *logger, trail_level level,
                          const char *file, int line, const char *msg,
                          const trail_field *fields, size_t nfields);
TRAIL_API void trail__logf(trail_logger *logger, trail_level level,
                           const char *file, int line, const char *fmt, ...)
    TRAIL__PRINTF(5, 6);

/*
 * A formatted message, or string field, with fields in the same call:
 *   trail_warn(lg, TRAIL_MSGF("order %d failed", id), TRAIL_STR("why", why));
 *   trail_info(lg, "saved", TRAIL_STRF("order", "%s-%04d", region, id));
 * The format is checked by the compiler, and evaluated only when the level
 * is enabled. The text goes into storage of TRAIL_MSGF_MAX bytes made in the
 * calling statement (no heap): at most TRAIL_MSGF_MAX - 1 bytes, a longer
 * text cut at a UTF-8 character boundary.
 */
#define TRAIL_MSGF_MAX 1024
TRAIL_API const char *trail__msgf(char *buf, size_t size, const char *fmt, ...)
    TRAIL__PRINTF(3, 4);
#ifndef __cplusplus
#define TRAIL__FMTBUF ((char[TRAIL_MSGF_MAX]){0})
#else
extern "C++" {
struct trail__fmtbuf {
  char data[TRAIL_MSGF_MAX];
};
}
#define TRAIL__FMTBUF (trail__fmtbuf().data)
#endif
#define TRAIL_MSGF(...) trail__msgf(TRAIL__FMTBUF, TRAIL_MSGF_MAX, __VA_ARGS__)
#define TRAIL_STRF(key_, ...) TRAIL_STR((key_), TRAIL_MSGF(__VA_ARGS__))

/* Private: an empty trailing element keeps __VA_ARGS__ non-empty. */
#ifndef __cplusplus
#define TRAIL__END ((trail_field){.key = 0})
#define TRAIL__EMIT(lvl, lg, msg, ...)                                         \
  trail__log(                                                                  \
      (lg), (lvl), __FILE__, __LINE__, (msg),                                  \
      (const trail_field[]){__VA_ARGS__},                                      \
      sizeof((const trail_field[]){__VA_ARGS__}) / sizeof(trail_field) - 1)
#else
/* C++: the fields (TRAIL__END last) become an array in this helper. */
extern "C++" {
template <class... F>
inline void trail__log_cxx(trail_logger *lg, trail_level lvl, const char *file,
                           int line, const char *msg, const F &...f) {
  const trail_field fields[] = {f...};
  trail__log(lg, lvl, file, line, msg, fields, sizeof...(F) - 1);
}
}
#define TRAIL__END trail_field()
#define TRAIL__EMIT(lvl, lg, msg, ...)                                         \
  trail__log_cxx((lg), (lvl), __FILE__, __LINE__, (msg), __VA_ARGS__)
#endif
/* Private: the fields check of a logging call, its message skipped. */
#define TRAIL__CHECK_CALL(what_, msg_, ...)                                    \
  TRAIL__FIELDS_CHECK(what_, __VA_ARGS__)
#define TRAIL__LOG(lvl, what_, lg, ...)                                        \
  do {                                                                         \
    TRAIL__CHECK_CALL(what_, __VA_ARGS__, TRAIL__END)                          \
    trail_logger *trail__lg = (lg);                                            \
    if ((lvl) >= TRAIL_MIN_LEVEL && trail_enabled(trail__lg, (lvl)))           \
      TRAIL__EMIT((lvl), trail__lg, __VA_ARGS__, TRAIL__END);                  \
  } while (0)
#define TRAIL__LOGF(lvl, lg, ...)                                              \
  do {                                                                         \
    trail_logger *trail__lg = (lg);                                            \
    if ((lvl) >= TRAIL_MIN_LEVEL && trail_enabled(trail__lg, (lvl)))           \
      trail__logf(trail__lg, (lvl), __FILE__, __LINE__, __VA_ARGS__);          \
  } while (0)

/*
 * trail_info(logger, "message", TRAIL_STR("k", v), ...): fields optional.
 * An argument after the message that is not a trail_field fails to compile
 * with "trail: a field argument is not a trail_field; ...".
 */
#define trail_trace(lg, ...)                                                   \
  TRAIL__LOG(TRAIL_LEVEL_TRACE, TRAIL__NOT_FIELD(trail_tracef), lg, __VA_ARGS__)
#define trail_debug(lg, ...)                                                   \
  TRAIL__LOG(TRAIL_LEVEL_DEBUG, TRAIL__NOT_FIELD(trail_debugf), lg, __VA_ARGS__)
#define trail_info(lg, ...)                                                    \
  TRAIL__LOG(TRAIL_LEVEL_INFO, TRAIL__NOT_FIELD(trail_infof), lg, __VA_ARGS__)
#define trail_warn(lg, ...)                                                    \
  TRAIL__LOG(TRAIL_LEVEL_WARN, TRAIL__NOT_FIELD(trail_warnf), lg, __VA_ARGS__)
#define trail_error(lg, ...)                                                   \
  TRAIL__LOG(TRAIL_LEVEL_ERROR, TRAIL__NOT_FIELD(trail_errorf), lg, __VA_ARGS__)
#define trail_fatal(lg, ...)                                                   \
  TRAIL__LOG(TRAIL_LEVEL_FATAL, TRAIL__NOT_FIELD(trail_fatalf), lg, __VA_ARGS__)

/* trail_infof(logger, "cannot open %s", path): printf-checked message. */
#define trail_tracef(lg, ...) TRAIL__LOGF(TRAIL_LEVEL_TRACE, lg, __VA_ARGS__)
#define trail_debugf(lg, ...) TRAIL__LOGF(TRAIL_LEVEL_DEBUG, lg, __VA_ARGS__)
#define trail_infof(lg, ...) TRAIL__LOGF(TRAIL_LEVEL_INFO, lg, __VA_ARGS__)
#define trail_warnf(lg, ...) TRAIL__LOGF(TRAIL_LEVEL_WARN, lg, __VA_ARGS__)
#define trail_errorf(lg, ...) TRAIL__LOGF(TRAIL_LEVEL_ERROR, lg, __VA_ARGS__)
#define trail_fatalf(lg, ...) TRAIL__LOGF(TRAIL_LEVEL_FATAL, lg, __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Request context                                                          */
/* ------------------------------------------------------------------------ */

#define TRAIL_REQUEST_ID_MAX 128 /* bytes, without the NUL */
#define TRAIL_USER_ID_MAX 128
#define TRAIL_TRACE_ID_LEN 32 /* lowercase hex digits */
#define TRAIL_SPAN_ID_LEN 16
#define TRAIL_TRACEPARENT_LEN 55 /* "00-" trace "-" span "-" flags */
#define TRAIL_TRACESTATE_MAX 512
#define TRAIL_UUID_LEN 36
#define TRAIL_CTX_FIELDS_SIZE 1024 /* encoded bytes of bound fields */
#define TRAIL_CTX_FIELDS_MAX 32    /* number of bound fields */

/*
 * A request's identity: a plain value the caller allocates (on the stack, or
 * inside its own request struct), no malloc. All members are private; use
 * the functions below. Safe to copy with memcpy or assignment.
 */
typedef struct trail_ctx {
  char request_id_[TRAIL_REQUEST_ID_MAX + 1];
  char user_id_[TRAIL_USER_ID_MAX + 1];
  char trace_id_[TRAIL_TRACE_ID_LEN + 1];
  char span_id_[TRAIL_SPAN_ID_LEN + 1];
  char parent_span_id_[TRAIL_SPAN_ID_LEN + 1];
  char tracestate_[TRAIL_TRACESTATE_MAX + 1];
  uint8_t trace_flags_;
  uint8_t has_parent_;
  uint16_t ids_len_;    /* bytes used in ids_ */
  uint16_t fields_len_; /* bytes used in fields_ */
  uint16_t nfields_;
  /* the context keys, pre-encoded: ,"request_id":"..","user_id":".." ... */
  char ids_[TRAIL_REQUEST_ID_MAX + 6 * TRAIL_USER_ID_MAX + 128];
  /* bound fields, pre-encoded as ,"key":value ... */
  char fields_[TRAIL_CTX_FIELDS_SIZE];
  uint16_t field_key_[TRAIL_CTX_FIELDS_MAX][2]; /* key offset, key length */
  uint32_t redact_gen_; /* the redaction list fields_ was encoded under */
  /* trail_ctx_buffer(): the ring (made on its first line), its size, the
   * lowest level it keeps and its state (0 off, 1 buffering, 2 failed) */
  void *buffer_;
  size_t buffer_bytes_;
  uint8_t buffer_level_;
  uint8_t buffer_state_;
} trail_ctx;

/* A new request: fresh request_id (UUID v4), trace_id and span_id. */
TRAIL_API void trail_ctx_init(trail_ctx *ctx);
/* An empty context: no ids, no fields. */
TRAIL_API void trail_ctx_clear(trail_ctx *ctx);
/*
 * Setters validate and copy; on error the context is unchanged.
 * request_id: 1..128 bytes of [A-Za-z0-9._:-]      (TRAIL_EINVAL_ID)
 * user_id:    1..128 bytes, any UTF-8 (escaped)     (TRAIL_ETOOLONG)
 * trace_id:   32 lowercase hex, not all zero        (TRAIL_EINVAL_ID)
 * span_id:    16 lowercase hex, not all zero        (TRAIL_EINVAL_ID)
 * NULL clears the id.
 */
TRAIL_API int trail_ctx_set_request_id(trail_ctx *ctx, const char *id);
TRAIL_API int trail_ctx_set_user_id(trail_ctx *ctx, const char *id);
TRAIL_API int trail_ctx_set_trace_id(trail_ctx *ctx, const char *id);
TRAIL_API int trail_ctx_set_span_id(trail_ctx *ctx, const char *id);
/*
 * Continues the trace of a W3C traceparent header value: its trace_id and
 * the flags W3C defines (sampled, random; reserved bits are dropped) are
 * taken, its parent id becomes the parent span, and the context
 * gets a new span_id. TRAIL_EINVAL_TRACEPARENT (context unchanged) when the
 * value is not valid, as the W3C Trace Context spec defines it.
 */
TRAIL_API int trail_ctx_set_traceparent(trail_ctx *ctx, const char *value,
                                        size_t len);
/*
 * Writes "00-<trace_id>-<span_id>-<flags>" and a NUL into buf (size >= 56).
 * Returns 55, or -ENOSPC, or TRAIL_EINVAL_ID when the context has no trace.
 */
TRAIL_API int trail_ctx_traceparent(const trail_ctx *ctx, char *buf,
                                    size_t size);
/* The ids as NUL-terminated strings; "" when unset. */
TRAIL_API const char *trail_ctx_request_id(const trail_ctx *ctx);
TRAIL_API const char *trail_ctx_user_id(const trail_ctx *ctx);
TRAIL_API const char *trail_ctx_trace_id(const trail_ctx *ctx);
TRAIL_API const char *trail_ctx_span_id(const trail_ctx *ctx);
TRAIL_API const char *trail_ctx_parent_span_id(const trail_ctx *ctx);
TRAIL_API uint8_t trail_ctx_trace_flags(const trail_ctx *ctx);
/*
 * Keeps a W3C tracestate value for propagation (len may be TRAIL_NTS):
 * list members "key=value" separated by commas and optional white space,
 * keys and values as W3C Trace Context Level 2 defines them, at most 32
 * members (a key twice is kept as it came); TRAIL_EINVAL_TRACESTATE
 * (context unchanged) otherwise. Empty members and white space are removed; a
 * list longer than TRAIL_TRACESTATE_MAX is shortened the spec's way (members
 * over 128 bytes first, then from the end). NULL or "" clears it.
 */
TRAIL_API int trail_ctx_set_tracestate(trail_ctx *ctx, const char *value,
                                       size_t len);
/* The kept tracestate, normalised ("" when none). */
TRAIL_API const char *trail_ctx_tracestate(const trail_ctx *ctx);

/*
 * Binds fields to the context: every line logged while it is current
 * carries them. TRAIL_ENOSPACE (context unchanged) when they do not fit.
 */
TRAIL_API int trail_ctx_add_fields(trail_ctx *ctx, const trail_field *fields,
                                   size_t nfields);
#ifndef __cplusplus
#define trail_ctx_bind(ctx, ...)                                               \
  trail_ctx_add_fields((ctx), (const trail_field[]){__VA_ARGS__},              \
                       sizeof((const trail_field[]){__VA_ARGS__}) /            \
                           sizeof(trail_field))
#else
extern "C++" {
template <class... F>
inline int trail__ctx_bind(trail_ctx *ctx, const F &...f) {
  const trail_field fields[] = {f...};
  return trail_ctx_add_fields(ctx, fields, sizeof...(F));
}
}
#define trail_ctx_bind(ctx, ...) trail__ctx_bind((ctx), __VA_ARGS__)
#endif

/*
 * Request-scoped buffering. From trail_ctx_buffer() on, the lines logged
 * under ctx below their logger's level but at or above min_level are kept
 * in a ring of at most bytes instead of being dropped (the oldest go when
 * it is full). trail_ctx_buffer_flush() writes them, in order, with their
 * own timestamps and "buffered":true, and from then on such lines are
 * written at once; a line at error or above under ctx flushes first by
 * itself. trail_ctx_buffer_end() drops what is left and frees the ring;
 * call it before ctx is reused or goes away, when no other thread logs
 * under it. The rings come from a pool of TRAIL_BUFFER_POOL_DEFAULT bytes
 * (TRAIL_BUFFER sets another); a line that finds no room is discarded.
 * trail_ctx_buffer() returns 0, -EINVAL (bad level or size) or -EBUSY
 * (ctx buffers already). See docs/api.md, "Request-scoped buffering".
 */
#define TRAIL_BUFFER_BYTES_MIN 1024
#define TRAIL_BUFFER_BYTES_MAX ((size_t)64 * 1024 * 1024)
#define TRAIL_BUFFER_POOL_DEFAULT ((size_t)16 * 1024 * 1024)
TRAIL_API int trail_ctx_buffer(trail_ctx *ctx, trail_level min_level,
                               size_t bytes);
TRAIL_API void trail_ctx_buffer_flush(trail_ctx *ctx);
TRAIL_API void trail_ctx_buffer_end(trail_ctx *ctx);

/*
 * Makes ctx the calling thread's current context and returns the previous
 * one (often NULL); hand it to trail_ctx_leave() to restore it. ctx must stay
 * valid while it is current. NULL enters "no context".
 */
TRAIL_API trail_ctx *trail_ctx_enter(trail_ctx *ctx);
TRAIL_API void trail_ctx_leave(trail_ctx *prev);
TRAIL_API trail_ctx *trail_ctx_current(void);

/*
 * Logging with an explicit context, for deferred work that runs outside any
 * request callback (a timer, a completion, a worker thread): the line
 * carries ctx's ids whatever context is current, and the current one is
 * left as it was. trail_ctx_info(ctx, logger, "message", fields...).
 */
TRAIL_API void trail_ctx_log(trail_ctx *ctx, trail_logger *logger,
                             trail_level level, const char *msg,
                             const trail_field *fields, size_t nfields);
#define TRAIL__LOGC(lvl, what_, cx, lg, ...)                                   \
  do {                                                                         \
    TRAIL__CHECK_CALL(what_, __VA_ARGS__, TRAIL__END)                          \
    trail_logger *trail__lg = (lg);                                            \
    if ((lvl) >= TRAIL_MIN_LEVEL && trail_enabled(trail__lg, (lvl))) {         \
      trail_ctx *trail__prev = trail_ctx_enter(cx);                            \
      TRAIL__EMIT((lvl), trail__lg, __VA_ARGS__, TRAIL__END);                  \
      trail_ctx_leave(trail__prev);                                            \
    }                                                                          \
  } while (0)
/* The fields check's message: there is no printf-style ctx variant. */
#define TRAIL__NOT_FIELD_CTX(f_)                                               \
  "trail: a field argument is not a trail_field; for printf-style arguments "  \
  "enter the context and use " #f_ "()"
#define trail_ctx_trace(cx, lg, ...)                                           \
  TRAIL__LOGC(TRAIL_LEVEL_TRACE, TRAIL__NOT_FIELD_CTX(trail_tracef), cx, lg,   \
              __VA_ARGS__)
#define trail_ctx_debug(cx, lg, ...)                                           \
  TRAIL__LOGC(TRAIL_LEVEL_DEBUG, TRAIL__NOT_FIELD_CTX(trail_debugf), cx, lg,   \
              __VA_ARGS__)
#define trail_ctx_info(cx, lg, ...)                                            \
  TRAIL__LOGC(TRAIL_LEVEL_INFO, TRAIL__NOT_FIELD_CTX(trail_infof), cx, lg,     \
              __VA_ARGS__)
#define trail_ctx_warn(cx, lg, ...)                                            \
  TRAIL__LOGC(TRAIL_LEVEL_WARN, TRAIL__NOT_FIELD_CTX(trail_warnf), cx, lg,     \
              __VA_ARGS__)
#define trail_ctx_error(cx, lg, ...)                                           \
  TRAIL__LOGC(TRAIL_LEVEL_ERROR, TRAIL__NOT_FIELD_CTX(trail_errorf), cx, lg,   \
              __VA_ARGS__)
#define trail_ctx_fatal(cx, lg, ...)                                           \
  TRAIL__LOGC(TRAIL_LEVEL_FATAL, TRAIL__NOT_FIELD_CTX(trail_fatalf), cx, lg,   \
              __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Ids and traceparent                                                      */
/* ------------------------------------------------------------------------ */

/* The id makers return 0, or -ENOSPC when buf is too small (untouched). */
/* A new UUID v4 (libuuid), lowercase: buf needs 37 bytes. */
TRAIL_API int trail_request_id_new(char *buf, size_t size);
/* 16 random bytes as 32 lowercase hex, never all zero: 33 bytes. */
TRAIL_API int trail_trace_id_new(char *buf, size_t size);
/* 8 random bytes as 16 lowercase hex, never all zero: 17 bytes. */
TRAIL_API int trail_span_id_new(char *buf, size_t size);
/* 0 when id is 1..128 bytes of [A-Za-z0-9._:-], else TRAIL_EINVAL_ID. */
TRAIL_API int trail_request_id_check(const char *id, size_t len);

typedef struct trail_traceparent {
  uint8_t version;
  uint8_t flags;
  char trace_id[TRAIL_TRACE_ID_LEN + 1];
  char parent_id[TRAIL_SPAN_ID_LEN + 1];
} trail_traceparent;

/*
 * Parses a traceparent value by W3C Trace Context rules (len may be
 * TRAIL_NTS); the flags byte is returned whole. Returns 0, or
 * TRAIL_EINVAL_TRACEPARENT with out untouched.
 */
TRAIL_API int trail_traceparent_parse(const char *value, size_t len,
                                      trail_traceparent *out);
/* Formats version 00: writes 55 chars and a NUL; returns 55 or -ENOSPC. */
TRAIL_API int trail_traceparent_format(const trail_traceparent *tp, char *buf,
                                       size_t size);

/* ------------------------------------------------------------------------ */
/* Setup and configuration                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Sets the service name and reads TRAIL_LEVEL, TRAIL_OUTPUT, TRAIL_SERVICE
 * (overrides the argument), TRAIL_CALLER, TRAIL_MAX_LINE, TRAIL_SAMPLING,
 * TRAIL_REDACT and TRAIL_ASYNC (with TRAIL_ASYNC_OVERFLOW,
 * TRAIL_ASYNC_QUEUE). A bad variable is reported
 * on stderr and its default kept. NULL service: the program's name. Returns
 * 0, or a negative code when the service name is invalid. Logging works
 * without it (defaults: stdout, info, service = program name).
 */
TRAIL_API int trail_init(const char *service);
/* Closes the sinks trail opened and returns to the defaults. */
TRAIL_API void trail_shutdown(void);
/*
 * Returns once everything this process logged before the call has been
 * handed to the kernel (sync mode: already true; async: waits for the
 * writer, for as long as it makes progress). Returns 0; -ETIMEDOUT when
 * the writer made no progress for its stop_wait_ms (the lines stay queued);
 * -EDEADLK from a callback sink on the writer.
 */
TRAIL_API int trail_flush(void);
/* Reopens every file sink by its path (after log rotation). */
TRAIL_API int trail_reopen(void);
/*
 * After signal signo (typically SIGHUP), the file sinks are reopened before
 * the next line is written; the handler only sets a flag. Replaces any
 * handler of signo. Returns 0, or -EINVAL for SIGKILL, SIGSTOP, SIGSEGV,
 * SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS or no signal, or -errno.
 */
TRAIL_API int trail_reopen_on_signal(int signo);

TRAIL_API int trail_service_set(const char *service);
TRAIL_API const char *trail_service(void);
/* "info" or "info,db=debug,http.client=warn"; see docs/configuration.md. */
TRAIL_API int trail_levels_set(const char *spec, trail_config_error *err);
/* "stdout", "stderr" or a file path: replaces every sink by this one. */
TRAIL_API int trail_output_set(const char *spec, trail_config_error *err);
/*
 * The sensitive keys whose values are written as "[REDACTED]": a comma-
 * separated list, matched case-insensitively against field keys (event,
 * logger-bound, context-bound) and the keys of objects inside json_t
 * values. NULL: the default list (password, passwd, secret, token, api_key,
 * authorization, cookie, set-cookie); "": none. At most 32 keys of at most
 * 63 bytes. TRAIL_REDACT does the same from the environment. Fields bound
 * earlier are checked against the new list in the lines that follow; a
 * value redacted when it was bound stays redacted.
 */
TRAIL_API int trail_redact_set(const char *list, trail_config_error *err);
/* Adds "caller":"file.c:42" to every line when on. */
TRAIL_API void trail_caller_set(bool on);
/* The maximum line length in bytes, "\n" included: 2048 .. 16 MiB. */
TRAIL_API int trail_max_line_set(size_t bytes);
TRAIL_API size_t trail_max_line(void);
/* Applies TRAIL_* from the environment now (trail_init calls it). */
TRAIL_API int trail_config_from_env(void);

/* ------------------------------------------------------------------------ */
/* Sinks                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * A user sink: called once per line that passes its minimum level, with the
 * whole line ("\n" included, not NUL-terminated): on the logging thread in
 * sync mode, on the writer thread in async mode. It must be thread-safe and
 * must not log, flush or stop the writer.
 */
typedef void (*trail_sink_fn)(void *user, trail_level level, const char *line,
                              size_t len);

/* Each returns a sink id (>= 0) for trail_sink_remove(), or a negative code. */
TRAIL_API int trail_sink_add_stdout(trail_level min);
TRAIL_API int trail_sink_add_stderr(trail_level min);
/* Opens path O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, mode 0640; reopenable. */
TRAIL_API int trail_sink_add_file(const char *path, trail_level min);
/*
 * The same, rotated by size: a line that would take the file past max_bytes
 * (>= 1) first renames path to path.1 (path.1 to path.2 ..., keep files at
 * most, 0 to 1000; keep 0 removes the file). Processes sharing path rotate
 * once, under an flock on path.lock.
 */
TRAIL_API int trail_sink_add_file_rotating(const char *path,
                                           trail_level min_level,
                                           uint64_t max_bytes, unsigned keep);
/* Writes to fd, which stays the caller's (trail never closes it). */
TRAIL_API int trail_sink_add_fd(int fd, trail_level min);
TRAIL_API int trail_sink_add_callback(trail_sink_fn fn, void *user,
                                      trail_level min);
TRAIL_API int trail_sink_remove(int id);
/* Removes every sink: events go nowhere until one is added. */
TRAIL_API void trail_sinks_clear(void);

/* ------------------------------------------------------------------------ */
/* Asynchronous writing                                                     */
/* ------------------------------------------------------------------------ */

/* What a logging call does when the async queue is full. */
typedef enum trail_overflow {
  TRAIL_OVERFLOW_BLOCK = 0, /* wait for room: nothing is lost (default) */
  TRAIL_OVERFLOW_DROP = 1   /* never wait: the event is dropped and counted */
} trail_overflow;

/* trail_async_options.stop_wait_ms: how long a stop or a flush waits for
 * a writer that makes no progress, by default, and to wait for good. */
#define TRAIL_STOP_WAIT_DEFAULT_MS 5000
#define TRAIL_STOP_WAIT_FOREVER (-1)

typedef struct trail_async_options {
  size_t queue_size;       /* bytes; 0: 2 MiB. At least 4 maximum lines. */
  trail_overflow overflow; /* TRAIL_OVERFLOW_BLOCK or TRAIL_OVERFLOW_DROP */
  /*
   * How long trail_async_stop() (and so trail_shutdown() and exit) waits
   * for a writer that makes no progress, a sink that takes no bytes, before
   * it gives the writer up, and trail_flush() before it returns -ETIMEDOUT:
   * milliseconds; 0: TRAIL_STOP_WAIT_DEFAULT_MS; TRAIL_STOP_WAIT_FOREVER:
   * for good.
   */
  int stop_wait_ms;
  void *reserved[3]; /* must be zero */
} trail_async_options;

/*
 * Starts the writer thread: from now on a logging call copies its event into
 * a queue (everything it borrowed included) and the writer encodes and
 * writes the queue in large writes. NULL options: the defaults. Returns 0,
 * -EALREADY when running, or a negative code.
 * TRAIL_ASYNC=1 does the same from trail_init().
 */
TRAIL_API int trail_async_start(const trail_async_options *opts);
/*
 * Drains the queue, stops the writer and goes back to synchronous writes.
 * Returns 0; -ETIMEDOUT when the writer made no progress for stop_wait_ms
 * and was given up: the lines it had not written went to the other sinks,
 * and the sink it was stuck in is skipped until that write returns.
 */
TRAIL_API int trail_async_stop(void);
TRAIL_API bool trail_async_running(void);

/*
 * On SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT: writes what the async queue
 * still holds and a "fatal" line naming the signal (and the crashing
 * thread's request ids) to the descriptor sinks, with async-signal-safe
 * calls only, then hands the signal back to its previous disposition.
 * Returns 0, -EALREADY, or -errno.
 */
TRAIL_API int trail_crash_handler_install(void);
TRAIL_API void trail_crash_handler_remove(void);

/* ------------------------------------------------------------------------ */
/* Counters                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct trail_counters {
  uint64_t events[TRAIL_LEVEL_COUNT]; /* lines written, by level */
  uint64_t bytes;                     /* bytes handed to sinks */
  uint64_t write_errors;              /* failed writes (any sink) */
  uint64_t truncated;                 /* lines cut to the maximum */
  uint64_t dropped;                   /* events lost before any sink */
  uint64_t queue_high_water;          /* async: most bytes ever queued */
  uint64_t suppressed;                /* events held back by sampling */
  uint64_t buffered;                  /* lines kept in a request's buffer */
  uint64_t buffer_flushed;   /* of those, written: their request failed */
  uint64_t buffer_discarded; /* dropped: request done, buffer full, pool */
  uint64_t reserved[3];
} trail_counters;

/* A snapshot of the process-wide counters, at any time, from any thread. */
TRAIL_API void trail_counters_get(trail_counters *out);
TRAIL_API void trail_counters_reset(void);
/*
 * The counters in the Prometheus text exposition format, for /metrics:
 * trail_log_lines_total{service,level}, trail_log_bytes_total,
 * trail_log_write_errors_total, trail_log_truncated_total,
 * trail_log_dropped_total, trail_log_suppressed_total,
 * trail_log_buffered_total, trail_log_buffer_flushed_total,
 * trail_log_buffer_discarded_total and the gauge
 * trail_log_queue_high_water_bytes. Writes at most size bytes (NUL
 * included) and returns the length the whole text needs, like snprintf.
 */
TRAIL_API size_t trail_metrics_render(char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* TRAIL_H */
