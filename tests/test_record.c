/*
 * Deferred events (lib/record.c): in async mode an event is copied into
 * the queue and encoded later by the writer thread. Its line must be the
 * very line sync mode writes for the same call, even when everything the
 * call pointed to (strings, keys, the context, a child logger) is changed
 * or freed as soon as the call returns.
 */
#define _GNU_SOURCE
#include "support.h"

#include "gate.h"

#include <time.h>

#include <jansson.h>
#include <math.h>

#include "internal.h"

static int setup(void **state) {
  (void)state;
  trail_init("record-test");
  trail_counters_reset();
  gate_reset();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cap_stop();
  return 0;
}

/* A heap copy of s, which the test scribbles over and frees after a call. */
static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  assert_non_null(p);
  memcpy(p, s, n);
  return p;
}

static void scrub(char *p) {
  memset(p, 'X', strlen(p));
  free(p);
}

/*
 * Every kind of event the logging calls can make, with every borrowed
 * thing wiped right after each call: fields of each kind, NULL and empty
 * keys and strings, a reserved and a repeated key, a redacted key, bytes
 * that need escaping and repair, a json_t value (encoded by the caller), a
 * child logger with bound fields freed after its call, a context with ids
 * and bound fields cleared after its call, a printf-style message, the
 * caller's file and line.
 */
static void log_all_kinds(void) {
  trail_logger *orders = trail_logger_get("orders");
  trail_ctx ctx;
  trail_ctx_clear(&ctx);
  assert_int_equal(
      trail_ctx_set_request_id(&ctx, "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"),
      0);
  assert_int_equal(
      trail_ctx_set_trace_id(&ctx, "4bf92f3577b34da6a3ce929d0e0e4736"), 0);
  assert_int_equal(trail_ctx_set_span_id(&ctx, "00f067aa0ba902b7"), 0);
  assert_int_equal(trail_ctx_set_user_id(&ctx, "user-\"4711\"\n"), 0);
  assert_int_equal(
      trail_ctx_add_fields(
          &ctx,
          (trail_field[]){TRAIL_STR("tenant", "acme"), TRAIL_INT("shard", 7)},
          2),
      0);
  trail_ctx *prev = trail_ctx_enter(&ctx);

  char *msg = dup_str("request completed");
  char *key = dup_str("path");
  char *val = dup_str("/api/orders/42?q=\xff\xc0 bad utf-8");
  trail_info(orders, msg, TRAIL_STR("method", "GET"), TRAIL_STR(key, val),
             TRAIL_INT("status", 200), TRAIL_DOUBLE("duration_ms", 12.51),
             TRAIL_UINT("bytes", (UINT64_C(1) << 62) + 1),
             TRAIL_BOOL("cached", 1), TRAIL_DOUBLE("ratio", 1.0 / 3.0),
             TRAIL_DOUBLE("nan", NAN));
  scrub(msg);
  scrub(key);
  scrub(val);

  char *k2 = dup_str("level");
  trail_warn(orders, "odd keys", TRAIL_STR(k2, "renamed"),
             TRAIL_STR(NULL, "no key"), TRAIL_STR("", "empty key"),
             TRAIL_STR("dup", "first"), TRAIL_STR("dup", "second"),
             TRAIL_STR("note", NULL), TRAIL_STRN("nul", "a\0b", 3),
             TRAIL_STR("password", "hunter2"));
  scrub(k2);

  json_t *obj = json_pack("{s:i,s:s,s:[i,i]}", "a", 1, "token", "t", "b", 2, 3);
  trail_error(orders, "with json", TRAIL_JSON("doc", obj),
              TRAIL_INT("after", 1));
  json_decref(obj);

  trail_logger *child = trail_logger_child(orders, TRAIL_STR("component", "db"),
                                           TRAIL_INT("pool", 4));
  assert_non_null(child);
  trail_info(child, "from a child", TRAIL_STR("component", "clash"));
  trail_logger_free(child);

  trail_ctx_leave(prev);
  trail_ctx_clear(&ctx);

  trail_infof(orders, "formatted %d %s", 42, "text");
  trail_caller_set(true);
  trail_info(orders, "with caller");
  trail_caller_set(false);
  trail_info(NULL, "root, no context");
}

