/*
 * The HTTP benchmark on civetweb (bench/http_bench.h has the command line):
 * --threads worker threads (default 32: civetweb serves one connection per
 * thread, and wrk keeps 16 open), tcp_nodelay on, in both modes. --trail:
 * trail_civetweb_callbacks() and trail_civetweb_send(); --plain builds the
 * same response with civetweb's calls.
 */
#include <civetweb.h>
#include <trail/civetweb.h>

#include "http_bench.h"

static int on_request(struct mg_connection *conn, void *cbdata) {
  (void)cbdata;
  const struct mg_request_info *ri = mg_get_request_info(conn);
  hb_reply r;
  hb_handle(ri->request_method, ri->local_uri, &r);
  if (hb_trail_on)
    return trail_civetweb_send(conn, r.status, "application/json", r.body,
                               r.len);
  char cl[32];
  snprintf(cl, sizeof cl, "%zu", r.len);
  mg_response_header_start(conn, r.status);
  mg_response_header_add(conn, "Content-Type", "application/json", -1);
  mg_response_header_add(conn, "Content-Length", cl, -1);
  mg_response_header_send(conn);
  mg_write(conn, r.body, r.len);
  return r.status;
}

int main(int argc, char **argv) {
  hb_args a;
  hb_parse(&a, argc, argv, 32);
  sigset_t stop;
  hb_block_signals(&stop);
  hb_trail_init(&a, "bench-civetweb");
  struct mg_callbacks callbacks;
  memset(&callbacks, 0, sizeof callbacks);
  trail_http_config cfg;
  if (a.trail) {
    hb_http_config(&cfg);
    trail_civetweb_callbacks(&callbacks, &cfg);
  }
  char ports[32], threads[16];
  snprintf(ports, sizeof ports, "127.0.0.1:%d", a.port);
  snprintf(threads, sizeof threads, "%d", a.threads);
  const char *options[] = {
      "listening_ports",   ports, "num_threads", threads, "tcp_nodelay", "1",
      "enable_keep_alive", "yes", NULL};
  mg_init_library(0);
  struct mg_context *ctx = mg_start(&callbacks, NULL, options);
  if (ctx == NULL) {
    fprintf(stderr, "http_civetweb: cannot start on %s\n", ports);
    mg_exit_library();
    hb_trail_shutdown(&a);
    return 1;
  }
  mg_set_request_handler(ctx, "/", on_request, NULL);
  hb_ready();
  hb_wait_stop(&stop);
  mg_stop(ctx);
  mg_exit_library();
  hb_trail_shutdown(&a);
  return 0;
}
