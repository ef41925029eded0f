/*
 * The drain of a stopping service: its requests in flight counted, and a
 * wait for them to end, ORDERS_DRAIN_SECONDS at most. For the examples whose
 * server's stop cuts off what is still being answered (MHD_stop_daemon(),
 * civetweb's mg_stop(), which then writes nothing more): they stop their
 * server only once the drain is over.
 *
 *   drain_init()    once, before the server starts
 *   drain_enter()   a request begins (the handler's first call)
 *   drain_leave()   it has ended (its completion, or the handler's return)
 *   drain_wait()    logs "stopping" with the requests in flight, waits
 *                   until none is, ORDERS_DRAIN_SECONDS at most, and says so
 *                   when some still are
 */
#ifndef TRAIL_EXAMPLE_DRAIN_H
#define TRAIL_EXAMPLE_DRAIN_H

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include <trail.h>

#include "orders_config.h"

static struct {
  pthread_mutex_t lock;
  pthread_cond_t idle;
  int in_flight;
} drain = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

/* The drain's deadline is on the monotonic clock, which no change of the
 * wall clock moves. */
static inline void drain_init(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_destroy(&drain.idle);
  pthread_cond_init(&drain.idle, &ca);
  pthread_condattr_destroy(&ca);
}

static inline void drain_enter(void) {
  pthread_mutex_lock(&drain.lock);
  drain.in_flight++;
  pthread_mutex_unlock(&drain.lock);
}

static inline void drain_leave(void) {
  pthread_mutex_lock(&drain.lock);
  if (--drain.in_flight == 0)
    pthread_cond_broadcast(&drain.idle);
  pthread_mutex_unlock(&drain.lock);
}

static inline void drain_wait(void) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += ORDERS_DRAIN_SECONDS;
  pthread_mutex_lock(&drain.lock);
  int before = drain.in_flight;
  pthread_mutex_unlock(&drain.lock);
  trail_info(NULL, "stopping", TRAIL_INT("in_flight", before));
  pthread_mutex_lock(&drain.lock);
  while (drain.in_flight > 0)
    if (pthread_cond_timedwait(&drain.idle, &drain.lock, &deadline) ==
        ETIMEDOUT)
      break;
  int left = drain.in_flight;
  pthread_mutex_unlock(&drain.lock);
  if (left > 0)
    trail_warn(NULL, "requests still in flight at the drain deadline",
               TRAIL_INT("in_flight", left),
               TRAIL_INT("deadline_s", ORDERS_DRAIN_SECONDS));
}

#endif /* TRAIL_EXAMPLE_DRAIN_H */
