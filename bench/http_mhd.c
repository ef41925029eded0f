/*
 * The HTTP benchmark on libmicrohttpd (bench/http_bench.h has the command
 * line): one internal polling thread with epoll, in both modes. --trail:
 * trail_mhd_access_handler() around the handler, TRAIL_MHD_OPTIONS() and
 * trail_mhd_queue_response() in place of MHD_queue_response(), for the same
 * response (its body not copied) in both modes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>
#include <trail/mhd.h>

#include "http_bench.h"

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  (void)upload_size;
  /* MHD's usual pattern: the first call for a request only marks it (a
   * response queued from there closes the connection), the next answers. */
  static int seen;
  if (*con_cls == NULL) {
    *con_cls = &seen;
    return MHD_YES;
  }
  hb_reply r;
  hb_handle(method, url, &r);
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      r.len, (void *)r.body, MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "application/json");
  enum MHD_Result ret =
      cls != NULL /* --trail */
          ? trail_mhd_queue_response(conn, (unsigned int)r.status, resp, r.len)
          : MHD_queue_response(conn, (unsigned int)r.status, resp);
  MHD_destroy_response(resp);
  return ret;
}

int main(int argc, char **argv) {
  hb_args a;
  hb_parse(&a, argc, argv, 1);
  sigset_t stop;
  hb_block_signals(&stop);
  hb_trail_init(&a, "bench-mhd");
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)a.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned int flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC;
  struct MHD_Daemon *d;
  static trail_mhd tm;
  if (a.trail) {
    trail_http_config cfg;
    hb_http_config(&cfg);
    trail_mhd_init(&tm, &cfg, on_request, &tm);
    d = MHD_start_daemon(flags, (uint16_t)a.port, NULL, NULL,
                         trail_mhd_access_handler, &tm,
                         MHD_OPTION_EXTERNAL_LOGGER, trail_mhd_error_log, NULL,
                         TRAIL_MHD_OPTIONS(&tm), MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&addr, MHD_OPTION_END);
  } else {
    d = MHD_start_daemon(flags, (uint16_t)a.port, NULL, NULL, on_request, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_END);
  }
  if (d == NULL) {
    fprintf(stderr, "http_mhd: cannot start on port %d\n", a.port);
    hb_trail_shutdown(&a);
    return 1;
  }
  hb_ready();
  hb_wait_stop(&stop);
  MHD_stop_daemon(d);
  hb_trail_shutdown(&a);
  return 0;
}
