/*
 * The logging call and the line it writes (lib/log.c, lib/fields.c): key
 * order, the rename rule, truncation, caller, bound fields, the printf
 * variants, and the level check that does not evaluate arguments.
 */
#include "support.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <time.h>

static int setup(void **state) {
  (void)state;
  trail_init("orders-api");
  cap_start(TRAIL_LEVEL_TRACE);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

/* The DESIGN.md sample line, key for key, in the contract's order. */
static void test_contract_line(void **state) {
  (void)state;
  trail_logger *http = trail_logger_get("http");
  trail_ctx ctx;
  trail_ctx_clear(&ctx);
  assert_int_equal(
      trail_ctx_set_request_id(&ctx, "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"),
      0);
  assert_int_equal(trail_ctx_set_user_id(&ctx, "user-4711"), 0);
  assert_int_equal(
      trail_ctx_set_trace_id(&ctx, "4bf92f3577b34da6a3ce929d0e0e4736"), 0);
  assert_int_equal(trail_ctx_set_span_id(&ctx, "00f067aa0ba902b7"), 0);
  trail_ctx *prev = trail_ctx_enter(&ctx);
  trail_info(http, "request completed", TRAIL_STR("method", "GET"),
             TRAIL_STR("path", "/api/orders/42"), TRAIL_INT("status", 200),
             TRAIL_DOUBLE("duration_ms", 12.5), TRAIL_INT("bytes", 512));
  trail_ctx_leave(prev);
  assert_int_equal(cap_count(), 1);

  const char *text = cap_text(0);
  const char *after_ts = strchr(text + 14, '"');
  assert_non_null(after_ts);
  assert_string_equal(
      after_ts,
      "\",\"level\":\"info\",\"logger\":\"http\",\"message\":\"request "
      "completed\",\"service\":\"orders-api\",\"request_id\":\"3f2b8c1e-6a4d-"
      "4f7e-9b1a-0c5d2e7f8a91\",\"user_id\":\"user-4711\",\"trace_id\":"
      "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\","
      "\"method\":\"GET\",\"path\":\"/api/orders/42\",\"status\":200,"
      "\"duration_ms\":12.5,\"bytes\":512}\n");
  json_t *j = cap_json(0);
  assert_key_order(j);
  regex_t re;
  assert_int_equal(regcomp(&re,
                           "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                           "[0-9]{2}\\.[0-9]{6}Z$",
                           REG_EXTENDED | REG_NOSUB),
                   0);
  assert_int_equal(regexec(&re, jstr(j, "timestamp"), 0, NULL, 0), 0);
  regfree(&re);
  json_decref(j);
}

/* No context, no ids: the keys are left out, never null. */
static void test_no_context_no_ids(void **state) {
  (void)state;
  trail_warn(NULL, "stock low", TRAIL_INT("sku", 991));
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_null(json_object_get(j, "request_id"));
  assert_null(json_object_get(j, "user_id"));
  assert_null(json_object_get(j, "trace_id"));
  assert_null(json_object_get(j, "span_id"));
  assert_str_field(j, "logger", "root");
  assert_str_field(j, "level", "warn");
  assert_int_equal(json_integer_value(json_object_get(j, "sku")), 991);
  json_decref(j);
}

/* Every level's name, and the macros' levels. */
static void test_levels_written(void **state) {
  (void)state;
  trail_logger *lg = trail_logger_get("lv");
  trail_logger_set_level(lg, TRAIL_LEVEL_TRACE);
  trail_trace(lg, "m");
  trail_debug(lg, "m");
  trail_info(lg, "m");
  trail_warn(lg, "m");
  trail_error(lg, "m");
  trail_fatal(lg, "m");
  static const char *const want[] = {"trace", "debug", "info",
                                     "warn",  "error", "fatal"};
  assert_int_equal(cap_count(), 6);
  for (size_t i = 0; i < 6; i++) {
    json_t *j = cap_json(i);
    assert_str_field(j, "level", want[i]);
    json_decref(j);
  }
  trail_logger_set_level(lg, TRAIL_LEVEL_INFO);
}

static int evaluations;
static int64_t side_effect(void) {
  evaluations++;
  return 7;
}

/* A disabled level does not evaluate its arguments; an enabled one once. */
static void test_disabled_level_skips_arguments(void **state) {
  (void)state;
  evaluations = 0;
  trail_logger *lg = trail_logger_get("quiet");
  trail_debug(lg, "no", TRAIL_INT("x", side_effect()));
  trail_debugf(lg, "no %d", (int)side_effect());
  assert_int_equal(evaluations, 0);
  assert_int_equal(cap_count(), 0);
  trail_info(lg, "yes", TRAIL_INT("x", side_effect()));
  trail_infof(lg, "yes %d", (int)side_effect());
  assert_int_equal(evaluations, 2);
  assert_int_equal(cap_count(), 2);
  trail_logger_set_level(lg, TRAIL_LEVEL_OFF);
  trail_fatal(lg, "off", TRAIL_INT("x", side_effect()));
  assert_int_equal(evaluations, 2);
  assert_int_equal(cap_count(), 2);
  trail_logger_set_level(lg, TRAIL_LEVEL_INFO);
}

/* The rename rule: reserved keys and repeats get "_" until unique. */
static void test_rename_rule(void **state) {
  (void)state;
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx_bind(&ctx, TRAIL_STR("tenant", "acme"),
                 TRAIL_STR("request_id", "bound"));
  trail_ctx *prev = trail_ctx_enter(&ctx);
  trail_logger *child =
      trail_logger_child(trail_logger_get("db"), TRAIL_STR("tenant", "lg"),
                         TRAIL_STR("message", "m"), TRAIL_STR("_message", "u"));
  trail_info(child, "hello", TRAIL_STR("level", "x"), TRAIL_STR("k", "1"),
             TRAIL_STR("k", "2"), TRAIL_STR("_k", "3"),
             TRAIL_STR("timestamp", "t"), TRAIL_STR("truncated", "no"),
             TRAIL_STR(NULL, "nullkey"), TRAIL_STR("caller", "c"));
  trail_ctx_leave(prev);
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_str_field(j, "message", "hello");
  assert_str_field(j, "level", "info");
  assert_str_field(j, "request_id", trail_ctx_request_id(&ctx));
  /* logger-bound first */
  assert_str_field(j, "tenant", "lg");
  assert_str_field(j, "_message", "m");
  assert_str_field(j, "__message", "u");
  /* then context-bound, renamed against the logger's */
  assert_str_field(j, "_tenant", "acme");
  assert_str_field(j, "_request_id", "bound");
  /* then the event's own */
  assert_str_field(j, "_level", "x");
  assert_str_field(j, "k", "1");
  assert_str_field(j, "_k", "2");
  assert_str_field(j, "__k", "3");
  assert_str_field(j, "_timestamp", "t");
  assert_str_field(j, "_truncated", "no");
  assert_str_field(j, "_", "nullkey");
  assert_str_field(j, "_caller", "c");
  /* 8 contract keys (no user_id), 3 logger-bound, 2 context-bound, 8 */
  assert_int_equal(json_object_size(j), 8 + 3 + 2 + 8);
  json_decref(j);
  trail_logger_free(child);
}

/* Every field kind, and NULL values. */
static void test_field_kinds(void **state) {
  (void)state;
  json_t *obj = json_pack("{s:i,s:[s,f,b,n]}", "a", 1, "b", "x\n", 2.5, 1);
  trail_info(NULL, "kinds", TRAIL_STR("s", "v"), TRAIL_STRN("n", "a\0b", 3),
             TRAIL_INT("imin", INT64_MIN), TRAIL_INT("imax", INT64_MAX),
             TRAIL_UINT("u", 42), TRAIL_DOUBLE("d", 12.51),
             TRAIL_DOUBLE("nan", NAN), TRAIL_DOUBLE("inf", INFINITY),
             TRAIL_DOUBLE("ninf", -INFINITY), TRAIL_BOOL("t", 1),
             TRAIL_BOOL("f", 0), TRAIL_JSON("obj", obj),
             TRAIL_STR("nulls", NULL), TRAIL_JSON("nullj", NULL));
  json_t *j = cap_json(0);
  assert_str_field(j, "s", "v");
  json_t *n = json_object_get(j, "n");
  assert_int_equal(json_string_length(n), 3);
  assert_memory_equal(json_string_value(n), "a\0b", 3);
  assert_true(json_integer_value(json_object_get(j, "imin")) == INT64_MIN);
  assert_true(json_integer_value(json_object_get(j, "imax")) == INT64_MAX);
  assert_int_equal(json_integer_value(json_object_get(j, "u")), 42);
  assert_true(json_real_value(json_object_get(j, "d")) == 12.51);
  assert_non_null(strstr(cap_text(0), "\"d\":12.51,"));
  assert_str_field(j, "nan", "NaN");
  assert_str_field(j, "inf", "+Inf");
  assert_str_field(j, "ninf", "-Inf");
  assert_true(json_is_true(json_object_get(j, "t")));
  assert_true(json_is_false(json_object_get(j, "f")));
  assert_true(json_equal(json_object_get(j, "obj"), obj));
  assert_true(json_is_null(json_object_get(j, "nulls")));
  assert_true(json_is_null(json_object_get(j, "nullj")));
  json_decref(j);
  json_decref(obj);

  /* jansson reads no integer above INT64_MAX: check the text, then parse
   * it as a real to prove the line is valid JSON. */
  trail_info(NULL, "u", TRAIL_UINT("umax", UINT64_MAX));
  assert_non_null(strstr(cap_text(1), "\"umax\":18446744073709551615}"));
  json_error_t e;
  j = json_loads(cap_text(1), JSON_DECODE_INT_AS_REAL, &e);
  assert_non_null(j);
  assert_true(json_real_value(json_object_get(j, "umax")) ==
              18446744073709551616.0);
  json_decref(j);
}

/* Hostile bytes in the message and keys stay inside one valid line. */
static void test_hostile_message(void **state) {
  (void)state;
  char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (char)(i == 0 ? 1 : i);
  char msg[257];
  memcpy(msg, all + 1, 255);
  msg[255] = '\0';
  trail_info(NULL, msg, TRAIL_STRN("bytes", all, 256),
             TRAIL_STR("k\n\"ey", "v\r\n{\"level\":\"fatal\"}"));
  assert_int_equal(cap_count(), 1);
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_str_field(j, "level", "info");
  assert_str_field(j, "k\n\"ey", "v\r\n{\"level\":\"fatal\"}");
  /* 0x80..0xFF alone are each ill-formed: one U+FFFD each. */
  const char *m = jstr(j, "message");
  assert_memory_equal(m, all + 1, 127);
  for (int i = 0; i < 128; i++)
    assert_memory_equal(m + 127 + 3 * i, "\xEF\xBF\xBD", 3);
  json_decref(j);
}

/* printf variants: checked formats, a message that is data otherwise. */
static void test_printf_variants(void **state) {
  (void)state;
  trail_errorf(NULL, "cannot open %s: %d", "/etc/x", 13);
  trail_info(NULL, "100% %s %n literal");
  trail_logf(NULL, TRAIL_LEVEL_WARN, "n=%d", 5);
  json_t *j = cap_json(0);
  assert_str_field(j, "message", "cannot open /etc/x: 13");
  assert_str_field(j, "level", "error");
  json_decref(j);
  j = cap_json(1);
  assert_str_field(j, "message", "100% %s %n literal");
  json_decref(j);
  j = cap_json(2);
  assert_str_field(j, "message", "n=5");
  assert_str_field(j, "level", "warn");
  json_decref(j);
}

/* A formatted message longer than a line is cut and marked. */
static void test_printf_too_long(void **state) {
  (void)state;
  size_t n = 40000;
  char *big = malloc(n + 1);
  for (size_t i = 0; i < n; i += 2)
    memcpy(big + i, "\xC3\xA9", 2); /* e acute: cut must not split it */
  big[n] = '\0';
  trail_infof(NULL, "%s", big);
  free(big);
  assert_int_equal(cap_count(), 1);
  assert_true(cap.lines[0].len <= trail_max_line());
  json_t *j = cap_json(0);
  assert_true(json_is_true(json_object_get(j, "truncated")));
  const char *m = jstr(j, "message");
  assert_null(strstr(m, "\xEF\xBF\xBD"));
  json_decref(j);
}

/*
 * The maximum line: values are cut at a character boundary, the request's
 * ids survive, later fields are left out, "truncated":true is last, and
 * the counter counts it.
 */
static void test_truncation(void **state) {
  (void)state;
  trail_counters before, after;
  trail_counters_get(&before);
  assert_int_equal(trail_max_line_set(4096), 0);
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx_set_user_id(&ctx, "u");
  trail_ctx *prev = trail_ctx_enter(&ctx);
  size_t n = 10 * 1024 * 1024;
  char *huge = malloc(n + 1);
  for (size_t i = 0; i < n; i++)
    huge[i] = "ab\"\xE2\x82\xAC\n"[i % 7]; /* quotes, euro sign, newline */
  huge[n] = '\0';
  trail_info(NULL, huge, TRAIL_STR("v", huge), TRAIL_INT("after", 1));
  trail_info(NULL, "small", TRAIL_STR("v", huge), TRAIL_INT("after", 1));
  trail_ctx_leave(prev);
  free(huge);
  assert_int_equal(cap_count(), 2);
  for (size_t i = 0; i < 2; i++) {
    assert_true(cap.lines[i].len <= 4096);
    json_t *j = cap_json(i);
    assert_key_order(j);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_str_field(j, "request_id", trail_ctx_request_id(&ctx));
    assert_str_field(j, "user_id", "u");
    assert_str_field(j, "service", "orders-api");
    assert_null(json_object_get(j, "after"));
    /* No U+FFFD: the cut never split the euro sign. */
    assert_null(strstr(cap_text(i), "\xEF\xBF\xBD"));
    json_decref(j);
  }
  json_t *j = cap_json(1);
  assert_str_field(j, "message", "small");
  assert_true(json_string_length(json_object_get(j, "v")) > 1000);
  json_decref(j);
  trail_counters_get(&after);
  assert_int_equal(after.truncated - before.truncated, 2);
  trail_max_line_set(16384);
}

/* Lines of exactly every length around the maximum stay within it. */
static void test_truncation_boundary(void **state) {
  (void)state;
  assert_int_equal(trail_max_line_set(2048), 0);
  char v[2100];
  memset(v, 'x', sizeof v);
  for (size_t len = 1800; len < 2100; len++) {
    cap_clear();
    trail_info(NULL, "m", TRAIL_STRN("v", v, len));
    assert_int_equal(cap_count(), 1);
    assert_true(cap.lines[0].len <= 2048);
    json_t *j = cap_json(0);
    size_t got = json_string_length(json_object_get(j, "v"));
    json_t *t = json_object_get(j, "truncated");
    if (got < len)
      assert_true(json_is_true(t));
    else
      assert_null(t);
    json_decref(j);
  }
  trail_max_line_set(16384);
}

/* caller: base name and the line of the call, only when switched on. */
static void test_caller(void **state) {
  (void)state;
  trail_info(NULL, "off");
  trail_caller_set(true);
  int line = __LINE__ + 1;
  trail_info(NULL, "on");
  trail_log(NULL, TRAIL_LEVEL_INFO, "function, no call site", NULL, 0);
  trail_caller_set(false);
  json_t *j = cap_json(0);
  assert_null(json_object_get(j, "caller"));
  json_decref(j);
  j = cap_json(1);
  char want[64];
  snprintf(want, sizeof want, "test_log.c:%d", line);
  assert_str_field(j, "caller", want);
  assert_key_order(j);
  json_decref(j);
  j = cap_json(2);
  assert_null(json_object_get(j, "caller"));
  json_decref(j);
}

/* Counters count lines per level and their bytes. */
static void test_counters(void **state) {
  (void)state;
  trail_counters_reset();
  trail_info(NULL, "a");
  trail_info(NULL, "b");
  trail_error(NULL, "c");
  trail_debug(NULL, "not written");
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.events[TRAIL_LEVEL_INFO], 2);
  assert_int_equal(c.events[TRAIL_LEVEL_ERROR], 1);
  assert_int_equal(c.events[TRAIL_LEVEL_DEBUG], 0);
  size_t bytes = 0;
  for (size_t i = 0; i < cap_count(); i++)
    bytes += cap.lines[i].len;
  assert_int_equal(c.bytes, bytes);
}

