/*
 * Checks the HTTP tests share, written once: values (lowercase hex, a
 * UUID v4, an id trail would keep), a service's lines (found by request,
 * logger, message or path; searched as written), the waits on the
 * harness's reader for a line still to come, and the rule that every line
 * of a request carries its access line's ids.
 *
 * Header-only, like http_harness.h; every function is static inline, so a
 * test file uses what it needs.
 */
#ifndef TRAIL_TEST_HTTP_CHECKS_H
#define TRAIL_TEST_HTTP_CHECKS_H

#include "http_harness.h"

#include <stdarg.h>
#include <time.h>

/* ---- checks on values --------------------------------------------------- */

static inline int is_lower_hex(const char *s, size_t n) {
  if (s == NULL || strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* A lowercase UUID v4, as trail makes them. */
static inline int is_uuid(const char *s) {
  if (s == NULL || strlen(s) != 36 || s[14] != '4')
    return 0;
  for (size_t i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-'))
      return 0;
    if (!dash && !is_lower_hex((char[]){s[i], 0}, 1))
      return 0;
  }
  return 1;
}

/* A request id trail would keep: 1..128 of [A-Za-z0-9._:-]. */
static inline int is_safe_id(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 1 || n > 128)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || strchr("._:-", s[i]) != NULL))
      return 0;
  return 1;
}

/* ---- lines -------------------------------------------------------------- */

static inline const char *str_or_null(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return v && json_is_string(v) ? json_string_value(v) : NULL;
}

static inline json_int_t jint(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  if (v == NULL || !json_is_integer(v))
    fail_msg("no integer %s", key);
  return json_integer_value(v);
}

/*
 * The first line of request_id from logger with message (logger or
 * message NULL: any). Only for a stopped service, or with s->lock held.
 */
static inline json_t *find_line(service *s, const char *rid, const char *logger,
                                const char *message) {
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    const char *r = str_or_null(j, "request_id");
    const char *l = str_or_null(j, "logger");
    const char *m = str_or_null(j, "message");
    if (r && strcmp(r, rid) == 0 &&
        (logger == NULL || (l && strcmp(l, logger) == 0)) &&
        (message == NULL || (m && strcmp(m, message) == 0)))
      return j;
  }
  return NULL;
}

/* The first line with that message, whatever its request. */
static inline json_t *find_message(service *s, const char *message) {
  for (size_t i = 0; i < s->n; i++) {
    const char *m = str_or_null(s->lines[i], "message");
    if (m != NULL && strcmp(m, message) == 0)
      return s->lines[i];
  }
  return NULL;
}

/* The access line whose path is path. */
static inline json_t *access_by_path(service *s, const char *path) {
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    const char *m = str_or_null(j, "message");
    const char *p = str_or_null(j, "path");
    if (m && strcmp(m, "request completed") == 0 && p && strcmp(p, path) == 0)
      return j;
  }
  return NULL;
}

/* How many access lines carry request id rid. */
static inline size_t access_count(service *s, const char *rid) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) {
    const char *m = str_or_null(s->lines[i], "message");
    const char *r = str_or_null(s->lines[i], "request_id");
    if (m && strcmp(m, "request completed") == 0 && r && strcmp(r, rid) == 0)
      n++;
  }
  return n;
}

/* Whether any line, as written, contains needle. */
static inline int text_anywhere(service *s, const char *needle) {
  for (size_t i = 0; i < s->n; i++)
    if (strstr(s->texts[i], needle) != NULL)
      return 1;
  return 0;
}

/* Every line of rid carries the access line's trace and span, and there
 * are at least two (the handler's and the access line). */
static inline void check_same_ids(service *s, const char *rid, json_t *acc) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) {
    const char *r = str_or_null(s->lines[i], "request_id");
    if (r == NULL || strcmp(r, rid) != 0)
      continue;
    n++;
    assert_string_equal(jstr(s->lines[i], "trace_id"), jstr(acc, "trace_id"));
    assert_string_equal(jstr(s->lines[i], "span_id"), jstr(acc, "span_id"));
  }
  assert_true(n >= 2);
}

/* ---- waiting for a line of a running service ---------------------------- */

/*
 * The waits below end when the line comes or the service ends; the
 * deadline only turns a broken service into a failure rather than a hang.
 */
#define HTTP_WAIT_BOUND_S 120

