/*
 * Process fields: trail_fields_set() and TRAIL_FIELDS. Their place in the
 * key order (read from the raw line), the rename rule against the logger's,
 * the context's and the event's fields, redaction, the limits, the
 * variable's syntax, and replacing the set while threads log, in sync and
 * async mode: every line carries one whole set, and no line is lost.
 */
#define _GNU_SOURCE
#include "support.h"
#include "watchdog.h"

#include <sched.h>

#include "internal.h"

/* The top-level keys of a compact line, in the order they are written. */
static size_t raw_keys(const char *line, char keys[][64], size_t max) {
  size_t n = 0;
  int depth = 0, expect_key = 0;
  for (const char *p = line; *p != '\0' && *p != '\n'; p++) {
    if (*p == '"') {
      const char *start = ++p;
      while (*p != '"')
        p += *p == '\\' ? 2 : 1;
      if (depth == 1 && expect_key && n < max) {
        size_t len = (size_t)(p - start);
        snprintf(keys[n++], 64, "%.*s", (int)len, start);
      }
      expect_key = 0;
    } else if (*p == '{' || *p == '[') {
      depth++;
      expect_key = *p == '{' && depth == 1;
    } else if (*p == '}' || *p == ']') {
      depth--;
    } else if (*p == ',' && depth == 1) {
      expect_key = 1;
    }
  }
  return n;
}

/* Asserts that line i's keys are exactly want, in that order. */
static void assert_keys(size_t i, const char *const *want, size_t nwant) {
  char keys[64][64];
  size_t n = raw_keys(cap_text(i), keys, 64);
  if (n != nwant)
    fail_msg("%zu keys, want %zu: %s", n, nwant, cap_text(i));
  for (size_t k = 0; k < n; k++)
    if (strcmp(keys[k], want[k]) != 0)
      fail_msg("key %zu is %s, want %s: %s", k, keys[k], want[k], cap_text(i));
  json_decref(cap_json(i));
}

static void order_and_collisions(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_TRACE);
  trail_caller_set(true);
  trail_field pf[] = {TRAIL_STR("version", "1.4.2"), TRAIL_STR("region", "eu"),
                      TRAIL_INT("level", 7), TRAIL_STR("password", "hunter2")};
  assert_int_equal(trail_fields_set(pf, 4), 0);
  trail_logger *lg =
      trail_logger_child(NULL, TRAIL_STR("region", "lg"), TRAIL_STR("lf", "l"));
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  assert_int_equal(trail_ctx_bind(&ctx, TRAIL_STR("region", "ctx")), 0);
  trail_ctx *prev = trail_ctx_enter(&ctx);
  trail_info(lg, "one", TRAIL_STR("region", "ev"), TRAIL_BOOL("ef", 1));
  trail_ctx_leave(prev);
  trail_info(NULL, "two");
  static const char *const one[] = {
      "timestamp", "level",   "logger", "message",  "service",   "request_id",
      "trace_id",  "span_id", "caller", "version",  "region",    "_level",
      "password",  "_region", "lf",     "__region", "___region", "ef"};
  assert_keys(0, one, sizeof one / sizeof one[0]);
  static const char *const two[] = {
      "timestamp", "level",   "logger", "message", "service",
      "caller",    "version", "region", "_level",  "password"};
  assert_keys(1, two, sizeof two / sizeof two[0]);
  json_t *j = cap_json(0);
  assert_string_equal(jstr(j, "region"), "eu");
  assert_string_equal(jstr(j, "_region"), "lg");
  assert_string_equal(jstr(j, "__region"), "ctx");
  assert_string_equal(jstr(j, "___region"), "ev");
  assert_int_equal(json_integer_value(json_object_get(j, "_level")), 7);
  assert_string_equal(jstr(j, "password"), "[REDACTED]");
  assert_null(strstr(cap_text(0), "hunter2"));
  json_decref(j);
  trail_logger_free(lg);
  cap_stop();
}

static void every_kind_and_clear(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_TRACE);
  json_t *v = json_pack("{s:i}", "a", 1);
  trail_field pf[] = {TRAIL_STR("s", "x"), TRAIL_INT("i", -3),
                      TRAIL_UINT("u", 4),  TRAIL_DOUBLE("d", 1.5),
                      TRAIL_BOOL("b", 0),  TRAIL_JSON("j", v)};
  assert_int_equal(trail_fields_set(pf, 6), 0);
  json_decref(v); /* copied: the set does not keep it */
  trail_info(NULL, "kinds");
  assert_int_equal(trail_fields_set(NULL, 0), 0);
  trail_info(NULL, "none");
  assert_non_null(strstr(cap_text(0), ",\"service\":"));
  assert_non_null(strstr(cap_text(0), "\"s\":\"x\",\"i\":-3,\"u\":4,\"d\":1.5,"
                                      "\"b\":false,\"j\":{\"a\":1}}\n"));
  static const char *const none[] = {"timestamp", "level", "logger", "message",
                                     "service"};
  assert_keys(1, none, 5);
  cap_stop();
}