/* Out-of-range levels and NULL messages still give a valid line. */
static void test_bad_arguments(void **state) {
  (void)state;
  trail_log(NULL, (trail_level)42, NULL, NULL, 3);
  trail_log(NULL, (trail_level)-3, "neg", NULL, 0);
  assert_int_equal(cap_count(), 1); /* -3 -> trace, below info */
  json_t *j = cap_json(0);
  assert_str_field(j, "level", "fatal");
  assert_str_field(j, "message", "");
  json_decref(j);
}

/* An argument with a side effect: it must not run for a disabled level. */
static int count_call(int *n) { return ++*n; }

/* TRAIL_ERRNO: the system's message and the number, errno left as it was. */
static void test_errno_fields(void **state) {
  (void)state;
  errno = ENOENT;
  trail_warn(NULL, "open failed", TRAIL_STR("path", "/x"), TRAIL_ERRNO(errno));
  assert_int_equal(errno, ENOENT);
  int err = 9999; /* no message for it */
  trail_warn(NULL, "odd", TRAIL_ERRNO(err));
  int evaluated = 0;
  trail_debug(NULL, "off",
              TRAIL_ERRNO(count_call(&evaluated))); /* below info */
  assert_int_equal(evaluated, 0);
  assert_int_equal(cap_count(), 2);
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_str_field(j, "error", "No such file or directory");
  assert_int_equal(json_integer_value(json_object_get(j, "errno")), ENOENT);
  assert_int_equal(json_object_size(j), 8); /* 5 reserved, path, error, errno */
  json_decref(j);
  j = cap_json(1);
  assert_str_field(j, "error", "unknown error");
  assert_int_equal(json_integer_value(json_object_get(j, "errno")), 9999);
  json_decref(j);
}

