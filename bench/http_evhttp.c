/*
 * The HTTP benchmark on libevent's evhttp (bench/http_bench.h has the
 * command line): one event loop on the main thread, in both modes.
 * --trail: trail_evhttp_handle() as the generic callback and
 * trail_evhttp_send_reply(); --plain: the callback itself and
 * evhttp_send_reply().
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <trail/evhttp.h>

#include "http_bench.h"

static const char *method_of(struct evhttp_request *req) {
  return evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" : "OTHER";
}

static void on_request(struct evhttp_request *req, void *arg) {
  (void)arg;
  hb_reply r;
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  hb_handle(method_of(req), uri ? evhttp_uri_get_path(uri) : NULL, &r);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "application/json");
  struct evbuffer *body = evbuffer_new();
  if (body == NULL) {
    evhttp_send_error(req, 503, NULL);
    return;
  }
  evbuffer_add_reference(body, r.body, r.len, NULL, NULL);
  if (hb_trail_on)
    trail_evhttp_send_reply(req, r.status, NULL, body);
  else
    evhttp_send_reply(req, r.status, r.status == 200 ? "OK" : "Not Found",
                      body);
  evbuffer_free(body);
}

static void on_stop(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  event_base_loopbreak(arg);
}

int main(int argc, char **argv) {
  hb_args a;
  hb_parse(&a, argc, argv, 1);
  hb_trail_init(&a, "bench-evhttp");
  struct event_base *base = event_base_new();
  struct evhttp *http = base ? evhttp_new(base) : NULL;
  if (http == NULL) {
    fprintf(stderr, "http_evhttp: cannot create the event loop\n");
    hb_trail_shutdown(&a);
    return 1;
  }
  static trail_http_config cfg;
  static trail_evhttp_handler handler;
  if (a.trail) {
    event_set_log_callback(trail_evhttp_log);
    hb_http_config(&cfg);
    trail_evhttp_handler_init(&handler, &cfg, on_request, NULL);
    evhttp_set_gencb(http, trail_evhttp_handle, &handler);
  } else {
    evhttp_set_gencb(http, on_request, NULL);
  }
  struct event *term = evsignal_new(base, SIGTERM, on_stop, base);
  struct event *intr = evsignal_new(base, SIGINT, on_stop, base);
  if (term == NULL || intr == NULL || event_add(term, NULL) != 0 ||
      event_add(intr, NULL) != 0 ||
      evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)a.port) != 0) {
    fprintf(stderr, "http_evhttp: cannot listen on port %d\n", a.port);
    hb_trail_shutdown(&a);
    return 1;
  }
  hb_ready();
  event_base_dispatch(base);
  event_free(term);
  event_free(intr);
  evhttp_free(http);
  event_base_free(base);
  hb_trail_shutdown(&a);
  return 0;
}
