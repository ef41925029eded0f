/*
 * Tests for lib/ids.c: id generators, the request-id check, and traceparent
 * parsing and formatting (W3C Trace Context), and the per-thread random
 * pool of lib/random.c.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* fork(2), pipe(2), waitpid(2), syscall(2) */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <trail.h>

#include "ids.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A string literal and its length, NUL bytes inside included. */
#define LIT(s) s, sizeof(s) - 1

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT "00f067aa0ba902b7"
#define ZERO_TRACE "00000000000000000000000000000000"
#define ZERO_PARENT "0000000000000000"

static int is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/*
 * ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$,
 * checked by hand.
 */
static int uuid_v4_shape(const char *s) {
  if (strlen(s) != TRAIL_UUID_LEN)
    return 0;
  for (size_t i = 0; i < TRAIL_UUID_LEN; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return 0;
    } else if (!is_lower_hex(s[i])) {
      return 0;
    }
  }
  return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* n lowercase hex digits, a NUL, and not all '0'. */
static int hex_id_shape(const char *s, size_t n) {
  int nonzero = 0;
  if (strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (!is_lower_hex(s[i]))
      return 0;
    nonzero |= s[i] != '0';
  }
  return nonzero;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

/* Sorts count strings of stride bytes and fails on any neighbour repeat. */
static void assert_all_distinct(char *ids, size_t count, size_t stride) {
  qsort(ids, count, stride, cmp_str);
  for (size_t i = 1; i < count; i++)
    assert_string_not_equal(ids + (i - 1) * stride, ids + i * stride);
}

/* ---- generators -------------------------------------------------------- */

static void test_request_id_new(void **state) {
  enum { N = 1000, W = TRAIL_UUID_LEN + 1 };
  char *ids = malloc((size_t)N * W);
  (void)state;
  assert_non_null(ids);
  for (size_t i = 0; i < N; i++) {
    char *id = ids + i * W;
    assert_int_equal(trail_request_id_new(id, W), 0);
    assert_true(uuid_v4_shape(id));
    assert_int_equal(trail_request_id_check(id, strlen(id)), 0);
  }
  assert_all_distinct(ids, N, W);
  free(ids);
}

/* Folds the hex digits of s (dashes skipped) into per-byte OR and AND. */
static void fold_bits(const char *s, unsigned char *or_bits,
                      unsigned char *and_bits) {
  size_t at = 0;
  for (; *s; s++) {
    if (*s == '-')
      continue;
    int v = *s <= '9' ? *s - '0' : *s - 'a' + 10;
    unsigned char bits = (unsigned char)(at % 2 == 0 ? v << 4 : v);
    unsigned char keep = at % 2 == 0 ? 0x0f : 0xf0;
    or_bits[at / 2] |= bits;
    and_bits[at / 2] &= (unsigned char)(bits | keep);
    at++;
  }
}

/*
 * A new request's three ids from one draw: each well formed, all distinct,
 * and every random bit seen both 0 and 1 over N draws (a bit stuck by a
 * wrong slice or mask fails; by chance only with probability 2^-(N-1)).
 * Only the UUID's version (0100) and variant (10) bits are fixed.
 */
static void test_ids_new_together(void **state) {
  enum { N = 1000, RID = TRAIL_UUID_LEN + 1 };
  char(*rid)[RID] = calloc(N, RID);
  char(*trace)[TRAIL_TRACE_ID_LEN + 1] = calloc(N, TRAIL_TRACE_ID_LEN + 1);
  char(*span)[TRAIL_SPAN_ID_LEN + 1] = calloc(N, TRAIL_SPAN_ID_LEN + 1);
  unsigned char or_bits[16 + 16 + 8] = {0}, and_bits[16 + 16 + 8];
  (void)state;
  assert_true(rid && trace && span);
  memset(and_bits, 0xff, sizeof and_bits);
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(trail__ids_new(rid[i], trace[i], span[i]), 0);
    assert_true(uuid_v4_shape(rid[i]));
    assert_true(hex_id_shape(trace[i], TRAIL_TRACE_ID_LEN));
    assert_true(hex_id_shape(span[i], TRAIL_SPAN_ID_LEN));
    fold_bits(rid[i], or_bits, and_bits);
    fold_bits(trace[i], or_bits + 16, and_bits + 16);
    fold_bits(span[i], or_bits + 32, and_bits + 32);
  }
  for (size_t b = 0; b < sizeof or_bits; b++) {
    unsigned char want_or = b == 6 ? 0x4f : b == 8 ? 0xbf : 0xff;
    unsigned char want_and = b == 6 ? 0x40 : b == 8 ? 0x80 : 0x00;
    if (or_bits[b] != want_or || and_bits[b] != want_and)
      fail_msg("byte %zu: OR %02x AND %02x", b, or_bits[b], and_bits[b]);
  }
  assert_all_distinct(&rid[0][0], N, RID);
  assert_all_distinct(&trace[0][0], N, TRAIL_TRACE_ID_LEN + 1);
  assert_all_distinct(&span[0][0], N, TRAIL_SPAN_ID_LEN + 1);
  free(rid);
  free(trace);
  free(span);
}