/* trail_now_ns() is monotonic; TRAIL_DURATION_MS is the ms since a start. */
static void test_duration_fields(void **state) {
  (void)state;
  int64_t start = trail_now_ns();
  struct timespec nap = {0, 2000000}; /* 2 ms of wall time to measure */
  nanosleep(&nap, NULL);
  int64_t mid = trail_now_ns();
  trail_info(NULL, "done", TRAIL_DURATION_MS("took_ms", start));
  int64_t end = trail_now_ns();
  assert_true(start > 0 && mid >= start + 2000000 && end >= mid);
  json_t *j = cap_json(0);
  json_t *v = json_object_get(j, "took_ms");
  assert_true(json_is_real(v));
  double ms = json_real_value(v);
  assert_true(ms >= (double)(mid - start) / 1e6);
  assert_true(ms <= (double)(end - start) / 1e6);
  json_decref(j);
}

/* TRAIL_MSGF and TRAIL_STRF: formatted text with fields, only when enabled. */
static void test_msgf(void **state) {
  (void)state;
  int evaluated = 0;
  trail_warn(NULL, TRAIL_MSGF("order %d failed", 42),
             TRAIL_STR("reason", "stock"),
             TRAIL_STRF("sku", "%s-%04d", "eu", 7));
  trail_debug(NULL, TRAIL_MSGF("%d", count_call(&evaluated)),
              TRAIL_STRF("k", "%d", count_call(&evaluated))); /* below info */
  trail_info(NULL, TRAIL_MSGF("no arguments"));
  assert_int_equal(evaluated, 0);
  assert_int_equal(cap_count(), 2);
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_str_field(j, "message", "order 42 failed");
  assert_str_field(j, "reason", "stock");
  assert_str_field(j, "sku", "eu-0007");
  json_decref(j);
  j = cap_json(1);
  assert_str_field(j, "message", "no arguments");
  json_decref(j);
}

