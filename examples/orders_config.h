/*
 * What the example services configure alike, shared with the tests that
 * run them: a request slower than ORDERS_SLOW_MS milliseconds gets an
 * access line at level warn at least (trail_http_config.slow_ms), and each
 * request keeps its debug lines (below the default level, info) in a ring
 * of ORDERS_BUFFER_BYTES, written only when it fails
 * (trail_http_config.buffer_bytes): the 503 route's "query" line.
 */
#ifndef TRAIL_EXAMPLE_ORDERS_CONFIG_H
#define TRAIL_EXAMPLE_ORDERS_CONFIG_H

#define ORDERS_SLOW_MS 500
#define ORDERS_BUFFER_BYTES (64 * 1024)

#endif /* TRAIL_EXAMPLE_ORDERS_CONFIG_H */
