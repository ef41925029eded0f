/*
 * The ends of threads: a line logged from a thread-exit destructor after
 * trail's own, a thread cancelled inside a logging call, the counters read
 * while another thread resets them, a drop racing trail_async_stop(). The
 * scenarios that can hang run under a watchdog (watchdog.h).
 */
#define _GNU_SOURCE
#include "files.h"
#include "gate.h"
#include "pipes.h"
#include "support.h"
#include "watchdog.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>

/* ---- F2: a line from a destructor that runs after trail's --------------- */

#define DTOR_LINES 50
static pthread_key_t user_key;

static void user_dtor(void *p) {
  (void)p;
  for (int i = 0; i < DTOR_LINES; i++)
    trail_trace(NULL, "from a destructor", TRAIL_INT("i", i),
                TRAIL_STR("pad", "................................"));
}

static void *exiting_thread(void *arg) {
  (void)arg;
  trail_trace(NULL, "before the exit");
  pthread_setspecific(user_key, (void *)1);
  return NULL;
}

static void test_log_from_thread_destructor(void **state) {
  (void)state;
  trail_init("teardown");
  cap_start(TRAIL_LEVEL_TRACE);
  trail_levels_set("trace", NULL);
  trail_trace(NULL, "trail's keys first"); /* so its destructors run first */
  /* Created after trail's keys: run after trail's per-thread destructors. */
  assert_int_equal(pthread_key_create(&user_key, user_dtor), 0);
  trail_counters_reset();
  cap_clear();
  for (int i = 0; i < 4; i++) {
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, exiting_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
  }
  size_t expect = 4 * (DTOR_LINES + 1);
  assert_int_equal(cap_count(), expect);
  for (size_t i = 0; i < expect; i++)
    json_decref(cap_json(i));
  trail_counters c;
  trail_counters_get(&c);
  assert_int_equal(c.events[TRAIL_LEVEL_TRACE], expect);
  pthread_key_delete(user_key);
  cap_stop();
}

/* ---- F7: cancelled inside a logging call -------------------------------- */

static long logged;

static void *log_to_pipe(void *arg) {
  (void)arg;
  for (;;) {
    trail_info(NULL, "to the pipe", TRAIL_INT("n", logged));
    logged++;
    pthread_testcancel();
  }
  return NULL;
}

/* Sync mode: cancelled while its write to a full pipe holds the sink. */
static void cancel_in_write(void) {
  trail_init("teardown");
  trail_sinks_clear();
  pipe_sink_add();
  pthread_t t, r;
  CHILD_CHECK(pthread_create(&t, NULL, log_to_pipe, NULL) == 0);
  wait_pipe_full();
  CHILD_CHECK(pthread_cancel(t) == 0);
  size_t len;
  CHILD_CHECK(pthread_create(&r, NULL, read_to_end, &len) == 0);
  void *res;
  CHILD_CHECK(pthread_join(t, &res) == 0 && res == PTHREAD_CANCELED);
  trail_info(NULL, "after the cancel"); /* hangs if the sink stayed locked */
  trail_sinks_clear();
  close(pipe_fds[1]);
  char *text;
  CHILD_CHECK(pthread_join(r, (void **)&text) == 0 && text != NULL);
  CHILD_CHECK(count_lines(text, "after the cancel", NULL) == 1);
  CHILD_CHECK(count_lines(text, "to the pipe", NULL) == logged);
  free(text);
}

static void test_cancel_inside_write(void **state) {
  (void)state;
  run_watched("cancelled inside a write", cancel_in_write);
}

/* Async, block policy: cancelled while it waits for room in the queue. */
#define BLOCKED_LINES 2000

static void *fill_queue(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKED_LINES; i++)
    trail_info(NULL, "queued", TRAIL_INT("i", i));
  pthread_testcancel();
  return NULL;
}

static void cancel_in_wait(void) {
  trail_init("teardown");
  CHILD_CHECK(trail_max_line_set(2048) == 0);
  trail_sinks_clear();
  gate_reset();
  CHILD_CHECK(trail_sink_add_callback(gated_sink, NULL, TRAIL_LEVEL_TRACE) >=
              0);
  trail_async_options o = {.queue_size = 16384,
                           .overflow = TRAIL_OVERFLOW_BLOCK};
  CHILD_CHECK(trail_async_start(&o) == 0);
  pthread_t t;
  CHILD_CHECK(pthread_create(&t, NULL, fill_queue, NULL) == 0);
  gate_wait_entered();
  /* Its first cancellation point is the wait for room (the queue fills
   * while the writer is held): there, or at its end, it must act. */
  CHILD_CHECK(pthread_cancel(t) == 0);
  gate_open();
  CHILD_CHECK(pthread_join(t, NULL) == 0);
  CHILD_CHECK(trail_flush() == 0);
  CHILD_CHECK(trail_async_stop() == 0);
  CHILD_CHECK(cap_count() == BLOCKED_LINES);
}

