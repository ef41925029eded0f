/*
 * Several inputs in time order: a k-way merge that holds one line of each
 * input at a time, so that `trail-pretty a.log b.log` tells the story of two
 * services as one. Each step writes, of the lines waiting, the one with the
 * earliest time; on equal times, the one of the input named first. A line
 * without a time that can be read (text, or an event without a time) takes
 * the time of the line before it in its own input, or the earliest of all
 * at the start of the input: it stays where it was among the lines of its
 * input. The lines of one input are never reordered: an input whose times
 * go backwards is merged as it is, not sorted.
 */
#include <stdint.h>
#include <stdlib.h>

#include "pretty.h"

/* The line waiting from one input. */
typedef struct head {
  bool live; /* a line is waiting */
  pretty_record rec;
  pretty_time key;  /* the time it is merged by */
  pretty_time last; /* the time of the last line of this input with one */
} head;

/* Reads the next line of `in` into h; at the end of the input, h is no
   longer live, and a read error closes the input and sets *status to 1. */
static void advance(pretty_state *st, pretty_input *in, head *h, bool final,
                    int *status) {
  pretty_chunk line;
  int rc = pretty_input_next(in, st->out, final, &line);
  h->live = rc > 0;
  if (rc < 0) {
    pretty_input_close(in);
    *status = 1;
  }
  if (rc <= 0)
    return;
  pretty_record_read(st, &h->rec, line.s, line.n, line.cut);
  if (h->rec.ev != NULL && h->rec.e.has_time)
    h->last = h->rec.e.time;
  h->key = h->last;
}

/* The live head with the earliest key, the first input's on a tie; -1 when
   none is live. */
static long earliest(const head *heads, size_t n) {
  long best = -1;
  for (size_t i = 0; i < n; i++) {
    if (heads[i].live &&
        (best < 0 || pretty_time_cmp(heads[i].key, heads[best].key) < 0))
      best = (long)i;
  }
  return best;
}

/*
 * Writes the lines of the open inputs, merged in time order, up to the end
 * of each (see pretty_input_next() for `final`). Returns 0, or 1 when an
 * input could not be read.
 */
int pretty_merge(pretty_state *st, pretty_input *inputs, size_t n, bool final) {
  int status = 0;
  head *heads = calloc(n, sizeof *heads);
  if (heads == NULL) {
    fputs("trail-pretty: out of memory\n", stderr);
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    heads[i].last.sec = INT64_MIN;
    if (inputs[i].fd >= 0)
      advance(st, &inputs[i], &heads[i], final, &status);
  }
  for (long i; (i = earliest(heads, n)) >= 0;) {
    pretty_record_write(st, &heads[i].rec);
    pretty_record_free(&heads[i].rec);
    advance(st, &inputs[i], &heads[i], final, &status);
  }
  free(heads);
  return status;
}
