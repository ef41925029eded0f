/*
 * The middleware core's cost per request, without a server: what trail adds
 * to every request whatever the server, measured where nothing else runs.
 *
 *   http_core [-n REQUESTS] [-o PATH] [sync|async]
 *
 * Each request is what an adapter does: trail_http_begin(), two headers,
 * trail_http_headers_done(), the context entered for one handler line (the
 * workload's fields), trail_http_response() and trail_http_body(), then
 * trail_http_end() and its access line. Default: 1,000,000 requests after
 * 10,000 warm-up ones, async (TRAIL_ASYNC=1), to /dev/null. Prints the wall
 * time per request on the calling thread and the process's CPU time per
 * request (the async writer's included, up to trail_shutdown()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <trail.h>
#include <trail/http.h>

static double seconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void one_request(trail_http_request *hr, trail_logger *lg, long i) {
  trail_http_begin(hr, NULL, "GET", "/api/orders/42", TRAIL_NTS, "127.0.0.1");
  trail_http_header(hr, "Host", TRAIL_NTS, "127.0.0.1:8080", TRAIL_NTS);
  trail_http_header(hr, "User-Agent", TRAIL_NTS, "wrk", TRAIL_NTS);
  trail_http_headers_done(hr);
  trail_ctx *prev = trail_ctx_enter(trail_http_ctx(hr));
  trail_info(lg, "order loaded", TRAIL_INT("order_id", 42),
             TRAIL_STR("state", "shipped"),
             TRAIL_DOUBLE("duration_ms", 12.5 + (double)(i % 100) / 100.0));
  trail_ctx_leave(prev);
  trail_http_response(hr, 200);
  trail_http_body(hr, 51);
  trail_http_end(hr, 200, 51);
}

static _Noreturn void usage(void) {
  fprintf(stderr, "usage: http_core [-n REQUESTS] [-o PATH] [sync|async]\n");
  exit(2);
}

int main(int argc, char **argv) {
  long n = 1000000;
  const char *path = "/dev/null";
  int opt;
  while ((opt = getopt(argc, argv, "n:o:h")) != -1) {
    if (opt == 'n' && (n = strtol(optarg, NULL, 10)) > 0)
      continue;
    if (opt == 'o')
      path = optarg;
    else
      usage();
  }
  const char *mode = optind < argc ? argv[optind] : "async";
  if (strcmp(mode, "sync") != 0 && strcmp(mode, "async") != 0)
    usage();
  setenv("TRAIL_OUTPUT", path, 1);
  if (strcmp(mode, "async") == 0)
    setenv("TRAIL_ASYNC", "1", 1);
  if (trail_init("orders-api") != 0)
    return 1;
  trail_logger *lg = trail_logger_get("orders");
  static trail_http_request hr;
  for (long i = 0; i < 10000; i++)
    one_request(&hr, lg, i);
  double w0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (long i = 0; i < n; i++)
    one_request(&hr, lg, i);
  double w1 = seconds(CLOCK_MONOTONIC);
  trail_shutdown();
  double c1 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  printf("http_core %s: %ld requests, %.0f ns/request on the calling thread, "
         "%.0f ns/request of CPU (writer included)\n",
         mode, n, (w1 - w0) / (double)n * 1e9, (c1 - c0) / (double)n * 1e9);
  return 0;
}