static void test_request_id_new_small_buffer(void **state) {
  char buf[TRAIL_UUID_LEN + 1];
  (void)state;
  memset(buf, 'x', sizeof buf);
  assert_int_equal(trail_request_id_new(buf, sizeof buf - 1), -ENOSPC);
  assert_int_equal(buf[0], 'x');
  assert_int_equal(trail_request_id_new(buf, 0), -ENOSPC);
  assert_int_equal(trail_request_id_new(NULL, 0), -ENOSPC);
}

static void check_hex_ids(int (*gen)(char *, size_t), size_t len) {
  enum { N = 10000 };
  size_t w = len + 1;
  char *ids = malloc(N * w);
  assert_non_null(ids);
  for (size_t i = 0; i < N; i++) {
    char *id = ids + i * w;
    assert_int_equal(gen(id, w), 0);
    assert_true(hex_id_shape(id, len));
    assert_true(trail__hex_id_valid(id, strlen(id), len));
  }
  assert_all_distinct(ids, N, w);
  free(ids);
}

static void test_trace_id_new(void **state) {
  (void)state;
  check_hex_ids(trail_trace_id_new, TRAIL_TRACE_ID_LEN);
}

static void test_span_id_new(void **state) {
  (void)state;
  check_hex_ids(trail_span_id_new, TRAIL_SPAN_ID_LEN);
}

static void test_hex_id_new_small_buffer(void **state) {
  char buf[TRAIL_TRACE_ID_LEN + 1];
  (void)state;
  memset(buf, 'x', sizeof buf);
  assert_int_equal(trail_trace_id_new(buf, TRAIL_TRACE_ID_LEN), -ENOSPC);
  assert_int_equal(trail_span_id_new(buf, TRAIL_SPAN_ID_LEN), -ENOSPC);
  assert_int_equal(buf[0], 'x');
  assert_int_equal(trail_trace_id_new(NULL, 0), -ENOSPC);
  assert_int_equal(trail_span_id_new(NULL, 0), -ENOSPC);
  /* Exactly enough room. */
  assert_int_equal(trail_span_id_new(buf, TRAIL_SPAN_ID_LEN + 1), 0);
  assert_true(hex_id_shape(buf, TRAIL_SPAN_ID_LEN));
}

/*
 * A forked child must not repeat its parent's ids: ids drawn in the child
 * after fork() differ from the ids the parent draws next.
 */
struct id_set {
  char request[TRAIL_UUID_LEN + 1];
  char trace[TRAIL_TRACE_ID_LEN + 1];
  char span[TRAIL_SPAN_ID_LEN + 1];
};

