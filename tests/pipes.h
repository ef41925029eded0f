/*
 * A small pipe as a sink, for the scenarios that need a writer blocked on a
 * full pipe: the pipe, a wait until it is full, a reader to its end, and
 * the count of one message's lines in what was read. For scenarios run in a
 * child (watchdog.h): failures end the child through CHILD_CHECK.
 */
#ifndef TRAIL_TEST_PIPES_H
#define TRAIL_TEST_PIPES_H

#include "files.h"
#include "watchdog.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>

static int pipe_fds[2];

/* A one-page pipe, its write end a sink for every level. */
static inline void pipe_sink_add(void) {
  CHILD_CHECK(pipe(pipe_fds) == 0);
  fcntl(pipe_fds[1], F_SETPIPE_SZ, 4096);
  CHILD_CHECK(trail_sink_add_fd(pipe_fds[1], TRAIL_LEVEL_TRACE) >= 0);
}

/* Returns when poll() finds the pipe not writable: a thread that writes to
 * it now blocks in (or is entering) its write, holding the sink. */
static inline void wait_pipe_full(void) {
  for (;;) {
    struct pollfd p = {.fd = pipe_fds[1], .events = POLLOUT};
    if (poll(&p, 1, 0) == 0)
      return;
    sched_yield();
  }
}

/* A thread body: everything the pipe gives until end of file. */
static inline void *read_to_end(void *arg) {
  size_t *len = arg;
  return read_all_fd(pipe_fds[0], len);
}

/*
 * Counts the lines of text whose message is msg; every line must be whole
 * and parse with no duplicate key. Adds their "dropped" fields to *dropped
 * when given.
 */
static inline long count_lines(const char *text, const char *msg,
                               uint64_t *dropped) {
  long n = 0;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    CHILD_CHECK(nl != NULL);
    json_error_t e;
    json_t *j = json_loadb(p, (size_t)(nl - p) + 1, JSON_REJECT_DUPLICATES, &e);
    CHILD_CHECK(j != NULL && json_is_object(j));
    const char *m = json_string_value(json_object_get(j, "message"));
    n += m != NULL && strcmp(m, msg) == 0;
    json_t *d = json_object_get(j, "dropped");
    if (dropped != NULL && json_is_integer(d))
      *dropped += (uint64_t)json_integer_value(d);
    json_decref(j);
    p = nl + 1;
  }
  return n;
}

#endif /* TRAIL_TEST_PIPES_H */