static int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 2026-11-27T06:22:38.123456Z as microseconds since the epoch. */
static int64_t rfc3339_us(const char *s) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  int us = 0;
  assert_int_equal(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year,
                          &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                          &tm.tm_sec, &us),
                   7);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm) * 1000000 + us;
}

/* The line without its timestamp, which differs between the two runs. */
static char *without_timestamp(size_t i) {
  json_t *j = cap_json(i);
  assert_key_order(j);
  assert_non_null(json_object_get(j, "timestamp"));
  json_object_del(j, "timestamp");
  char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
  json_decref(j);
  return s;
}

static void test_deferred_lines_equal_sync_lines(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_TRACE);
  log_all_kinds();
  size_t n = cap_count();
  assert_int_equal(n, 7);
  char *want[16];
  for (size_t i = 0; i < n; i++)
    want[i] = without_timestamp(i);
  cap_clear();

  /*
   * Async: the first line stalls the writer in the gated sink, so every
   * event after it waits in the queue as a record while the test wipes
   * what the calls pointed to.
   */
  trail_sinks_clear();
  assert_true(trail_sink_add_callback(gated_sink, NULL, TRAIL_LEVEL_TRACE) >=
              0);
  int64_t started = wall_us();
  assert_int_equal(trail_async_start(NULL), 0);
  trail_info(NULL, "plug");
  gate_wait_entered();
  log_all_kinds();
  gate_open();
  assert_int_equal(trail_flush(), 0);
  assert_int_equal(trail_async_stop(), 0);

  assert_int_equal(cap_count(), n + 1);
  /*
   * Queued events may be stamped with the CPU's time stamp counter and
   * converted by the writer: their times must still be the wall-clock
   * times of the calls (between the start and now, give or take the
   * millisecond the conversion is allowed).
   */
  for (size_t i = 0; i <= n; i++) {
    json_t *j = cap_json(i);
    int64_t t = rfc3339_us(jstr(j, "timestamp"));
    assert_true(t >= started - 1000);
    assert_true(t <= wall_us() + 1000);
    json_decref(j);
  }
  char *plug = without_timestamp(0);
  assert_non_null(strstr(plug, "\"message\":\"plug\""));
  free(plug);
  for (size_t i = 0; i < n; i++) {
    char *got = without_timestamp(i + 1);
    assert_string_equal(got, want[i]);
    free(got);
    free(want[i]);
  }
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.dropped, 0);
  assert_int_equal(c.events[TRAIL_LEVEL_INFO], 2 * 5 + 1);
}

/*
 * The counters of deferred events: counted by the logging thread when
 * queued, their bytes by the writer when encoded; after a flush both are
 * those of the lines written.
 */
static void test_deferred_counters(void **state) {
  (void)state;
  cap_start(TRAIL_LEVEL_TRACE);
  assert_int_equal(trail_async_start(NULL), 0);
  for (int i = 0; i < 100; i++)
    trail_info(NULL, "counted", TRAIL_INT("i", i));
  assert_int_equal(trail_flush(), 0);
  size_t bytes = 0;
  assert_int_equal(cap_count(), 100);
  for (size_t i = 0; i < 100; i++)
    bytes += cap.lines[i].len;
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.events[TRAIL_LEVEL_INFO], 100);
  assert_int_equal(c.bytes, bytes);
  assert_int_equal(trail_async_stop(), 0);
}

