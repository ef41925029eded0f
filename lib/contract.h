/*
 * The line contract (docs/log-format.md, the interface with every reader):
 * the keys trail itself writes, in the order a line carries them, spelt
 * once here. The encoder, the context, the loggers, the sinks' service
 * segment, the reserved-key rule and the crash line all take them from
 * this file; lengths are the compiler's (TRAIL__LIT_LEN), never counted by
 * hand.
 */
#ifndef TRAIL_CONTRACT_H
#define TRAIL_CONTRACT_H

#define TRAIL__K_TIMESTAMP "timestamp"
#define TRAIL__K_LEVEL "level"
#define TRAIL__K_LOGGER "logger"
#define TRAIL__K_MESSAGE "message"
#define TRAIL__K_SERVICE "service"
#define TRAIL__K_REQUEST_ID "request_id"
#define TRAIL__K_USER_ID "user_id"
#define TRAIL__K_TRACE_ID "trace_id"
#define TRAIL__K_SPAN_ID "span_id"
#define TRAIL__K_CALLER "caller"
#define TRAIL__K_BUFFERED "buffered"
#define TRAIL__K_TRUNCATED "truncated"

/*
 * The keys in line order (buffered, on a line its request kept back, and
 * truncated, which ends a cut line, after the fields). X(key)
 * for each; tests/test_contract.c checks this list against the schema and
 * the reserved-key rule against this list.
 */
#define TRAIL__CONTRACT_KEYS(X)                                                \
  X(TRAIL__K_TIMESTAMP)                                                        \
  X(TRAIL__K_LEVEL)                                                            \
  X(TRAIL__K_LOGGER)                                                           \
  X(TRAIL__K_MESSAGE)                                                          \
  X(TRAIL__K_SERVICE)                                                          \
  X(TRAIL__K_REQUEST_ID)                                                       \
  X(TRAIL__K_USER_ID)                                                          \
  X(TRAIL__K_TRACE_ID)                                                         \
  X(TRAIL__K_SPAN_ID)                                                          \
  X(TRAIL__K_CALLER)                                                           \
  X(TRAIL__K_BUFFERED)                                                         \
  X(TRAIL__K_TRUNCATED)

/* The length of a string literal. */
#define TRAIL__LIT_LEN(lit) (sizeof(lit) - 1)
/* What opens a key in a line: ,"key": (and the first key: {"key":). */
#define TRAIL__SEG(key) ",\"" key "\":"
#define TRAIL__FIRST_SEG(key) "{\"" key "\":"
/* The same, with the opening quote of a string value: ,"key":" */
#define TRAIL__SEG_STR(key) ",\"" key "\":\""

#endif /* TRAIL_CONTRACT_H */