static int draw_ids(struct id_set *s) {
  memset(s, 0, sizeof *s);
  return trail_request_id_new(s->request, sizeof s->request) ||
         trail_trace_id_new(s->trace, sizeof s->trace) ||
         trail_span_id_new(s->span, sizeof s->span);
}

static void test_ids_after_fork(void **state) {
  struct id_set warm, mine, child;
  int fds[2], status;
  pid_t pid;
  size_t got = 0;
  (void)state;

  /* Draw in the parent first, so any lazily made state exists before fork. */
  assert_int_equal(draw_ids(&warm), 0);
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct id_set s;
    const char *p = (const char *)&s;
    size_t left = sizeof s;
    close(fds[0]);
    if (draw_ids(&s) != 0)
      _exit(2);
    while (left > 0) {
      ssize_t w = write(fds[1], p, left);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        _exit(3);
      p += w;
      left -= (size_t)w;
    }
    _exit(0);
  }
  close(fds[1]);
  assert_int_equal(draw_ids(&mine), 0);
  while (got < sizeof child) {
    ssize_t r = read(fds[0], (char *)&child + got, sizeof child - got);
    if (r < 0 && errno == EINTR)
      continue;
    assert_true(r > 0);
    got += (size_t)r;
  }
  close(fds[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);

  assert_true(uuid_v4_shape(child.request));
  assert_true(hex_id_shape(child.trace, TRAIL_TRACE_ID_LEN));
  assert_true(hex_id_shape(child.span, TRAIL_SPAN_ID_LEN));
  assert_string_not_equal(child.request, mine.request);
  assert_string_not_equal(child.trace, mine.trace);
  assert_string_not_equal(child.span, mine.span);
  assert_string_not_equal(child.trace, warm.trace);
  assert_string_not_equal(child.span, warm.span);
}

/*
 * The pooled ids after a fork: the parent draws once (its thread's pool now
 * holds the bytes of its next ids), forks, and both sides draw K requests'
 * ids. Without the child's refill the two would draw the very same bytes.
 * Tried with fork() and with a raw clone(2), which runs no atfork handler.
 */
enum { POOLED_K = 8 };
struct pooled_set {
  struct id_set s[POOLED_K];
};

static int draw_pooled(struct pooled_set *p) {
  memset(p, 0, sizeof *p);
  for (size_t i = 0; i < POOLED_K; i++)
    if (trail__ids_new(p->s[i].request, p->s[i].trace, p->s[i].span) != 0)
      return -1;
  return 0;
}

static void child_sends_pooled(int fd) {
  struct pooled_set p;
  const char *at = (const char *)&p;
  size_t left = sizeof p;
  if (draw_pooled(&p) != 0)
    _exit(2);
  while (left > 0) {
    ssize_t w = write(fd, at, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      _exit(3);
    at += w;
    left -= (size_t)w;
  }
  _exit(0);
}

static void read_all(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    assert_true(r > 0);
    got += (size_t)r;
  }
}

