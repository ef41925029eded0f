/*
 * What the example services configure alike, shared with the tests that
 * run them: a request slower than ORDERS_SLOW_MS milliseconds gets an
 * access line at level warn at least (trail_http_config.slow_ms).
 */
#ifndef TRAIL_EXAMPLE_ORDERS_CONFIG_H
#define TRAIL_EXAMPLE_ORDERS_CONFIG_H

#define ORDERS_SLOW_MS 500

#endif /* TRAIL_EXAMPLE_ORDERS_CONFIG_H */
