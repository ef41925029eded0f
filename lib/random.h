/*
 * Random bytes for ids (lib/random.c). Both return 0, or -errno when the
 * kernel gives no randomness (buf is then undefined).
 */
#ifndef TRAIL_RANDOM_H
#define TRAIL_RANDOM_H

#include <stddef.h>

/* n bytes straight from the kernel: thread-, fork- and async-signal-safe. */
int trail__random_kernel(void *buf, size_t n);

/* n bytes from the calling thread's pool, refilled from the kernel: thread-
 * and fork-safe (a child never draws its parent's bytes), not
 * async-signal-safe. */
int trail__random_pooled(void *buf, size_t n);

#endif /* TRAIL_RANDOM_H */