static void limits(void **state) {
  (void)state;
  trail_field dup[] = {TRAIL_STR("k", "1"), TRAIL_STR("k", "2")};
  assert_int_equal(trail_fields_set(dup, 2), -EINVAL);
  trail_field empty[] = {TRAIL_STR("", "1")};
  assert_int_equal(trail_fields_set(empty, 1), -EINVAL);
  trail_field nokey[] = {TRAIL_STR(NULL, "1")};
  assert_int_equal(trail_fields_set(nokey, 1), -EINVAL);
  assert_int_equal(trail_fields_set(NULL, 1), -EINVAL);
  trail_field many[33];
  char names[33][8];
  for (int i = 0; i < 33; i++) {
    snprintf(names[i], sizeof names[i], "k%d", i);
    many[i] = TRAIL_INT(names[i], i);
  }
  assert_int_equal(trail_fields_set(many, 33), -ENOSPC);
  assert_int_equal(trail_fields_set(many, 32), 0);
  char big[1100];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  trail_field large[] = {TRAIL_STR("big", big)};
  assert_int_equal(trail_fields_set(large, 1), -ENOSPC);
  big[1000] = '\0';
  assert_int_equal(trail_fields_set(large, 1), 0);
  /* A long message is cut, never the process fields. */
  cap_start(TRAIL_LEVEL_TRACE);
  assert_int_equal(trail_max_line_set(2048), 0);
  trail_info(NULL, big);
  json_t *j = cap_json(0);
  assert_int_equal(strlen(jstr(j, "big")), 1000);
  assert_true(json_is_true(json_object_get(j, "truncated")));
  assert_true(cap.lines[0].len <= 2048);
  json_decref(j);
  cap_stop();
}

/* TRAIL_FIELDS values: parsed, applied, and the bad ones refused. */
static void spec(void **state) {
  (void)state;
  trail_config_error err;
  cap_start(TRAIL_LEVEL_TRACE);
  assert_int_equal(
      trail__fields_parse("version=1.4.2,note=a\\,b\\=c=d,e=", &err, "T"), 0);
  trail_info(NULL, "x");
  assert_non_null(strstr(cap_text(0), ",\"version\":\"1.4.2\",\"note\":"
                                      "\"a,b=c=d\",\"e\":\"\"}\n"));
  static const char *const bad[] = {"novalue", "=v",   "a=1,a=2",
                                    "a=1,",    "a=\\", "a=1,,b=2"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&err, 0, sizeof err);
    assert_int_equal(trail__fields_parse(bad[i], &err, "TRAIL_FIELDS"),
                     TRAIL_EINVAL_SPEC);
    assert_string_equal(err.source, "TRAIL_FIELDS");
    assert_true(err.text[0] != '\0');
  }
  /* Through the environment at trail_init(); a bad value keeps the set. */
  setenv("TRAIL_FIELDS", "region=eu-1", 1);
  assert_int_equal(trail_init(NULL), 0);
  setenv("TRAIL_FIELDS", "region", 1);
  assert_int_equal(trail_config_from_env(), 1);
  unsetenv("TRAIL_FIELDS");
  trail_info(NULL, "y");
  assert_non_null(strstr(cap_text(1), ",\"region\":\"eu-1\"}\n"));
  cap_stop();
}

/* An event queued before a change is written with the set it was logged
 * with, though the writer encodes it after the change. */
static void async_keeps_logged_set(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_TRACE);
  trail_async_options o = {.queue_size = 0, .overflow = TRAIL_OVERFLOW_BLOCK};
  assert_int_equal(trail_async_start(&o), 0);
  trail_field a[] = {TRAIL_STR("set", "a")}, b[] = {TRAIL_STR("set", "b")};
  for (int i = 0; i < 100; i++) {
    assert_int_equal(trail_fields_set(i % 2 ? b : a, 1), 0);
    trail_info(NULL, i % 2 ? "b" : "a");
  }
  assert_int_equal(trail_flush(), 0);
  assert_int_equal(cap_count(), 100);
  for (size_t i = 0; i < 100; i++) {
    json_t *j = cap_json(i);
    assert_string_equal(jstr(j, "set"), jstr(j, "message"));
    json_decref(j);
  }
  cap_stop();
}

/* ---- replacing the set while four threads log ------------------------- */

