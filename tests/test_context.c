/*
 * The request context (lib/context.c): ids, validation, traceparent,
 * bound fields, and entering and leaving on one thread.
 */
#include "support.h"

static int setup(void **state) {
  (void)state;
  trail_init("ctx-test");
  cap_start(TRAIL_LEVEL_TRACE);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

static int is_hex(const char *s, size_t n) {
  if (strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* init gives a UUID v4 request id and a new trace and span. */
static void test_init_makes_ids(void **state) {
  (void)state;
  trail_ctx a, b;
  trail_ctx_init(&a);
  trail_ctx_init(&b);
  const char *rid = trail_ctx_request_id(&a);
  assert_int_equal(strlen(rid), 36);
  assert_int_equal(rid[14], '4');
  assert_true(strchr("89ab", rid[19]) != NULL);
  assert_true(is_hex(trail_ctx_trace_id(&a), 32));
  assert_true(is_hex(trail_ctx_span_id(&a), 16));
  assert_string_equal(trail_ctx_user_id(&a), "");
  assert_string_equal(trail_ctx_parent_span_id(&a), "");
  assert_int_equal(trail_ctx_trace_flags(&a), 1);
  assert_string_not_equal(rid, trail_ctx_request_id(&b));
  assert_string_not_equal(trail_ctx_trace_id(&a), trail_ctx_trace_id(&b));
}

/* Setters reject bad ids and leave the context unchanged. */
static void test_setters_validate(void **state) {
  (void)state;
  trail_ctx c;
  trail_ctx_init(&c);
  char before[sizeof c.request_id_];
  memcpy(before, c.request_id_, sizeof before);
  assert_int_equal(trail_ctx_set_request_id(&c, "bad id"), TRAIL_EINVAL_ID);
  assert_int_equal(trail_ctx_set_request_id(&c, ""), TRAIL_EINVAL_ID);
  assert_int_equal(trail_ctx_set_request_id(&c, "a\r\nb"), TRAIL_EINVAL_ID);
  char long_id[200];
  memset(long_id, 'a', sizeof long_id);
  long_id[129] = '\0';
  assert_int_equal(trail_ctx_set_request_id(&c, long_id), TRAIL_EINVAL_ID);
  long_id[128] = '\0';
  assert_string_equal(trail_ctx_request_id(&c), before);
  assert_int_equal(trail_ctx_set_request_id(&c, long_id), 0);
  assert_string_equal(trail_ctx_request_id(&c), long_id);

  assert_int_equal(
      trail_ctx_set_trace_id(&c, "4BF92F3577B34DA6A3CE929D0E0E4736"),
      TRAIL_EINVAL_ID);
  assert_int_equal(
      trail_ctx_set_trace_id(&c, "00000000000000000000000000000000"),
      TRAIL_EINVAL_ID);
  assert_int_equal(trail_ctx_set_trace_id(&c, "4bf92f35"), TRAIL_EINVAL_ID);
  assert_int_equal(trail_ctx_set_span_id(&c, "0000000000000000"),
                   TRAIL_EINVAL_ID);
  assert_int_equal(trail_ctx_set_span_id(&c, "00f067aa0ba902b7x"),
                   TRAIL_EINVAL_ID);
  assert_int_equal(trail_ctx_set_span_id(&c, "00f067aa0ba902b7"), 0);
  assert_string_equal(trail_ctx_span_id(&c), "00f067aa0ba902b7");

  char user[200];
  memset(user, 'u', sizeof user);
  user[129] = '\0';
  assert_int_equal(trail_ctx_set_user_id(&c, user), TRAIL_ETOOLONG);
  assert_string_equal(trail_ctx_user_id(&c), "");
  assert_int_equal(trail_ctx_set_request_id(NULL, "x"), -EINVAL);
}

/* user_id holds any bytes: escaped in the line, the worst case fits. */
static void test_user_id_escaped(void **state) {
  (void)state;
  trail_ctx c;
  trail_ctx_init(&c);
  char user[129];
  memset(user, '\x01', 128); /* every byte becomes \u0001: 6 bytes each */
  user[128] = '\0';
  assert_int_equal(trail_ctx_set_user_id(&c, user), 0);
  trail_ctx *prev = trail_ctx_enter(&c);
  trail_info(NULL, "m");
  assert_int_equal(trail_ctx_set_user_id(&c, "\"quoted\"\n\xff"), 0);
  trail_info(NULL, "m");
  trail_ctx_leave(prev);
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_str_field(j, "user_id", user);
  assert_str_field(j, "trace_id", trail_ctx_trace_id(&c));
  json_decref(j);
  j = cap_json(1);
  assert_str_field(j, "user_id", "\"quoted\"\n\xEF\xBF\xBD");
  json_decref(j);
}

/* Clearing an id removes its key from the lines. */
static void test_clear_ids(void **state) {
  (void)state;
  trail_ctx c;
  trail_ctx_init(&c);
  trail_ctx_set_user_id(&c, "u1");
  trail_ctx_set_request_id(&c, NULL);
  trail_ctx_set_span_id(&c, NULL);
  trail_ctx *prev = trail_ctx_enter(&c);
  trail_info(NULL, "m");
  trail_ctx_leave(prev);
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_null(json_object_get(j, "request_id"));
  assert_null(json_object_get(j, "span_id"));
  assert_str_field(j, "user_id", "u1");
  assert_str_field(j, "trace_id", trail_ctx_trace_id(&c));
  json_decref(j);
}

/* A valid traceparent continues the trace under a new span. */
static void test_traceparent_continues(void **state) {
  (void)state;
  trail_ctx c;
  trail_ctx_init(&c);
  const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  assert_int_equal(trail_ctx_set_traceparent(&c, tp, strlen(tp)), 0);
  assert_string_equal(trail_ctx_trace_id(&c),
                      "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_string_equal(trail_ctx_parent_span_id(&c), "00f067aa0ba902b7");
  assert_string_not_equal(trail_ctx_span_id(&c), "00f067aa0ba902b7");
  assert_int_equal(trail_ctx_trace_flags(&c), 1);

  char out[56];
  assert_int_equal(trail_ctx_traceparent(&c, out, sizeof out), 55);
  char want[56];
  snprintf(want, sizeof want, "00-4bf92f3577b34da6a3ce929d0e0e4736-%s-01",
           trail_ctx_span_id(&c));
  assert_string_equal(out, want);
  assert_int_equal(trail_ctx_traceparent(&c, out, 55), -ENOSPC);

  /* NUL-terminated form */
  assert_int_equal(trail_ctx_set_traceparent(&c, tp, TRAIL_NTS), 0);

  /* Invalid: the context keeps its trace. */
  char trace[33];
  strcpy(trace, trail_ctx_trace_id(&c));
  const char *bad[] = {
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
      "garbage",
      ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(trail_ctx_set_traceparent(&c, bad[i], strlen(bad[i])),
                     TRAIL_EINVAL_TRACEPARENT);
    assert_string_equal(trail_ctx_trace_id(&c), trace);
  }
  trail_ctx empty;
  trail_ctx_clear(&empty);
  assert_int_equal(trail_ctx_traceparent(&empty, out, sizeof out),
                   TRAIL_EINVAL_ID);
}

/* Bound fields: in every line while current, all-or-nothing when full. */
static void test_bound_fields(void **state) {
  (void)state;
  trail_ctx c;
  trail_ctx_init(&c);
  assert_int_equal(
      trail_ctx_bind(&c, TRAIL_STR("tenant", "acme"), TRAIL_INT("shard", 3)),
      0);
  assert_int_equal(trail_ctx_bind(&c, TRAIL_STR("tenant", "again")), 0);
  trail_ctx *prev = trail_ctx_enter(&c);
  trail_info(NULL, "a", TRAIL_INT("own", 1));
  trail_ctx_leave(prev);
  trail_info(NULL, "b");
  json_t *j = cap_json(0);
  assert_key_order(j);
  assert_str_field(j, "tenant", "acme");
  assert_str_field(j, "_tenant", "again");
  assert_int_equal(json_integer_value(json_object_get(j, "shard")), 3);
  assert_int_equal(json_integer_value(json_object_get(j, "own")), 1);
  json_decref(j);
  j = cap_json(1);
  assert_null(json_object_get(j, "tenant"));
  json_decref(j);

  /* Full: the call fails and the context keeps what it had. */
  char big[2000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(trail_ctx_bind(&c, TRAIL_STR("big", big)), TRAIL_ENOSPACE);
  trail_ctx_init(&c);
  int rc = 0;
  size_t added = 0;
  while ((rc = trail_ctx_bind(&c, TRAIL_INT("n", 1))) == 0)
    added++;
  assert_int_equal(rc, TRAIL_ENOSPACE);
  assert_int_equal(added, TRAIL_CTX_FIELDS_MAX);
  cap_clear();
  prev = trail_ctx_enter(&c);
  trail_info(NULL, "many");
  trail_ctx_leave(prev);
  j = cap_json(0);
  assert_int_equal(json_object_size(j), 8 + TRAIL_CTX_FIELDS_MAX);
  json_decref(j);
}

/* enter returns the previous context; leave restores it; nesting works. */
static void test_nesting(void **state) {
  (void)state;
  assert_null(trail_ctx_current());
  trail_ctx outer, inner;
  trail_ctx_init(&outer);
  trail_ctx_init(&inner);
  trail_ctx *p0 = trail_ctx_enter(&outer);
  assert_null(p0);
  trail_info(NULL, "outer");
  trail_ctx *p1 = trail_ctx_enter(&inner);
  assert_ptr_equal(p1, &outer);
  assert_ptr_equal(trail_ctx_current(), &inner);
  trail_info(NULL, "inner");
  trail_ctx_leave(p1);
  trail_info(NULL, "outer again");
  trail_ctx_leave(p0);
  trail_info(NULL, "none");
  assert_null(trail_ctx_current());

  const trail_ctx *want[] = {&outer, &inner, &outer, NULL};
  for (size_t i = 0; i < 4; i++) {
    json_t *j = cap_json(i);
    json_t *rid = json_object_get(j, "request_id");
    if (want[i] == NULL)
      assert_null(rid);
    else
      assert_string_equal(json_string_value(rid),
                          trail_ctx_request_id(want[i]));
    json_decref(j);
  }
}

/*
 * An event loop serving two requests on one thread: each callback enters
 * its request and leaves it. No line carries the other request's ids, and
 * nothing logged between callbacks carries any.
 */
static void test_interleaved_requests(void **state) {
  (void)state;
  trail_ctx req[2];
  trail_ctx_init(&req[0]);
  trail_ctx_init(&req[1]);
  trail_ctx_set_user_id(&req[0], "alice");
  trail_ctx_set_user_id(&req[1], "bob");
  for (int step = 0; step < 10; step++) {
    int r = step % 2;
    trail_ctx *prev = trail_ctx_enter(&req[r]);
    trail_info(NULL, "callback", TRAIL_INT("req", r));
    trail_ctx_leave(prev);
    trail_info(NULL, "between");
  }
  assert_int_equal(cap_count(), 20);
  for (size_t i = 0; i < 20; i++) {
    json_t *j = cap_json(i);
    if (i % 2 == 0) {
      int r = (int)json_integer_value(json_object_get(j, "req"));
      assert_str_field(j, "request_id", trail_ctx_request_id(&req[r]));
      assert_str_field(j, "user_id", r ? "bob" : "alice");
    } else {
      assert_null(json_object_get(j, "request_id"));
      assert_null(json_object_get(j, "user_id"));
    }
    json_decref(j);
  }
}

/* A context is a plain value: a copy logs the same ids. */
static void test_copy(void **state) {
  (void)state;
  trail_ctx a;
  trail_ctx_init(&a);
  trail_ctx_bind(&a, TRAIL_STR("k", "v"));
  trail_ctx b = a;
  trail_ctx *prev = trail_ctx_enter(&b);
  trail_info(NULL, "copy");
  trail_ctx_leave(prev);
  json_t *j = cap_json(0);
  assert_str_field(j, "request_id", trail_ctx_request_id(&a));
  assert_str_field(j, "k", "v");
  json_decref(j);
}

/*
 * Deferred work logs with an explicit context: its line carries that
 * context's ids whatever is current, and the current one stays current.
 */
static void test_explicit_context(void **state) {
  (void)state;
  trail_ctx req, other;
  trail_ctx_init(&req);
  trail_ctx_init(&other);
  trail_ctx *prev = trail_ctx_enter(&other);
  trail_ctx_info(&req, trail_logger_get("timer"), "deferred",
                 TRAIL_INT("n", 1));
  trail_ctx_debug(&req, NULL, "not enabled, not written");
  trail_ctx_log(&req, NULL, TRAIL_LEVEL_WARN, "by function", NULL, 0);
  assert_ptr_equal(trail_ctx_current(), &other);
  trail_info(NULL, "current");
  trail_ctx_leave(prev);
  assert_int_equal(cap_count(), 3);
  json_t *j = cap_json(0);
  assert_str_field(j, "request_id", trail_ctx_request_id(&req));
  assert_str_field(j, "logger", "timer");
  json_decref(j);
  j = cap_json(1);
  assert_str_field(j, "request_id", trail_ctx_request_id(&req));
  assert_str_field(j, "level", "warn");
  json_decref(j);
  j = cap_json(2);
  assert_str_field(j, "request_id", trail_ctx_request_id(&other));
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_init_makes_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_setters_validate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_user_id_escaped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_clear_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_traceparent_continues, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bound_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nesting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interleaved_requests, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_explicit_context, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