static void pooled_after(pid_t (*make_child)(void)) {
  struct pooled_set mine, child;
  struct id_set warm;
  int fds[2], status;
  assert_int_equal(trail__ids_new(warm.request, warm.trace, warm.span), 0);
  assert_int_equal(pipe(fds), 0);
  pid_t pid = make_child();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    child_sends_pooled(fds[1]);
  }
  close(fds[1]);
  assert_int_equal(draw_pooled(&mine), 0);
  read_all(fds[0], &child, sizeof child);
  close(fds[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (size_t i = 0; i < POOLED_K; i++) {
    assert_true(uuid_v4_shape(child.s[i].request));
    for (size_t j = 0; j < POOLED_K; j++) {
      assert_string_not_equal(child.s[i].request, mine.s[j].request);
      assert_string_not_equal(child.s[i].trace, mine.s[j].trace);
      assert_string_not_equal(child.s[i].span, mine.s[j].span);
    }
  }
}

static pid_t by_fork(void) { return fork(); }

static pid_t by_raw_clone(void) {
  return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
}

static void test_pooled_ids_after_fork(void **state) {
  (void)state;
  pooled_after(by_fork);
}

static void test_pooled_ids_after_raw_clone(void **state) {
  (void)state;
  pooled_after(by_raw_clone);
}

/* Threads draw from pools of their own: no id twice across them. */
enum { POOL_THREADS = 4, POOL_DRAWS = 2000 };
static char thread_ids[POOL_THREADS * POOL_DRAWS][TRAIL_UUID_LEN + 1];

static void *draw_in_thread(void *arg) {
  size_t t = (size_t)(uintptr_t)arg;
  char trace[TRAIL_TRACE_ID_LEN + 1], span[TRAIL_SPAN_ID_LEN + 1];
  for (size_t i = 0; i < POOL_DRAWS; i++)
    if (trail__ids_new(thread_ids[t * POOL_DRAWS + i], trace, span) != 0)
      return arg;
  return NULL;
}

static void test_pooled_ids_threads(void **state) {
  pthread_t th[POOL_THREADS];
  (void)state;
  for (size_t t = 0; t < POOL_THREADS; t++)
    assert_int_equal(
        pthread_create(&th[t], NULL, draw_in_thread, (void *)(uintptr_t)t), 0);
  for (size_t t = 0; t < POOL_THREADS; t++) {
    void *rc;
    assert_int_equal(pthread_join(th[t], &rc), 0);
    assert_null(rc);
  }
  for (size_t i = 0; i < POOL_THREADS * POOL_DRAWS; i++)
    assert_true(uuid_v4_shape(thread_ids[i]));
  assert_all_distinct(&thread_ids[0][0], POOL_THREADS * POOL_DRAWS,
                      TRAIL_UUID_LEN + 1);
}

/* ---- trail__hex_id_valid ----------------------------------------------- */

static void test_hex_id_valid(void **state) {
  (void)state;
  assert_int_equal(trail__hex_id_valid(LIT(TRACE), 32), 1);
  assert_int_equal(trail__hex_id_valid(LIT(PARENT), 16), 1);
  assert_int_equal(trail__hex_id_valid(LIT("0000000000000001"), 16), 1);
  assert_int_equal(trail__hex_id_valid(LIT(ZERO_TRACE), 32), 0);
  assert_int_equal(trail__hex_id_valid(LIT(ZERO_PARENT), 16), 0);
  assert_int_equal(trail__hex_id_valid(LIT(PARENT), 32), 0);
  assert_int_equal(trail__hex_id_valid(LIT(TRACE), 16), 0);
  assert_int_equal(trail__hex_id_valid(LIT("00F067AA0BA902B7"), 16), 0);
  assert_int_equal(trail__hex_id_valid(LIT("00f067aa0ba902bg"), 16), 0);
  assert_int_equal(trail__hex_id_valid(LIT("00f067aa0ba9\0002ba"), 16), 0);
  assert_int_equal(trail__hex_id_valid(LIT(""), 0), 0);
  assert_int_equal(trail__hex_id_valid(NULL, 16, 16), 0);
}

/* ---- trail_request_id_check -------------------------------------------- */

struct id_case {
  const char *name;
  const char *id;
  size_t len;
  int rc;
};

static void test_request_id_check(void **state) {
  static char max[TRAIL_REQUEST_ID_MAX + 2];
  (void)state;
  memset(max, 'a', sizeof max - 1);
  const struct id_case cases[] = {
      {"one char", LIT("a"), 0},
      {"digit", LIT("7"), 0},
      {"uuid", LIT("3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"), 0},
      {"punctuation", LIT("A.b_C:d-9"), 0},
      {"only punctuation", LIT("._:-"), 0},
      {"128 chars", max, TRAIL_REQUEST_ID_MAX, 0},
      {"empty", LIT(""), TRAIL_EINVAL_ID},
      {"129 chars", max, TRAIL_REQUEST_ID_MAX + 1, TRAIL_EINVAL_ID},
      {"space", LIT("abc def"), TRAIL_EINVAL_ID},
      {"slash", LIT("abc/def"), TRAIL_EINVAL_ID},
      {"quote", LIT("abc\"def"), TRAIL_EINVAL_ID},
      {"backslash", LIT("abc\\def"), TRAIL_EINVAL_ID},
      {"CR", LIT("abc\rdef"), TRAIL_EINVAL_ID},
      {"LF", LIT("abc\ndef"), TRAIL_EINVAL_ID},
      {"tab", LIT("abc\tdef"), TRAIL_EINVAL_ID},
      {"non-ASCII", LIT("abc\xc3\xa9"), TRAIL_EINVAL_ID},
      {"high byte", LIT("\xff"), TRAIL_EINVAL_ID},
      {"NUL inside", LIT("abc\0def"), TRAIL_EINVAL_ID},
      {"NUL at end", LIT("abc\0"), TRAIL_EINVAL_ID},
      {"comma", LIT("a,b"), TRAIL_EINVAL_ID},
      {"equals", LIT("a=b"), TRAIL_EINVAL_ID},
      {"NULL", NULL, 3, TRAIL_EINVAL_ID},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = trail_request_id_check(cases[i].id, cases[i].len);
    if (rc != cases[i].rc)
      fail_msg("request_id_check case \"%s\": got %d, want %d", cases[i].name,
               rc, cases[i].rc);
  }
}

/* ---- trail_traceparent_parse ------------------------------------------- */

struct tp_case {
  const char *name;
  const char *value;
  size_t len;
  int rc;
  uint8_t version;
  uint8_t flags;
};

#define OK(name, v, ver, fl)                                                   \
  { name, LIT(v), 0, ver, fl }
#define BAD(name, v)                                                           \
  { name, LIT(v), TRAIL_EINVAL_TRACEPARENT, 0, 0 }

static const struct tp_case tp_cases[] = {
    /* Valid, version 00. */
    OK("w3c example", "00-" TRACE "-" PARENT "-01", 0x00, 0x01),
    OK("not sampled", "00-" TRACE "-" PARENT "-00", 0x00, 0x00),
    OK("all flags kept", "00-" TRACE "-" PARENT "-ff", 0x00, 0xff),
    OK("unknown flag bits kept", "00-" TRACE "-" PARENT "-09", 0x00, 0x09),
    OK("leading and trailing OWS", " \t00-" TRACE "-" PARENT "-01\t ", 0x00,
       0x01),
    OK("min nonzero ids",
       "00-00000000000000000000000000000001-0000000000000001-01", 0x00, 0x01),
    /* Valid, higher versions. */
    OK("future version", "cc-" TRACE "-" PARENT "-01", 0xcc, 0x01),
    OK("future version, more parts",
       "cc-" TRACE "-" PARENT "-01-what-the-future-will-be-like", 0xcc, 0x01),
    OK("future version, empty part", "cc-" TRACE "-" PARENT "-01-", 0xcc, 0x01),
    OK("version fe", "fe-" TRACE "-" PARENT "-00", 0xfe, 0x00),
    OK("version 01", "01-" TRACE "-" PARENT "-01", 0x01, 0x01),
    OK("future version, OWS", " cc-" TRACE "-" PARENT "-01-x ", 0xcc, 0x01),
    /* Invalid. */
    BAD("future version, char 55 not dash", "cc-" TRACE "-" PARENT "-01x"),
    BAD("future version, too short", "cc-" TRACE "-" PARENT "-1"),
    BAD("future version, zero trace", "cc-" ZERO_TRACE "-" PARENT "-01"),
    BAD("future version, uppercase", "cc-" TRACE "-00F067AA0BA902B7-01"),
    BAD("future version, NUL in tail", "cc-" TRACE "-" PARENT "-01-ab\0cd"),
    BAD("version ff", "ff-" TRACE "-" PARENT "-01"),
    BAD("version uppercase", "CC-" TRACE "-" PARENT "-01"),
    BAD("version uppercase FF", "FF-" TRACE "-" PARENT "-01"),
    BAD("version non-hex", "0x-" TRACE "-" PARENT "-01"),
    BAD("version one digit", "0-" TRACE "-" PARENT "-01"),
    BAD("trace uppercase", "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01"),
    BAD("trace one uppercase",
        "00-4bf92f3577b34da6a3ce929d0e0e473A-" PARENT "-01"),
    BAD("parent uppercase", "00-" TRACE "-00F067AA0BA902B7-01"),
    BAD("flags uppercase", "00-" TRACE "-" PARENT "-0A"),
    BAD("zero trace", "00-" ZERO_TRACE "-" PARENT "-01"),
    BAD("zero parent", "00-" TRACE "-" ZERO_PARENT "-01"),
    BAD("version 00, extra part", "00-" TRACE "-" PARENT "-01-extra"),
    BAD("version 00, extra dash", "00-" TRACE "-" PARENT "-01-"),
    BAD("version 00, extra char", "00-" TRACE "-" PARENT "-01x"),
    BAD("too short", "00-" TRACE "-" PARENT "-1"),
    BAD("trace too short", "00-4bf92f3577b34da6a3ce929d0e0e473-" PARENT "-01"),
    BAD("parent too long", "00-" TRACE "-00f067aa0ba902b7a-01"),
    BAD("flags three digits", "00-" TRACE "-" PARENT "-011"),
    BAD("underscore separators", "00_" TRACE "_" PARENT "_01"),
    BAD("wrong first separator", "00+" TRACE "-" PARENT "-01"),
    BAD("wrong second separator", "00-" TRACE "+" PARENT "-01"),
    BAD("wrong third separator", "00-" TRACE "-" PARENT "+01"),
    BAD("space separator", "00 " TRACE " " PARENT " 01"),
    BAD("trace non-hex", "00-4bf92f3577b34da6a3ce929d0e0e473g-" PARENT "-01"),
    BAD("parent non-hex", "00-" TRACE "-00f067aa0ba902bz-01"),
    BAD("flags non-hex", "00-" TRACE "-" PARENT "-0g"),
    BAD("NUL in trace", "00-4bf92f3577b34da6\0a3ce929d0e0e473-" PARENT "-01"),
    BAD("NUL after value", "00-" TRACE "-" PARENT "-01\0"),
    BAD("NUL before value", "\0"
                            "00-" TRACE "-" PARENT "-01"),
    BAD("leading LF", "\n00-" TRACE "-" PARENT "-01"),
    BAD("trailing CR", "00-" TRACE "-" PARENT "-01\r"),
    BAD("trailing CRLF", "00-" TRACE "-" PARENT "-01\r\n"),
    BAD("empty", ""),
    BAD("only OWS", " \t "),
    BAD("garbage", "not a traceparent at all, but long enough to be checked"),
};

static void test_traceparent_parse(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof tp_cases / sizeof tp_cases[0]; i++) {
    const struct tp_case *c = &tp_cases[i];
    trail_traceparent tp, before;
    int rc;
    memset(&tp, 0xa5, sizeof tp);
    before = tp;
    rc = trail_traceparent_parse(c->value, c->len, &tp);
    if (rc != c->rc)
      fail_msg("traceparent case \"%s\": got %d, want %d", c->name, rc, c->rc);
    if (rc != 0) {
      if (memcmp(&tp, &before, sizeof tp) != 0)
        fail_msg("traceparent case \"%s\": out changed on failure", c->name);
      continue;
    }
    if (tp.version != c->version || tp.flags != c->flags)
      fail_msg("traceparent case \"%s\": version %02x flags %02x", c->name,
               tp.version, tp.flags);
  }
}

