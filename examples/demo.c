/*
 * The demo service: an "orders-api" that serves a few simulated requests the
 * way a real handler would, so that a newcomer sees trail's lines. Each
 * request gets a context (its ids), is entered while it is handled, and ends
 * with an access line from the "http" logger; the handlers log through the
 * "db" and "orders" loggers without passing any id around.
 *
 *   build/examples/demo                  # the lines, as the service
 *                                        # writes them
 *   TRAIL_LEVEL=debug build/examples/demo   # with the db queries
 *   TRAIL_CALLER=1 build/examples/demo      # with file:line
 *   build/examples/demo --long           # one more client, whose 20 KB
 *                                        # User-Agent makes a cut line
 *   build/examples/demo --help
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <trail.h>

#include "cli.h"

static const char USAGE[] =
    "usage: demo [--long]\n"
    "\n"
    "A pretend orders service: it handles a few simulated requests,\n"
    "writes trail's JSON lines on stdout, and exits. TRAIL_LEVEL=debug\n"
    "adds the database queries, TRAIL_CALLER=1 the file and line.\n"
    "\n"
    "  --long       one more request, whose 20 KB User-Agent makes a line\n"
    "               that trail cuts\n"
    "  -h, --help   print this help and exit\n";

typedef struct request {
  const char *method;
  const char *path;
  const char *request_id;  /* X-Request-ID header, or NULL */
  const char *traceparent; /* traceparent header, or NULL */
  const char *user;        /* authenticated user, or NULL */
  const char *user_agent;
  const char *body;
} request;

static trail_logger *http_log, *db_log, *orders_log;

static double ms_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
         (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* A pretend database call: what a handler's helpers would log. */
static int db_query(const char *sql, long id, int *rows) {
  trail_debug(db_log, "query", TRAIL_STR("sql", sql), TRAIL_INT("id", id));
  if (id == 7) {
    trail_errorf(db_log, "query timed out after %d ms", 250);
    return -1;
  }
  *rows = id == 999 ? 0 : 1;
  trail_debug(db_log, "query finished", TRAIL_INT("rows", *rows),
              TRAIL_DOUBLE("ms", 1.25 + (double)id / 100.0));
  return 0;
}

static int get_order(const request *rq, size_t *bytes) {
  long id = 0;
  sscanf(rq->path, "/api/orders/%ld", &id);
  int rows = 0;
  if (db_query("SELECT * FROM orders WHERE id = $1", id, &rows) != 0) {
    *bytes = 0;
    return 503;
  }
  if (rows == 0) {
    trail_warn(orders_log, "order not found", TRAIL_INT("order_id", id));
    *bytes = 27;
    return 404;
  }
  trail_info(orders_log, "order loaded", TRAIL_INT("order_id", id),
             TRAIL_STR("state", "shipped"));
  *bytes = 512;
  return 200;
}

static int post_order(const request *rq, size_t *bytes) {
  json_error_t err;
  json_t *body = json_loads(rq->body, 0, &err);
  if (body == NULL) {
    trail_warn(orders_log, "invalid JSON body", TRAIL_STR("error", err.text),
               TRAIL_INT("column", err.column));
    *bytes = 40;
    return 400;
  }
  json_int_t qty = json_integer_value(json_object_get(body, "quantity"));
  /* The request's own data can be logged as it came, as a json_t. */
  trail_info(orders_log, "order created", TRAIL_INT("order_id", 1001),
             TRAIL_INT("quantity", qty), TRAIL_JSON("items", body));
  json_decref(body);
  *bytes = 64;
  return 201;
}

/* What a middleware does around every request. */
static void serve(const request *rq) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);

  trail_ctx ctx;
  trail_ctx_init(&ctx);
  int bad_id =
      rq->request_id && trail_ctx_set_request_id(&ctx, rq->request_id) != 0;
  if (rq->traceparent)
    trail_ctx_set_traceparent(&ctx, rq->traceparent, TRAIL_NTS);
  if (rq->user)
    trail_ctx_set_user_id(&ctx, rq->user);
  trail_ctx *prev = trail_ctx_enter(&ctx);
  if (bad_id) /* logged under the new id, with what the client sent */
    trail_warn(http_log, "invalid X-Request-ID replaced",
               TRAIL_STR("received", rq->request_id));

  size_t bytes = 0;
  int status = strcmp(rq->method, "POST") == 0 ? post_order(rq, &bytes)
                                               : get_order(rq, &bytes);

  trail_level level = status >= 500   ? TRAIL_LEVEL_ERROR
                      : status >= 400 ? TRAIL_LEVEL_WARN
                                      : TRAIL_LEVEL_INFO;
  trail_field access[] = {
      TRAIL_STR("method", rq->method),
      TRAIL_STR("path", rq->path),
      TRAIL_INT("status", status),
      TRAIL_DOUBLE("duration_ms", ms_since(&t0)),
      TRAIL_UINT("bytes", bytes),
      TRAIL_STR("user_agent", rq->user_agent),
  };
  trail_log(http_log, level, "request completed", access,
            sizeof access / sizeof access[0]);
  trail_ctx_leave(prev);
}

int main(int argc, char **argv) {
  int long_line = 0;
  cli cl;
  cli_init(&cl, "demo", USAGE, argc, argv);
  while (cli_next(&cl))
    if (cli_flag(&cl, "--long"))
      long_line = 1;
    else
      cli_unknown(&cl);

  trail_init("orders-api");
  http_log = trail_logger_get("http");
  db_log = trail_logger_get("db");
  orders_log = trail_logger_get("orders");

  trail_info(NULL, "service started", TRAIL_INT("port", 8080),
             TRAIL_STR("version", trail_version()));

  const request requests[] = {
      {"GET", "/api/orders/42", "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91",
       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "user-4711",
       "curl/7.88.1", NULL},
      {"POST", "/api/orders", NULL, NULL, "user-4711", "orders-web/2.3",
       "{\"quantity\": 2, \"sku\": \"A-991\"}"},
      {"GET", "/api/orders/999", NULL, NULL, "user-0815", "curl/7.88.1", NULL},
      /* A hostile client: its header cannot break the line. */
      {"GET", "/api/orders/7", "bad id\r\n{\"level\":\"fatal\"}", NULL, NULL,
       "evil\n{\"forged\":true}", NULL},
      {"POST", "/api/orders", NULL, NULL, "user-0815", "orders-web/2.3",
       "{\"quantity\": "},
  };
  for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++)
    serve(&requests[i]);
  if (long_line) {
    char *agent = malloc(20001);
    if (agent != NULL) {
      memset(agent, 'A', 20000);
      agent[20000] = '\0';
      request big = {"GET", "/api/orders/42", NULL, NULL, "user-4711", agent,
                     NULL};
      serve(&big);
      free(agent);
    }
  }

  trail_counters c;
  trail_counters_get(&c);
  trail_info(NULL, "service stopping",
             TRAIL_UINT("lines_info", c.events[TRAIL_LEVEL_INFO]),
             TRAIL_UINT("lines_warn", c.events[TRAIL_LEVEL_WARN]),
             TRAIL_UINT("lines_error", c.events[TRAIL_LEVEL_ERROR]),
             TRAIL_UINT("write_errors", c.write_errors));
  trail_shutdown();
  return 0;
}