#define THREADS 4
#define PER_THREAD 25000
#define FIRST_RUN 1000 /* lines each thread logs before any replacement */
#define PACE 100       /* lines logged between two replacements */

/* Workers ready and done, and lines logged by all of them. */
static int ready, done, logged;
static uint32_t published;

static void publish(uint32_t g) {
  char a[16], b[16];
  snprintf(a, sizeof a, "a%u", g);
  snprintf(b, sizeof b, "b%u", g);
  trail_field f[] = {TRAIL_UINT("gen", g), TRAIL_STR("fa", a),
                     TRAIL_STR("fb", b)};
  CHILD_CHECK(trail_fields_set(f, 3) == 0);
  __atomic_store_n(&published, g, __ATOMIC_RELEASE);
}

static void *worker(void *arg) {
  trail_logger *lg = trail_logger_child(NULL, TRAIL_INT("t", (intptr_t)arg));
  for (int i = 0; i < PER_THREAD; i++) {
    if (i == FIRST_RUN) {
      __atomic_add_fetch(&ready, 1, __ATOMIC_ACQ_REL);
      while (__atomic_load_n(&published, __ATOMIC_ACQUIRE) < 2)
        sched_yield();
    }
    trail_info(lg, "line", TRAIL_INT("i", i));
    __atomic_add_fetch(&logged, 1, __ATOMIC_RELAXED);
  }
  trail_logger_free(lg);
  __atomic_add_fetch(&done, 1, __ATOMIC_ACQ_REL);
  return NULL;
}

/* Every line: one whole set (gen, fa, fb agree), in the fields' place. */
static int line_ok(const char *text, size_t len, uint32_t *gen) {
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  if (j == NULL)
    return 0;
  *gen = (uint32_t)json_integer_value(json_object_get(j, "gen"));
  char a[16], b[16];
  snprintf(a, sizeof a, "a%u", *gen);
  snprintf(b, sizeof b, "b%u", *gen);
  const char *fa = json_string_value(json_object_get(j, "fa"));
  const char *fb = json_string_value(json_object_get(j, "fb"));
  int ok = *gen > 0 && fa && fb && strcmp(fa, a) == 0 && strcmp(fb, b) == 0 &&
           json_object_size(j) == 10;
  json_decref(j);
  char keys[16][64];
  ok = ok && raw_keys(text, keys, 16) == 10 && strcmp(keys[5], "gen") == 0 &&
       strcmp(keys[8], "t") == 0;
  return ok;
}

static void swap_scenario(int async) {
  cap_clear();
  trail_caller_set(false);
  trail_sinks_clear();
  CHILD_CHECK(trail_sink_add_callback(cap_sink, NULL, TRAIL_LEVEL_TRACE) >= 0);
  trail_async_options o = {.queue_size = 0, .overflow = TRAIL_OVERFLOW_BLOCK};
  CHILD_CHECK(!async || trail_async_start(&o) == 0);
  publish(1);
  pthread_t t[THREADS];
  for (intptr_t i = 0; i < THREADS; i++)
    CHILD_CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
  while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) < THREADS)
    sched_yield();
  /* A replacement every PACE lines: about a thousand sets, as many as a
   * service that reloads its fields makes in a long life, each racing the
   * lines being logged, and more than the recent sets' table holds. */
  uint32_t g = 2;
  int at = -PACE;
  while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < THREADS) {
    int n = __atomic_load_n(&logged, __ATOMIC_RELAXED);
    if (n - at < PACE) {
      sched_yield();
      continue;
    }
    publish(g++);
    at = n;
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  CHILD_CHECK(trail_flush() == 0);
  CHILD_CHECK(cap_count() == THREADS * PER_THREAD);
  int seen_first = 0, seen_later = 0;
  for (size_t i = 0; i < cap.n; i++) {
    uint32_t gen = 0;
    CHILD_CHECK(line_ok(cap.lines[i].text, cap.lines[i].len, &gen));
    CHILD_CHECK(gen < g);
    seen_first |= gen == 1;
    seen_later |= gen >= 2;
  }
  CHILD_CHECK(seen_first && seen_later);
  trail_shutdown();
}

static void swap_sync(void) { swap_scenario(0); }
static void swap_async(void) { swap_scenario(1); }

static void replace_while_logging(void **state) {
  (void)state;
  run_watched("replace while logging (sync)", swap_sync);
  run_watched("replace while logging (async)", swap_async);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(order_and_collisions),
      cmocka_unit_test(every_kind_and_clear),
      cmocka_unit_test(limits),
      cmocka_unit_test(spec),
      cmocka_unit_test(async_keeps_logged_set),
      cmocka_unit_test(replace_while_logging),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
