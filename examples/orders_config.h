/*
 * What the example services configure alike, shared with the tests that
 * run them: a request slower than ORDERS_SLOW_MS milliseconds gets an
 * access line at level warn at least (trail_http_config.slow_ms), and each
 * request keeps its debug lines (below the default level, info) in a ring
 * of ORDERS_BUFFER_BYTES, written only when it fails
 * (trail_http_config.buffer_bytes): the 503 route's "query" line. A
 * request body may be ORDERS_BODY_MAX bytes long; a longer one is answered
 * 413, with an access line where the server lets the service see it. On
 * SIGINT or SIGTERM the requests in flight get ORDERS_DRAIN_SECONDS to
 * finish.
 */
#ifndef TRAIL_EXAMPLE_ORDERS_CONFIG_H
#define TRAIL_EXAMPLE_ORDERS_CONFIG_H

#define ORDERS_SLOW_MS 500
#define ORDERS_BUFFER_BYTES (64 * 1024)
#define ORDERS_BODY_MAX ((size_t)1024 * 1024)
#define ORDERS_DRAIN_SECONDS 10

#endif /* TRAIL_EXAMPLE_ORDERS_CONFIG_H */