/* A text longer than TRAIL_MSGF_MAX - 1 bytes ends at a whole character. */
static void test_msgf_cut(void **state) {
  (void)state;
  static const char *const chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac",
                                      "\xf0\x9f\x98\x80"};
  for (size_t c = 0; c < 4; c++) {
    for (size_t pad = 0; pad < 4; pad++) {
      char buf[TRAIL_MSGF_MAX];
      static const char xs[] = "xxx";
      const char *out =
          trail__msgf(buf, sizeof buf, "%.*s%s", (int)pad, "xxx", "");
      assert_string_equal(out, xs + (3 - pad));
      char big[3 * TRAIL_MSGF_MAX];
      size_t n = strlen(chars[c]), at = pad;
      memset(big, 'x', pad);
      while (at + n < sizeof big - 1) {
        memcpy(big + at, chars[c], n);
        at += n;
      }
      big[at] = '\0';
      out = trail__msgf(buf, sizeof buf, "%s", big);
      size_t len = strlen(out);
      assert_true(len <= TRAIL_MSGF_MAX - 1 && len > TRAIL_MSGF_MAX - 1 - n);
      assert_int_equal((len - pad) % n, 0); /* whole characters only */
      assert_memory_equal(out, big, len);
    }
  }
  char tiny[1];
  assert_string_equal(trail__msgf(tiny, 1, "%s", "abc"), "");
}

/* Each reserved key, and only those, is renamed. */
static void test_reserved_keys(void **state) {
  (void)state;
  static const char *const reserved[] = {
      "timestamp", "level",    "logger",  "message", "service",  "request_id",
      "user_id",   "trace_id", "span_id", "caller",  "truncated"};
  static const char *const near[] = {
      "timestamps", "levels", "Level",  "loggers",  "span_ix", "user_ix",
      "servic",     "trace",  "callee", "truncate", "request"};
  for (size_t i = 0; i < 11; i++) {
    cap_clear();
    trail_info(NULL, "m", TRAIL_STR(reserved[i], "x"), TRAIL_STR(near[i], "y"));
    json_t *j = cap_json(0);
    char renamed[32];
    snprintf(renamed, sizeof renamed, "_%s", reserved[i]);
    assert_str_field(j, renamed, "x");
    assert_str_field(j, near[i], "y");
    json_decref(j);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_contract_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_context_no_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_levels_written, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disabled_level_skips_arguments,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_rename_rule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reserved_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_field_kinds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostile_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_printf_variants, setup, teardown),
      cmocka_unit_test_setup_teardown(test_printf_too_long, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncation_boundary, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_caller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errno_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_msgf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_msgf_cut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duration_fields, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
