/*
 * The HTTP benchmark on ulfius (bench/http_bench.h has the command line):
 * MHD's internal polling thread with epoll under ulfius, in both modes.
 * --trail: trail_ulfius_start() in place of
 * ulfius_start_framework_with_mhd_options(), which wraps the endpoint.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <trail/ulfius.h>
#include <ulfius.h>

#include "http_bench.h"

static int on_request(const struct _u_request *req, struct _u_response *resp,
                      void *user_data) {
  (void)user_data;
  hb_reply r;
  hb_handle(req->http_verb, req->url_path, &r);
  ulfius_set_binary_body_response(resp, (unsigned int)r.status, r.body, r.len);
  u_map_put(resp->map_header, "Content-Type", "application/json");
  return U_CALLBACK_COMPLETE;
}

int main(int argc, char **argv) {
  hb_args a;
  hb_parse(&a, argc, argv, 1);
  sigset_t stop;
  hb_block_signals(&stop);
  hb_trail_init(&a, "bench-ulfius");
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)a.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct _u_instance inst;
  if (ulfius_init_instance(&inst, (unsigned int)a.port, &addr, NULL) != U_OK) {
    fprintf(stderr, "http_ulfius: cannot set up ulfius\n");
    hb_trail_shutdown(&a);
    return 1;
  }
  ulfius_add_endpoint_by_val(&inst, "GET", "/api/orders", "/:id", 0, on_request,
                             NULL);
  ulfius_set_default_endpoint(&inst, on_request, NULL);
  unsigned int flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC;
  const struct MHD_OptionItem options[] = {{MHD_OPTION_END, 0, NULL}};
  static trail_ulfius tu;
  trail_http_config cfg;
  int rc;
  if (a.trail) {
    hb_http_config(&cfg);
    trail_ulfius_init(&tu, &inst, &cfg);
    rc = trail_ulfius_start(&tu, flags, options);
  } else {
    /* what trail_ulfius_start() passes, without the adapter's hooks: the
     * two ulfius requires and the bound address */
    struct MHD_OptionItem plain[] = {
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)mhd_request_completed, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_END, 0, NULL}};
    rc = ulfius_start_framework_with_mhd_options(&inst, flags, plain);
  }
  if (rc != U_OK) {
    fprintf(stderr, "http_ulfius: cannot start on port %d (%d)\n", a.port, rc);
    ulfius_clean_instance(&inst);
    hb_trail_shutdown(&a);
    return 1;
  }
  hb_ready();
  hb_wait_stop(&stop);
  ulfius_stop_framework(&inst);
  if (a.trail)
    trail_ulfius_clean(&tu);
  ulfius_clean_instance(&inst);
  hb_trail_shutdown(&a);
  return 0;
}
