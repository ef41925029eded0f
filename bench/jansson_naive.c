/*
 * The naive program: what a C service gets by building each line as a
 * jansson tree. "jansson_naive MODE N PATH [THREADS]".
 *
 * Per event: a json_t object with the 13 keys (the service too, there is no
 * logger to bind it to), the timestamp from gmtime_r() and strftime(), then
 * json_dumps() and json_decref().
 *
 * MODE sync:  one writev(2) per line (the text and its "\n").
 * MODE async: stdio: fputs() to a fully buffered FILE, locked per line so
 *             that threads never interleave.
 */
#include <jansson.h>
#include <time.h>

#include "workload.h"

typedef struct naive_out {
  int fd;
  FILE *fp; /* async mode */
} naive_out;

static void timestamp(char *out, size_t size) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void log_events(wl_thread *t) {
  const naive_out *out = t->user;
  for (uint64_t i = 0; i < t->count; i++) {
    char ts[64];
    timestamp(ts, sizeof ts);
    json_t *o = json_object();
    json_object_set_new(o, "timestamp", json_string(ts));
    json_object_set_new(o, "level", json_string(WL_LEVEL));
    json_object_set_new(o, "logger", json_string(WL_LOGGER));
    json_object_set_new(o, "message", json_string(WL_MESSAGE));
    json_object_set_new(o, "service", json_string(WL_SERVICE));
    json_object_set_new(o, "request_id", json_string(WL_REQUEST_ID));
    json_object_set_new(o, "user_id", json_string(WL_USER_ID));
    json_object_set_new(o, "trace_id", json_string(WL_TRACE_ID));
    json_object_set_new(o, "span_id", json_string(WL_SPAN_ID));
    json_object_set_new(o, "method", json_string(WL_METHOD));
    json_object_set_new(o, "path", json_string(WL_PATH));
    json_object_set_new(o, "status", json_integer(WL_STATUS));
    json_object_set_new(o, "duration_ms", json_real(12.5 + (i % 100) / 100.0));
    char *s = json_dumps(o, JSON_COMPACT);
    if (s == NULL)
      die("jansson_naive: json_dumps");
    size_t len = strlen(s);

    if (out->fp != NULL) {
      flockfile(out->fp);
      fputs(s, out->fp);
      putc_unlocked('\n', out->fp);
      funlockfile(out->fp);
    } else {
      struct iovec iov[2] = {{s, len}, {(void *)"\n", 1}};
      ssize_t n = writev(out->fd, iov, 2);
      if (n < 0 && errno != EINTR)
        die("jansson_naive: writev");
      if (n < 0)
        n = 0;
      /* A short write: finish the line (never seen on a regular file). */
      if ((size_t)n < len && wl_write_all(out->fd, s + n, len - (size_t)n) != 0)
        die("jansson_naive: write");
      if ((size_t)n < len + 1 && wl_write_all(out->fd, "\n", 1) != 0)
        die("jansson_naive: write");
    }
    free(s);
    json_decref(o);
  }
}

int main(int argc, char **argv) {
  wl_args a;
  wl_parse_args(argc, argv, "sync|async", &a);
  naive_out out = {.fd = wl_open(&a), .fp = NULL};
  if (strcmp(a.mode, "async") == 0 && (out.fp = fdopen(out.fd, "a")) == NULL)
    die("jansson_naive: fdopen");
  wl_run(&a, log_events, &out);
  if (out.fp != NULL ? fclose(out.fp) != 0 : close(out.fd) != 0)
    die("jansson_naive: close");
  return 0;
}