/* Every field of a parsed value, not just the return code. */
static void test_traceparent_parse_fields(void **state) {
  trail_traceparent tp;
  (void)state;
  assert_int_equal(
      trail_traceparent_parse(LIT("00-" TRACE "-" PARENT "-01"), &tp), 0);
  assert_int_equal(tp.version, 0);
  assert_int_equal(tp.flags, 1);
  assert_string_equal(tp.trace_id, TRACE);
  assert_string_equal(tp.parent_id, PARENT);

  assert_int_equal(
      trail_traceparent_parse(
          LIT("\t cc-" TRACE "-" PARENT "-ff-what-the-future-will-be-like "),
          &tp),
      0);
  assert_int_equal(tp.version, 0xcc);
  assert_int_equal(tp.flags, 0xff);
  assert_string_equal(tp.trace_id, TRACE);
  assert_string_equal(tp.parent_id, PARENT);

  /* len, not the NUL, ends the value: a longer buffer parses its prefix. */
  assert_int_equal(trail_traceparent_parse(
                       "00-" TRACE "-" PARENT "-01-trailing junk", 55, &tp),
                   0);
  assert_string_equal(tp.parent_id, PARENT);
}

static void test_traceparent_parse_null(void **state) {
  trail_traceparent tp;
  (void)state;
  assert_int_equal(trail_traceparent_parse(NULL, 55, &tp),
                   TRAIL_EINVAL_TRACEPARENT);
  assert_int_equal(
      trail_traceparent_parse(LIT("00-" TRACE "-" PARENT "-01"), NULL),
      TRAIL_EINVAL_TRACEPARENT);
}

