/*
 * The HTTP benchmark on civetweb (bench/http_bench.h has the command line):
 * --threads worker threads (default 32: civetweb serves one connection per
 * thread, and wrk keeps 16 open), tcp_nodelay on, in both modes. --trail:
 * trail_civetweb_callbacks() and trail_civetweb_send().
 *
 * --plain is the fair twin of --trail: the same bytes on the wire in the
 * same number of writes, but for X-Request-ID. trail_civetweb_send() writes
 * a response's head and body in one mg_write() (civetweb's header API,
 * mg_response_header_send(), sends every header line in a send() of its
 * own); so --plain builds the same head (status line with civetweb's
 * reason phrase, Content-Type, Content-Length, Date, Connection) and sends
 * it with the body in one mg_write() too. What the benchmark measures is
 * then trail, not a write pattern.
 */
#include <civetweb.h>
#include <strings.h>
#include <time.h>
#include <trail/civetweb.h>

#include "../adapters/civetweb/imf_fixdate.h"
#include "http_bench.h"

/* keep-alive for an HTTP/1.1 request without Connection or a request
 * that asks for it (the server enables keep-alive); else close. */
static int plain_keep_alive(struct mg_connection *conn,
                            const struct mg_request_info *ri) {
  const char *c = mg_get_header(conn, "Connection");
  if (c != NULL)
    return strcasecmp(c, "keep-alive") == 0;
  return strcmp(ri->http_version, "1.1") == 0;
}

static int plain_send(struct mg_connection *conn,
                      const struct mg_request_info *ri, const hb_reply *r) {
  char buf[16384], date[64];
  trail__imf_fixdate(date, sizeof date);
  int keep = plain_keep_alive(conn, ri);
  if (!keep)
    mg_disable_connection_keep_alive(conn);
  int n = snprintf(buf, sizeof buf,
                   "HTTP/%s %d %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nDate: %s\r\nConnection: %s\r\n"
                   "\r\n",
                   ri->http_version, r->status,
                   mg_get_response_code_text(conn, r->status), r->len, date,
                   keep ? "keep-alive" : "close");
  if (n < 0 || (size_t)n + r->len > sizeof buf)
    return 500;
  int body = strcmp(ri->request_method, "HEAD") != 0;
  if (body)
    memcpy(buf + n, r->body, r->len);
  mg_write(conn, buf, (size_t)n + (body ? r->len : 0));
  return r->status;
}

static int on_request(struct mg_connection *conn, void *cbdata) {
  (void)cbdata;
  const struct mg_request_info *ri = mg_get_request_info(conn);
  hb_reply r;
  hb_handle(ri->request_method, ri->local_uri, &r);
  if (hb_trail_on)
    return trail_civetweb_send(conn, r.status, "application/json", r.body,
                               r.len);
  return plain_send(conn, ri, &r);
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
