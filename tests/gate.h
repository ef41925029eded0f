/*
 * A capture sink the test can hold shut: the async writer stalls inside it
 * (gate_wait_entered() tells when), so that what is logged meanwhile waits
 * in the queue until gate_open(). Header-only, for the async tests.
 */
#ifndef TRAIL_TEST_GATE_H
#define TRAIL_TEST_GATE_H

#include "support.h"

static struct {
  pthread_mutex_t m;
  pthread_cond_t cv;
  int open;
  int entered;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void gated_sink(void *user, trail_level level, const char *line,
                       size_t len) {
  pthread_mutex_lock(&gate.m);
  gate.entered = 1;
  pthread_cond_broadcast(&gate.cv);
  while (!gate.open)
    pthread_cond_wait(&gate.cv, &gate.m);
  pthread_mutex_unlock(&gate.m);
  cap_sink(user, level, line, len);
}

static void gate_reset(void) {
  pthread_mutex_lock(&gate.m);
  gate.open = 0;
  gate.entered = 0;
  pthread_mutex_unlock(&gate.m);
}

static void gate_wait_entered(void) {
  pthread_mutex_lock(&gate.m);
  while (!gate.entered)
    pthread_cond_wait(&gate.cv, &gate.m);
  pthread_mutex_unlock(&gate.m);
}

static void gate_open(void) {
  pthread_mutex_lock(&gate.m);
  gate.open = 1;
  pthread_cond_broadcast(&gate.cv);
  pthread_mutex_unlock(&gate.m);
}

#endif /* TRAIL_TEST_GATE_H */