/* ---- trail_traceparent_format ------------------------------------------ */

static void test_traceparent_format(void **state) {
  static const char *const values[] = {
      "00-" TRACE "-" PARENT "-01",
      "00-" TRACE "-" PARENT "-00",
      "00-" TRACE "-" PARENT "-ff",
      "00-" TRACE "-" PARENT "-ab",
      "00-00000000000000000000000000000001-0000000000000001-01",
  };
  (void)state;
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    trail_traceparent tp, back;
    char buf[TRAIL_TRACEPARENT_LEN + 1];
    assert_int_equal(trail_traceparent_parse(values[i], strlen(values[i]), &tp),
                     0);
    assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                     TRAIL_TRACEPARENT_LEN);
    assert_string_equal(buf, values[i]);
    assert_int_equal(trail_traceparent_parse(buf, strlen(buf), &back), 0);
    assert_memory_equal(&tp, &back, sizeof tp);
  }
}

/* Every byte value as flags: each is written as its two lowercase hex
 * digits (printf's), so every entry of the encoder's table is checked. */
static void test_traceparent_format_every_flags_byte(void **state) {
  (void)state;
  for (unsigned v = 0; v < 256; v++) {
    trail_traceparent tp = {.version = 0, .flags = (uint8_t)v};
    char buf[TRAIL_TRACEPARENT_LEN + 1], want[TRAIL_TRACEPARENT_LEN + 1];
    memcpy(tp.trace_id, TRACE, sizeof tp.trace_id);
    memcpy(tp.parent_id, PARENT, sizeof tp.parent_id);
    snprintf(want, sizeof want, "00-%s-%s-%02x", TRACE, PARENT, v);
    assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                     TRAIL_TRACEPARENT_LEN);
    assert_string_equal(buf, want);
  }
}