/* A record holds what it says: read back, it is the event written. */
static void test_record_round_trip(void **state) {
  (void)state;
  trail_field f[] = {TRAIL_STR("s", "value"), TRAIL_STRN("n", "ab", 1),
                     TRAIL_STR("null", NULL), TRAIL_INT("i", -5),
                     TRAIL_UINT("u", 5),      TRAIL_DOUBLE("d", 0.5),
                     TRAIL_BOOL("b", 1)};
  trail__key lk[] = {{2, 1}};
  trail__event ev = {.level = TRAIL_LEVEL_ERROR,
                     .cut = 1,
                     .sec = 1800000000,
                     .usec = 123456,
                     .name_seg = ",\"logger\":\"x\"",
                     .name_seg_len = 13,
                     .ids = ",\"user_id\":\"u\"",
                     .ids_len = 14,
                     .lfields = ",\"k\":1",
                     .lfields_len = 6,
                     .lkeys = lk,
                     .lnkeys = 1,
                     .msg = "hello",
                     .msg_len = 5,
                     .fields = f,
                     .nfields = 7};
  uint32_t slen[TRAIL__RECORD_KEYS_MAX];
  size_t size = trail__record_size(&ev, slen);
  assert_true(size > 0 && size % 8 == 0);
  char *rec = malloc(size);
  assert_non_null(rec);
  trail__record_write(rec, &ev, slen);
  trail__event back;
  trail_field bf[TRAIL__RECORD_KEYS_MAX];
  assert_int_equal(trail__record_read(rec, size, &back, bf), 0);
  assert_int_equal(back.level, TRAIL_LEVEL_ERROR);
  assert_int_equal(back.cut, 1);
  assert_int_equal(back.sec, 1800000000);
  assert_int_equal(back.usec, 123456);
  assert_int_equal(back.tsc, 0);
  assert_memory_equal(back.name_seg, ev.name_seg, 13);
  assert_memory_equal(back.ids, ev.ids, 14);
  assert_memory_equal(back.lfields, ev.lfields, 6);
  assert_int_equal(back.lnkeys, 1);
  assert_int_equal(back.lkeys[0].off, 2);
  assert_memory_equal(back.msg, "hello", 5);
  assert_int_equal(back.nfields, 7);
  assert_int_equal(bf[0].len, 5);
  assert_memory_equal(bf[0].v.s, "value", 5);
  assert_int_equal(bf[1].len, 1);
  assert_null(bf[2].v.s);
  assert_int_equal(bf[3].v.i, -5);
  assert_int_equal(bf[4].v.u, 5);
  assert_true(bf[5].v.d == 0.5);
  assert_int_equal(bf[6].v.b, 1);
  for (size_t i = 0; i < 7; i++) {
    assert_int_equal(bf[i].kind, f[i].kind);
    assert_int_equal(bf[i].klen, strlen(f[i].key));
    assert_memory_equal(bf[i].key, f[i].key, bf[i].klen);
  }
  /* A record cut short, or whose bound keys lie outside its fields, is
   * refused (the crash handler may read one the writer is zeroing). */
  assert_int_equal(trail__record_read(rec, size - 8, &back, bf), -1);
  assert_int_equal(trail__record_read(rec, 4, &back, bf), -1);
  free(rec);
  trail__key bad[] = {{0, 1}};
  ev.lkeys = bad;
  size = trail__record_size(&ev, slen);
  rec = malloc(size);
  assert_non_null(rec);
  trail__record_write(rec, &ev, slen);
  assert_int_equal(trail__record_read(rec, size, &back, bf), -1);
  free(rec);
  ev.lkeys = lk;

  /* What cannot be deferred: a json_t value, too many fields. */
  trail_field j[] = {TRAIL_JSON("j", NULL)};
  ev.fields = j;
  ev.nfields = 1;
  assert_int_equal(trail__record_size(&ev, slen), 0);
  trail_field many[TRAIL__RECORD_KEYS_MAX + 1];
  for (size_t i = 0; i < TRAIL__RECORD_KEYS_MAX + 1; i++)
    many[i] = TRAIL_INT("k", (int64_t)i);
  ev.fields = many;
  ev.nfields = TRAIL__RECORD_KEYS_MAX + 1;
  assert_int_equal(trail__record_size(&ev, slen), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_deferred_lines_equal_sync_lines,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_deferred_counters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_record_round_trip, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
