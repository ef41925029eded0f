/*
 * The hot path allocates nothing: after a warm-up, 10,000 events of every
 * kind (fields, bound fields, a context, the printf variant, a json_t) in
 * sync and in async mode, also with bound fields encoded under an earlier
 * redaction list, make no call to malloc, calloc or realloc, in any
 * thread. The allocator is interposed by this program, so the test is
 * skipped (77) under sanitizers, which interpose it themselves.
 */
#define _GNU_SOURCE
#include "support.h"

#include <math.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TRAIL_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TRAIL_TEST_SANITIZED 1
#endif
#endif

#ifndef TRAIL_TEST_SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static int counting;
static unsigned long allocations;

void *malloc(size_t n) {
  if (__atomic_load_n(&counting, __ATOMIC_RELAXED))
    __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
  if (__atomic_load_n(&counting, __ATOMIC_RELAXED))
    __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
  return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
  if (__atomic_load_n(&counting, __ATOMIC_RELAXED))
    __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
  return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }

static void events(trail_logger *lg, json_t *obj, int n) {
  for (int i = 0; i < n; i++) {
    trail_info(lg, "request completed", TRAIL_STR("method", "GET"),
               TRAIL_STR("path", "/api/orders/42"), TRAIL_INT("status", 200),
               TRAIL_DOUBLE("duration_ms", 12.5 + (i % 100) / 100.0),
               TRAIL_UINT("bytes", 512u), TRAIL_BOOL("cached", i & 1),
               TRAIL_DOUBLE("nan", NAN), TRAIL_JSON("body", obj),
               TRAIL_STR("level", "renamed"),
               TRAIL_STRN("bad", "\xff\xfe\n", 3));
    trail_warnf(lg, "slow request: %d ms on %s", i, "/api/orders/42");
  }
}

/*
 * relist: the redaction list changes after the fields are bound, so that
 * every line copies them key by key against the new list.
 */
static void run(int async, int relist) {
  assert_int_equal(trail_output_set("/dev/null", NULL), 0);
  if (async)
    assert_int_equal(trail_async_start(NULL), 0);
  trail_logger *lg =
      trail_logger_child(trail_logger_get("orders"), TRAIL_STR("pool", "main"));
  json_t *obj = json_pack("{s:i,s:[s,f]}", "a", 1, "b", "x", 2.5);
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx_set_user_id(&ctx, "user-4711");
  trail_ctx_bind(&ctx, TRAIL_STR("tenant", "acme"));
  if (relist)
    assert_int_equal(trail_redact_set("pool,tenant,path", NULL), 0);
  trail_ctx *prev = trail_ctx_enter(&ctx);
  events(lg, obj, 200); /* warm-up: per-thread buffers are made here */
  trail_flush();
  __atomic_store_n(&allocations, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counting, 1, __ATOMIC_RELAXED);
  events(lg, obj, 10000);
  trail_flush();
  __atomic_store_n(&counting, 0, __ATOMIC_RELAXED);
  trail_ctx_leave(prev);
  json_decref(obj);
  trail_logger_free(lg);
  trail_counters c;
  trail_counters_get(&c);
  assert_true(c.events[TRAIL_LEVEL_INFO] >= 10200);
  assert_int_equal(c.dropped, 0);
  assert_int_equal(allocations, 0);
  trail_shutdown();
}

/*
 * Async mode from its first event: one event of warm-up, no flush, then
 * 10,000 events queued as records in a tight loop, so that the writer's
 * first batches and the caller's first lines encoded by itself (when the
 * writer falls behind) all fall in the counted stretch.
 */
static void test_async_from_the_start_allocates_nothing(void **state) {
  (void)state;
  assert_int_equal(trail_output_set("/dev/null", NULL), 0);
  trail_logger *lg = trail_logger_get("orders");
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_ctx *prev = trail_ctx_enter(&ctx);
  trail_async_options o = {.queue_size = 256 * 1024};
  assert_int_equal(trail_async_start(&o), 0);
  trail_counters_reset();
  trail_info(lg, "warm-up");
  __atomic_store_n(&allocations, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&counting, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < 10000; i++)
    trail_info(lg, "request completed", TRAIL_STR("method", "GET"),
               TRAIL_STR("path", "/api/orders/42"), TRAIL_INT("status", 200),
               TRAIL_DOUBLE("duration_ms", 12.5 + (i % 100) / 100.0));
  trail_flush();
  __atomic_store_n(&counting, 0, __ATOMIC_RELAXED);
  trail_ctx_leave(prev);
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.events[TRAIL_LEVEL_INFO], 10001);
  assert_int_equal(c.dropped, 0);
  assert_int_equal(allocations, 0);
  trail_shutdown();
}

static void test_sync_allocates_nothing(void **state) {
  (void)state;
  run(0, 0);
}

static void test_async_allocates_nothing(void **state) {
  (void)state;
  run(1, 0);
}

static void test_relisted_bound_fields_allocate_nothing(void **state) {
  (void)state;
  run(0, 1);
  run(1, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sync_allocates_nothing),
      cmocka_unit_test(test_async_allocates_nothing),
      cmocka_unit_test(test_async_from_the_start_allocates_nothing),
      cmocka_unit_test(test_relisted_bound_fields_allocate_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void) { return 77; }
#endif