static void test_traceparent_format_future_version(void **state) {
  trail_traceparent tp;
  char buf[64];
  (void)state;
  assert_int_equal(
      trail_traceparent_parse(LIT("cc-" TRACE "-" PARENT "-01-future"), &tp),
      0);
  assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                   TRAIL_TRACEPARENT_LEN);
  assert_string_equal(buf, "00-" TRACE "-" PARENT "-01");
}

static void test_traceparent_format_generated(void **state) {
  trail_traceparent tp = {.version = 0, .flags = 0x01};
  trail_traceparent back;
  char buf[TRAIL_TRACEPARENT_LEN + 1];
  (void)state;
  for (int i = 0; i < 100; i++) {
    assert_int_equal(trail_trace_id_new(tp.trace_id, sizeof tp.trace_id), 0);
    assert_int_equal(trail_span_id_new(tp.parent_id, sizeof tp.parent_id), 0);
    tp.flags = (uint8_t)i;
    assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                     TRAIL_TRACEPARENT_LEN);
    assert_int_equal(trail_traceparent_parse(buf, strlen(buf), &back), 0);
    assert_memory_equal(&tp, &back, sizeof tp);
  }
}

static void test_traceparent_format_errors(void **state) {
  trail_traceparent good = {.version = 0, .flags = 1};
  trail_traceparent tp;
  char buf[TRAIL_TRACEPARENT_LEN + 1];
  (void)state;
  memcpy(good.trace_id, TRACE, sizeof TRACE);
  memcpy(good.parent_id, PARENT, sizeof PARENT);

  memset(buf, 'x', sizeof buf);
  assert_int_equal(trail_traceparent_format(&good, buf, sizeof buf - 1),
                   -ENOSPC);
  assert_int_equal(buf[0], 'x');
  assert_int_equal(trail_traceparent_format(&good, NULL, 0), -ENOSPC);

  tp = good;
  memcpy(tp.trace_id, ZERO_TRACE, sizeof ZERO_TRACE);
  assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                   TRAIL_EINVAL_ID);
  tp = good;
  memcpy(tp.parent_id, ZERO_PARENT, sizeof ZERO_PARENT);
  assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                   TRAIL_EINVAL_ID);
  tp = good;
  tp.trace_id[0] = 'A';
  assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                   TRAIL_EINVAL_ID);
  tp = good;
  tp.parent_id[5] = '\0';
  assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                   TRAIL_EINVAL_ID);
  tp = good;
  tp.trace_id[0] = '\0';
  assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                   TRAIL_EINVAL_ID);
  /* No terminating NUL inside the array: read no further than the array. */
  tp = good;
  memset(tp.parent_id, 'a', sizeof tp.parent_id);
  assert_int_equal(trail_traceparent_format(&tp, buf, sizeof buf),
                   TRAIL_EINVAL_ID);
  assert_int_equal(buf[0], 'x');
  assert_int_equal(trail_traceparent_format(NULL, buf, sizeof buf),
                   TRAIL_EINVAL_ID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_id_new),
      cmocka_unit_test(test_request_id_new_small_buffer),
      cmocka_unit_test(test_ids_new_together),
      cmocka_unit_test(test_pooled_ids_after_fork),
      cmocka_unit_test(test_pooled_ids_after_raw_clone),
      cmocka_unit_test(test_pooled_ids_threads),
      cmocka_unit_test(test_trace_id_new),
      cmocka_unit_test(test_span_id_new),
      cmocka_unit_test(test_hex_id_new_small_buffer),
      cmocka_unit_test(test_ids_after_fork),
      cmocka_unit_test(test_hex_id_valid),
      cmocka_unit_test(test_request_id_check),
      cmocka_unit_test(test_traceparent_parse),
      cmocka_unit_test(test_traceparent_parse_fields),
      cmocka_unit_test(test_traceparent_parse_null),
      cmocka_unit_test(test_traceparent_format),
      cmocka_unit_test(test_traceparent_format_every_flags_byte),
      cmocka_unit_test(test_traceparent_format_future_version),
      cmocka_unit_test(test_traceparent_format_generated),
      cmocka_unit_test(test_traceparent_format_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
