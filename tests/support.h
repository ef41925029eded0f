/*
 * Test support shared by the cmocka programs: a capture sink that keeps
 * every line trail writes, and checks that parse each line with jansson.
 * Header-only (static functions) so that each test stays one source file.
 */
#ifndef TRAIL_TEST_SUPPORT_H
#define TRAIL_TEST_SUPPORT_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pthread.h>
#include <cmocka.h>

#include "trail.h"

typedef struct cap_line {
  char *text; /* the whole line, "\n" included, NUL-terminated */
  size_t len;
  trail_level level;
} cap_line;

static struct {
  pthread_mutex_t lock;
  cap_line *lines;
  size_t n, cap;
  int sink_id;
} cap = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, -1};

static inline void cap_sink(void *user, trail_level level, const char *line,
                            size_t len) {
  (void)user;
  pthread_mutex_lock(&cap.lock);
  if (cap.n == cap.cap) {
    cap.cap = cap.cap ? cap.cap * 2 : 64;
    cap.lines = realloc(cap.lines, cap.cap * sizeof *cap.lines);
  }
  cap.lines[cap.n].text = malloc(len + 1);
  memcpy(cap.lines[cap.n].text, line, len);
  cap.lines[cap.n].text[len] = '\0';
  cap.lines[cap.n].len = len;
  cap.lines[cap.n].level = level;
  cap.n++;
  pthread_mutex_unlock(&cap.lock);
}

static inline void cap_clear(void) {
  pthread_mutex_lock(&cap.lock);
  for (size_t i = 0; i < cap.n; i++)
    free(cap.lines[i].text);
  cap.n = 0;
  pthread_mutex_unlock(&cap.lock);
}

/* Makes the capture sink the only sink, at min, with no lines kept yet. */
static inline void cap_start(trail_level min) {
  cap_clear();
  trail_sinks_clear();
  cap.sink_id = trail_sink_add_callback(cap_sink, NULL, min);
  assert_true(cap.sink_id >= 0);
}

/* Back to the library defaults and no captured lines. */
static inline void cap_stop(void) {
  trail_shutdown();
  cap_clear();
  free(cap.lines);
  cap.lines = NULL;
  cap.cap = 0;
}

static inline size_t cap_count(void) {
  pthread_mutex_lock(&cap.lock);
  size_t n = cap.n;
  pthread_mutex_unlock(&cap.lock);
  return n;
}

static inline const char *cap_text(size_t i) {
  assert_true(i < cap.n);
  return cap.lines[i].text;
}

/*
 * Line i after its timestamp: for looking for a value that must not be
 * written (a redacted number, say), which the timestamp's digits could
 * otherwise contain by chance ("...:12.341234Z" holds "1234").
 */
static inline const char *cap_text_after_time(size_t i) {
  const char *t = cap_text(i);
  const char *z = strstr(t, "Z\"");
  assert_non_null(z);
  return z + 2;
}

/*
 * Checks the shape every line must have (one object, one "\n" at the end and
 * none before it, no raw control byte, no duplicate key) and returns it
 * parsed; the caller json_decref()s it.
 */
static inline json_t *parse_line(const char *text, size_t len) {
  assert_true(len > 2);
  assert_int_equal(text[len - 1], '\n');
  for (size_t i = 0; i + 1 < len; i++)
    assert_true((unsigned char)text[i] >= 0x20 && text[i] != 0x7f);
  json_error_t e;
  json_t *j =
      json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
  if (j == NULL)
    fail_msg("line does not parse (%s at %d): %.300s", e.text, e.position,
             text);
  assert_true(json_is_object(j));
  return j;
}

static inline json_t *cap_json(size_t i) {
  assert_true(i < cap_count());
  return parse_line(cap.lines[i].text, cap.lines[i].len);
}

/* The line's key order: the contract's keys first, in their order. */
static inline void assert_key_order(json_t *j) {
  static const char *const order[] = {
      "timestamp",  "level",   "logger",   "message", "service",
      "request_id", "user_id", "trace_id", "span_id", "caller"};
  const size_t norder = sizeof order / sizeof order[0];
  size_t next = 0; /* index in order of the next contract key allowed */
  int in_fields = 0;
  const char *k;
  json_t *v;
  int last_was_truncated = 0;
  json_object_foreach(j, k, v) {
    assert_false(last_was_truncated); /* "truncated" only last */
    size_t at = norder;
    for (size_t i = 0; i < norder; i++)
      if (strcmp(order[i], k) == 0)
        at = i;
    if (strcmp(k, "truncated") == 0) {
      assert_true(json_is_true(v));
      last_was_truncated = 1;
      continue;
    }
    if (at == norder) {
      in_fields = 1;
      continue;
    }
    if (in_fields)
      fail_msg("contract key %s after a field", k);
    if (at < next)
      fail_msg("contract key %s out of order", k);
    next = at + 1;
  }
  /* The five keys every line has. */
  for (size_t i = 0; i < 5; i++)
    if (json_object_get(j, order[i]) == NULL)
      fail_msg("line lacks %s", order[i]);
}

static inline const char *jstr(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  if (v == NULL || !json_is_string(v))
    fail_msg("no string %s", key);
  return json_string_value(v);
}

static inline void assert_str_field(json_t *j, const char *key,
                                    const char *want) {
  assert_string_equal(jstr(j, key), want);
}

#endif /* TRAIL_TEST_SUPPORT_H */