/* One wait on the reader's condition, s->lock held; 0 past the bound. */
static inline int wait_more(service *s) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += HTTP_WAIT_BOUND_S;
  return pthread_cond_timedwait(&s->cv, &s->lock, &t) == 0;
}

/* Waits for a line with key == value; NULL if the service ended first. */
static inline json_t *wait_line(service *s, const char *key,
                                const char *value) {
  json_t *found = NULL;
  size_t seen = 0;
  int alive = 1;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    for (; seen < s->n && found == NULL; seen++) {
      const char *v = str_or_null(s->lines[seen], key);
      if (v && strcmp(v, value) == 0)
        found = s->lines[seen];
    }
    if (found != NULL || s->eof || !alive)
      break;
    alive = wait_more(s);
  }
  pthread_mutex_unlock(&s->lock);
  if (found == NULL && !alive)
    fail_msg("no line with %s %s", key, value);
  return found;
}

/* Waits for the line of request rid with message; fails if the service
 * ends first. */
static inline void wait_request_line(service *s, const char *rid,
                                     const char *message) {
  int alive = 1;
  pthread_mutex_lock(&s->lock);
  while (find_line(s, rid, NULL, message) == NULL) {
    if (s->eof || !alive) {
      pthread_mutex_unlock(&s->lock);
      fail_msg("no line \"%s\" for request %s", message, rid);
    }
    alive = wait_more(s);
  }
  pthread_mutex_unlock(&s->lock);
}

/* Waits for the access line of rid; NULL if the service ended first. */
static inline json_t *wait_access(service *s, const char *rid) {
  json_t *found;
  int alive = 1;
  pthread_mutex_lock(&s->lock);
  while ((found = service_access_line(s, rid)) == NULL && !s->eof && alive)
    alive = wait_more(s);
  pthread_mutex_unlock(&s->lock);
  if (found == NULL && !alive)
    fail_msg("no access line for %s", rid);
  return found;
}

/* ---- lines captured in this process (support.h's capture sink) --------- */

/* The captured line of request_id with message; the caller decrefs it. */
static inline json_t *cap_find(const char *rid, const char *message) {
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    const char *r = str_or_null(j, "request_id");
    const char *m = str_or_null(j, "message");
    if (r && strcmp(r, rid) == 0 && m && strcmp(m, message) == 0)
      return j;
    json_decref(j);
  }
  return NULL;
}

/*
 * The captured access line of a request whose reply never went out: its
 * status, no bytes, and "client_gone":true exactly when it says 499.
 */
static inline void cap_expect_unsent(const char *rid, int status) {
  json_t *acc = cap_find(rid, "request completed");
  if (acc == NULL)
    fail_msg("no access line for %s", rid);
  assert_int_equal(jint(acc, "status"), status);
  assert_int_equal(json_is_true(json_object_get(acc, "client_gone")),
                   status == 499);
  assert_int_equal(jint(acc, "bytes"), 0);
  json_decref(acc);
}

/* How many captured lines have that message. */
static inline size_t cap_count_message(const char *message) {
  size_t n = 0;
  for (size_t i = 0; i < cap_count(); i++) {
    json_t *j = cap_json(i);
    const char *m = str_or_null(j, "message");
    if (m && strcmp(m, message) == 0)
      n++;
    json_decref(j);
  }
  return n;
}

/* A server library's message logger, as libmicrohttpd calls it
 * (trail_mhd_error_log, trail_ulfius_error_log). */
typedef void (*http_error_log_fn)(void *cls, const char *fmt, va_list ap);

static inline void TRAIL__PRINTF(3, 4)
    call_error_log(http_error_log_fn log, void *cls, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log(cls, fmt, ap);
  va_end(ap);
}

/* The server's messages through log, captured: formatted, trailing
 * newline dropped, escaped, warn lines of logger "http" (the core's
 * server-error lines). */
static inline void check_error_log(http_error_log_fn log) {
  call_error_log(log, NULL, "Error %d on %s\n", 7, "line\none");
  call_error_log(log, NULL, "%s", "plain");
  assert_int_equal(cap_count(), 2);
  json_t *a = cap_json(0);
  assert_str_field(a, "logger", "http");
  assert_str_field(a, "level", "warn");
  assert_str_field(a, "message", "Error 7 on line\none");
  json_decref(a);
  json_t *b = cap_json(1);
  assert_str_field(b, "logger", "http");
  assert_str_field(b, "message", "plain");
  json_decref(b);
}

#endif /* TRAIL_TEST_HTTP_CHECKS_H */