static void test_cancel_inside_queue_wait(void **state) {
  (void)state;
  run_watched("cancelled waiting for room", cancel_in_wait);
}

/* ---- F13: the counters read while another thread resets them ------------ */

#define READS 2000000
static volatile int done;

static void *keep_logging(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
    trail_info(NULL, "counted");
  return NULL;
}

static void *keep_resetting(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
    trail_counters_reset();
  return NULL;
}

static void test_counters_during_reset(void **state) {
  (void)state;
  trail_init("teardown");
  trail_sinks_clear();
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  assert_true(null_fd >= 0);
  assert_true(trail_sink_add_fd(null_fd, TRAIL_LEVEL_TRACE) >= 0);
  pthread_t l, r;
  assert_int_equal(pthread_create(&l, NULL, keep_logging, NULL), 0);
  assert_int_equal(pthread_create(&r, NULL, keep_resetting, NULL), 0);
  uint64_t worst = 0;
  for (int i = 0; i < READS; i++) {
    trail_counters c;
    trail_counters_get(&c);
    if (c.events[TRAIL_LEVEL_INFO] > worst)
      worst = c.events[TRAIL_LEVEL_INFO];
    if (c.bytes / 64 > worst)
      worst = c.bytes / 64;
  }
  __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  pthread_join(l, NULL);
  pthread_join(r, NULL);
  /* Far below what a wrapped (negative) difference reads as. */
  assert_true(worst < (UINT64_C(1) << 48));
  trail_shutdown();
  close(null_fd);
}

/* ---- F12: a drop racing trail_async_stop() ------------------------------ */

#define STOP_ROUNDS 100

static _Thread_local int flooding; /* a flood thread, not the writer */

static void *flood(void *arg) {
  (void)arg;
  flooding = 1;
  while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
    trail_info(NULL, "flood", TRAIL_STR("pad", "........................"));
  return NULL;
}

/* Sums the "dropped" of every report line, and holds the writer (not the
 * flood threads writing their own lines) while the gate is shut. */
static uint64_t reported;

static void drop_sink(void *user, trail_level level, const char *line,
                      size_t len) {
  (void)user;
  (void)level;
  pthread_mutex_lock(&gate.m);
  while (!flooding && !gate.open) {
    gate.entered = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_cond_wait(&gate.cv, &gate.m);
  }
  json_t *j = json_loadb(line, len, 0, NULL);
  json_t *d = json_object_get(j, "dropped");
  if (json_is_integer(d))
    reported += (uint64_t)json_integer_value(d);
  json_decref(j);
  pthread_mutex_unlock(&gate.m);
}

static uint64_t dropped_now(void) {
  trail_counters c;
  trail_counters_get(&c);
  return c.dropped;
}

/* Each round: the writer held until the flood has dropped, then a stop
 * while the flood goes on. Every drop counted is reported in a line. */
static void test_drop_racing_stop(void **state) {
  (void)state;
  trail_init("teardown");
  assert_int_equal(trail_max_line_set(2048), 0);
  trail_sinks_clear();
  assert_true(trail_sink_add_callback(drop_sink, NULL, TRAIL_LEVEL_TRACE) >= 0);
  trail_counters_reset();
  __atomic_store_n(&done, 0, __ATOMIC_RELEASE);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, flood, NULL), 0);
  trail_async_options o = {.queue_size = 16384,
                           .overflow = TRAIL_OVERFLOW_DROP};
  for (int r = 0; r < STOP_ROUNDS; r++) {
    gate_reset();
    uint64_t before = dropped_now();
    assert_int_equal(trail_async_start(&o), 0);
    gate_wait_entered();
    while (dropped_now() == before)
      sched_yield();
    gate_open();
    assert_int_equal(trail_async_stop(), 0);
  }
  __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  assert_true(dropped_now() >= STOP_ROUNDS);
  pthread_mutex_lock(&gate.m);
  assert_int_equal(reported, dropped_now());
  pthread_mutex_unlock(&gate.m);
  trail_shutdown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_log_from_thread_destructor),
      cmocka_unit_test(test_cancel_inside_write),
      cmocka_unit_test(test_cancel_inside_queue_wait),
      cmocka_unit_test(test_counters_during_reset),
      cmocka_unit_test(test_drop_racing_stop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
