/*
 * Declarations shared between trail's source files. Nothing here is part of
 * the public API: the names are trail__* and hidden from the shared library.
 */
#ifndef TRAIL_INTERNAL_H
#define TRAIL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "encode.h"
#include "trail.h"

#define TRAIL__NAME_MAX 128
/* What a service name may be (trail__name_valid), for messages. */
#define TRAIL__NAME_RULE                                                       \
  "1 to 128 printable ASCII characters, no space, quote, backslash, comma or " \
  "'='"
/* What a logger name may be (trail__logger_name_valid), for messages. */
#define TRAIL__LOGGER_NAME_RULE                                                \
  "1 to 128 ASCII letters, digits, '.', '_' or '-'"
#define TRAIL__REDACT_MAX 32    /* sensitive keys */
#define TRAIL__REDACT_TEXT 2048 /* their bytes */
#define TRAIL__MAX_SINKS 16
#define TRAIL__MAX_LINE_DEFAULT 16384
#define TRAIL__MAX_LINE_MIN 2048
#define TRAIL__MAX_LINE_MAX ((size_t)16 * 1024 * 1024)
/* ,"truncated":true}\n : what a cut line needs after its last value. */
#define TRAIL__TAIL_RESERVE 19

/*
 * Thread-locals of a shared library cost a call to __tls_get_addr per access
 * in the default model; initial-exec makes each one an offset from the
 * thread pointer. trail's few bytes fit the static TLS surplus that glibc
 * keeps for libraries loaded with dlopen().
 */
#define TRAIL__TLS _Thread_local __attribute__((tls_model("initial-exec")))

#define TRAIL__LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define TRAIL__LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define TRAIL__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define TRAIL__ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

/* ---- names (level.c) --------------------------------------------------- */

/* 1 when s[0..len) is a valid service name. */
int trail__name_valid(const char *s, size_t len);
/* 1 when s[0..len) is a valid logger name (a narrower set). */
int trail__logger_name_valid(const char *s, size_t len);

/* A parsed TRAIL_LEVEL value. */
typedef struct trail__level_rule {
  char name[TRAIL__NAME_MAX + 1];
  size_t len;
  trail_level level;
} trail__level_rule;

typedef struct trail__level_spec {
  trail_level deflt;
  size_t nrules;
  trail__level_rule rules[32];
} trail__level_spec;

/* Parses "info,db=debug"; on error fills err (if given) and returns < 0. */
int trail__level_spec_parse(const char *spec, trail__level_spec *out,
                            trail_config_error *err, const char *source);
/* The level the spec gives a logger of that name (longest dotted match). */
trail_level trail__level_spec_lookup(const trail__level_spec *spec,
                                     const char *name, size_t len);

/* ---- keys and fields (fields.c) ---------------------------------------- */

/* Where each key of a line sits: offsets into a buffer's data. */
typedef struct trail__key {
  uint32_t off;
  uint32_t len;
} trail__key;

typedef struct trail__keyset {
  trail__key *keys;
  size_t n;
  size_t cap;
} trail__keyset;

/* A field's key as written: "_" for NULL; its length given or measured. */
static inline const char *trail__field_key(const trail_field *f, size_t *klen) {
  const char *key = f->key ? f->key : "_";
  *klen = f->key && f->klen ? f->klen : strlen(key);
  return key;
}

/* 1 when the escaped key text k[0..len) is one of the reserved keys. */
int trail__key_reserved(const char *k, size_t len);
/*
 * Appends ,"key":value for one field, applying the rename rule against the
 * reserved keys and the keys already in ks (the key is recorded in ks, which
 * must have room). 0 when written whole, 1 when written cut, -1 when nothing
 * was written for lack of room (b->truncated is set in both last cases).
 */
int trail__put_field(trail__buf *b, trail__keyset *ks, const trail_field *f);
/*
 * Copies one pre-encoded field ,"key":value whose key text is
 * seg[key.off..key.off+key.len) and which ends at end, renaming its key if it
 * collides. Same returns as trail__put_field.
 */
int trail__copy_field(trail__buf *b, trail__keyset *ks, const char *seg,
                      trail__key key, size_t start, size_t end, int redact);
struct trail__conf;
/*
 * Copies a pre-encoded run of bound fields seg[0..seg_len) (keys: nkeys key
 * spans into seg) field by field with the rename rule. With a conf, the
 * value of each key that conf's list marks sensitive is replaced by the
 * redaction marker (for a run encoded under another list).
 */
void trail__copy_fields(trail__buf *b, trail__keyset *ks, const char *seg,
                        size_t seg_len, const trail__key *keys, size_t nkeys,
                        const struct trail__conf *redact);

/* ---- redaction (redact.c) --------------------------------------------- */

/* 1 when the field key k[0..len) is a sensitive key (case-insensitive). */
int trail__redacted(const char *k, size_t len);
/* The same against the list of the snapshot c. */
int trail__redacted_in(const struct trail__conf *c, const char *k, size_t len);
/*
 * The filter in front of trail__redacted(): a key of length len (< 64) can
 * only be sensitive when bit trail__redact_sig(first, last) of the conf's
 * redact_sig[len] is set. Letters are folded to one case (c | 0x20), so
 * keys that match case-insensitively fall on the same bit.
 */
static inline unsigned trail__redact_sig(unsigned char first,
                                         unsigned char last) {
  return (((first | 0x20u) * 7u) ^ (last | 0x20u)) & 63u;
}
/*
 * Parses "password,token,..." into c, with a new redaction generation; < 0
 * with err filled on a bad list.
 */
int trail__redact_parse(struct trail__conf *c, const char *list,
                        trail_config_error *err, const char *source);
/* What starts a list that adds to the default list instead of replacing it. */
#define TRAIL__REDACT_ADD '+'
/* 1 when list starts with TRAIL__REDACT_ADD (after white space). */
int trail__redact_list_adds(const char *list);
/* The default keys c does not redact, ", "-separated; returns how many. */
size_t trail__redact_defaults_dropped(const struct trail__conf *c, char *out,
                                      size_t cap);
#define TRAIL__REDACTED "\"[REDACTED]\""

/* ---- clock (clock.c) --------------------------------------------------- */

/* Milliseconds on the monotonic clock (trail_now_ns(): async-signal-safe). */
static inline int64_t trail__mono_ms(void) { return trail_now_ns() / 1000000; }

#define TRAIL__TIMESTAMP_LEN 27 /* 2026-11-27T06:22:38.123456Z */
/* Writes the current UTC time, RFC 3339 with microseconds; no NUL. */
void trail__timestamp(char out[TRAIL__TIMESTAMP_LEN]);
/* The same for a given time (tests). */
void trail__timestamp_at(char out[TRAIL__TIMESTAMP_LEN], int64_t sec,
                         long usec);

/*
 * The current wall-clock time, UTC, to the microsecond (CLOCK_REALTIME:
 * Loki orders lines by it, so it must be the real time, not a monotonic
 * one). Inline: every event reads it.
 */
static inline void trail__now(int64_t *sec, long *usec) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  *sec = (int64_t)ts.tv_sec;
  *usec = ts.tv_nsec / 1000;
}

/* The time stamp counter: see tsc.c. Off where there is none, and in a
 * build with -DTRAIL_TSC=OFF (clock_gettime only). */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(TRAIL_NO_TSC)
#define TRAIL__TSC 1
#else
#define TRAIL__TSC 0
#endif
#if TRAIL__TSC
static inline uint64_t trail__tsc(void) { return __builtin_ia32_rdtsc(); }
#else
static inline uint64_t trail__tsc(void) { return 0; }
#endif
/* 1 when the kernel keeps time with the counter (its clock source is tsc). */
int trail__tsc_usable(void);
/* Counter readings to wall-clock time, kept by the async writer. */
typedef struct trail__tsc_map {
  uint64_t tsc; /* the newest point */
  int64_t ns;
  uint64_t anchor_tsc; /* where the slope is measured from */
  int64_t anchor_ns;
  double ns_per_tick;
  int64_t slope_ns; /* the span the slope was measured over */
} trail__tsc_map;
void trail__tsc_map_init(trail__tsc_map *m);
void trail__tsc_map_update(trail__tsc_map *m);
void trail__tsc_to_time(const trail__tsc_map *m, uint64_t tsc, int64_t *sec,
                        long *usec);

/* ---- loggers (logger.c) ------------------------------------------------ */

typedef struct trail__sampler trail__sampler;

struct trail_logger {
  struct trail__logger_head head; /* must stay first */
  trail__sampler *sampler;        /* flood control, NULL when off */
  int level;                      /* the logger's own minimum */
  int registered;                 /* owned by the registry */
  size_t name_len;
  char name[TRAIL__NAME_MAX + 1];
  char name_seg[TRAIL__NAME_MAX + 16]; /* ,"logger":"name" */
  size_t name_seg_len;
  char *fields; /* bound fields, pre-encoded ,"k":v ... */
  size_t fields_len;
  uint32_t redact_gen; /* the redaction generation they were encoded under */
  int fields_cut;      /* a bound value was cut when bound */
  trail__key *keys;    /* their keys, offsets into fields */
  size_t nkeys;
  trail_logger *all_next; /* every logger, for threshold updates */
  trail_logger *all_prev;
  uint64_t carried; /* held back by a replaced sampler, not yet reported */
  int pins;         /* reports being written outside the lock (config lock) */
  int doomed;       /* freed while pinned: the last unpin frees it */
};

trail_logger *trail__root(void);
/* Recomputes every logger's threshold (config lock held). */
void trail__loggers_update_locked(void);
/* Applies a level spec to every logger (config lock held). */
void trail__loggers_apply_spec_locked(const trail__level_spec *spec);
/* The spec in force, for loggers made later (config lock held). */
extern trail__level_spec trail__spec;

/* ---- sampling (sample.c) ---------------------------------------------- */

/* 1 when the event passes the logger's sampler (or it has none). */
int trail__sample(trail_logger *lg, trail_level level, const char *msg);
/* The suppressed events not yet reported, and resets that count. */
uint64_t trail__sample_take(trail_logger *lg);
/* 1 when lg has held-back events not yet reported. */
int trail__sample_pending(const trail_logger *lg);
trail__sampler *trail__sampler_new(uint32_t first, uint32_t thereafter);
void trail__sampler_free(trail__sampler *s);
/* Replaces lg's sampler; returns the old one's unreported count. */
uint64_t trail__sampler_set_locked(trail_logger *lg, trail__sampler *s);
/* Keeps n held-back events of a replaced sampler for lg's next report. */
void trail__sampler_carry_locked(trail_logger *lg, uint64_t n);
void trail__samplers_free_retired_locked(void);
uint32_t trail__sampler_first(const trail__sampler *s);
uint32_t trail__sampler_thereafter(const trail__sampler *s);
/* Writes lg's report line: n events suppressed since the last one. */
void trail__sample_report(trail_logger *lg, uint64_t n);
/* Writes the pending suppression reports of every logger. */
void trail__sample_report_all(void);
/* fork() child: forgets the parent's unreported suppressions (logger.c). */
void trail__loggers_fork_child(void);
/* TRAIL_SAMPLING: the sampling new loggers get (first 0: none). */
extern uint32_t trail__sampling_first, trail__sampling_thereafter;
/* The sampler's clock, in seconds (tests replace it). */
extern uint64_t (*trail__sample_clock)(void);

/* ---- context (context.c) ----------------------------------------------- */

trail_ctx *trail__ctx_current(void);
/* ctx as trail_ctx_clear() leaves it, without clearing all its bytes. */
void trail__ctx_empty(trail_ctx *ctx);
/* The context's bound field key spans, as trail__key. */
size_t trail__ctx_keys(const trail_ctx *ctx, trail__key *out, size_t max);

/* ---- request buffering (buffer.c) -------------------------------------- */

/* What becomes of a line below its logger's level (trail__buffer_mode). */
enum { TRAIL__BUF_DROP = 0, TRAIL__BUF_KEEP = 1, TRAIL__BUF_THROUGH = 2 };
/* The entries of a request's ring, and the report of those dropped. */
enum { TRAIL__BUF_RECORD = 1, TRAIL__BUF_LINE = 2, TRAIL__BUF_DROPPED = 3 };

/* The lowest level any context buffers (TRAIL_LEVEL_OFF: none), which a
 * logger's threshold never exceeds: see logger.c. */
extern int trail__buffer_floor_v;
/* DROP, KEEP (into the ring) or THROUGH (the request failed: write it). */
int trail__buffer_mode(const trail_ctx *ctx, trail_level level);
/* 1 while ctx buffers and has not failed. */
int trail__buffer_active(const trail_ctx *ctx);
/*
 * Room for an entry of len bytes in ctx's ring: KEEP with *out set and the
 * ring locked until trail__buffer_commit(), THROUGH, or DROP (no room in
 * the pool, larger than the ring; counted as discarded).
 */
int trail__buffer_reserve(trail_ctx *ctx, size_t len, int kind,
                          trail_level level, char **out);
void trail__buffer_commit(trail_ctx *ctx);
/* Each entry, oldest first (a DROPPED report first, with len the count). */
typedef void (*trail__buffer_fn)(void *arg, int kind, trail_level level,
                                 const char *data, size_t len);
/* Marks ctx's request failed and hands fn its entries, once. */
void trail__buffer_drain(trail_ctx *ctx, trail__buffer_fn fn, void *arg);
/* The crash handler's look at ctx's entries (async-signal-safe). */
void trail__buffer_crash_each(trail_ctx *ctx, trail__buffer_fn fn, void *arg);
/* The line of a ring's record entry, marked buffered, into out (max bytes
 * of line, plus TRAIL__BUF_SLACK): its length, 0 for a torn record.
 * Async-signal-safe (log.c). */
size_t trail__buffer_record_line(const struct trail__conf *c, const char *data,
                                 size_t len, char *out, size_t max);
/* TRAIL_BUFFER's level and bytes for the middleware; 0 when unset. */
int trail__buffer_defaults(trail_level *level, size_t *bytes);
/* LEVEL,SIZE[,POOL]; 0 or -1. */
int trail__buffer_parse(const char *v, trail_level *level, size_t *bytes,
                        size_t *pool);
void trail__buffer_set_defaults(trail_level level, size_t bytes, size_t pool);
/* trail_shutdown(): no defaults, the default pool, the floor off (config
 * lock held; the caller recomputes the loggers' thresholds). */
void trail__buffer_reset_locked(void);

/* A byte count: digits and an optional k, m or g (KiB, MiB, GiB), not 0;
 * *end is left after it (config.c). 0 or -1. */
int trail__parse_bytes(const char *v, const char **end, uint64_t *out);

/* ---- process fields (process_fields.c) -------------------------------- */

#define TRAIL__PFIELDS_MAX 32     /* fields in a set */
#define TRAIL__PFIELDS_BYTES 1024 /* their encoded bytes, ,"k":v each */

/*
 * One set of process fields (trail_fields_set(), TRAIL_FIELDS), encoded once
 * with the rename rule against the reserved keys: immutable once published
 * in a configuration snapshot, and, like the snapshots, kept until
 * trail_shutdown() because a line being written may still read it.
 */
typedef struct trail__pfields {
  uint32_t gen;        /* this set's number, never 0, never reused */
  uint32_t redact_gen; /* the redaction list it was encoded under */
  size_t len;          /* bytes of seg */
  size_t nkeys;
  trail__key keys[TRAIL__PFIELDS_MAX]; /* offsets into seg */
  struct trail__pfields *all_next;     /* every set made, newest first */
  char seg[TRAIL__PFIELDS_BYTES + TRAIL__BUF_SLACK];
} trail__pfields;

/*
 * The set numbered gen (0, or none such: NULL), for an event read back from
 * a queue record: lock-free and async-signal-safe, one load for any of the
 * 64 newest sets, else a walk of the list of sets from the newest.
 */
const trail__pfields *trail__pfields_find(uint32_t gen);
/* Frees every set (config lock held, at trail_shutdown()). */
void trail__pfields_free_all_locked(void);
/*
 * Parses and applies a TRAIL_FIELDS value; < 0 with err filled (source
 * names the variable) when it is malformed or refused.
 */
int trail__fields_parse(const char *spec, trail_config_error *err,
                        const char *source);

/* ---- sinks (sink.c), the snapshot (state.c), configuration (config.c) -- */

enum trail__sink_kind {
  TRAIL__SINK_FD = 1,
  TRAIL__SINK_FILE,
  TRAIL__SINK_CALLBACK
};

typedef struct trail__rotate trail__rotate; /* rotate.c */

typedef struct trail__sink {
  int id;
  int kind;
  int min; /* minimum level */
  int fd;
  int is_regular; /* a regular file: O_APPEND writes are atomic */
  int is_socket;
  int guard_sigpipe; /* a pipe whose SIGPIPE must not kill us */
  int needs_lock;    /* a pipe or socket: see trail__sink_writev() */
  int fast_fd;       /* fd when a plain write(2) is safe for it, else -1 */
  int crash_stalled; /* the crash handler gave it up (crash thread only) */
  /*
   * A stop gave the async writer up while it was stuck in this sink
   * (async.c): every write skips it, and counts a write error, until that
   * writer's write returns. Atomic: set and cleared seq_cst, read relaxed.
   */
  int given_up;
  char *path; /* TRAIL__SINK_FILE */
  trail_sink_fn fn;
  void *user;
  pthread_mutex_t lock; /* pipes and sockets; a rotating file's writes */
  trail__rotate *rot;   /* rotation by size, NULL when none (rotate.c) */
  struct trail__sink *retired_next;
} trail__sink;

/*
 * What a logging call reads: an immutable snapshot, replaced as a whole
 * (copy, change, publish) so that readers need no lock. Old snapshots are
 * kept until trail_shutdown() because a thread may still be reading one.
 */
typedef struct trail__conf {
  size_t nsinks;
  trail__sink *sinks[TRAIL__MAX_SINKS];
  int min_level; /* lowest sink minimum; TRAIL_LEVEL_OFF with no sink */
  size_t service_seg_len;
  char service_seg[TRAIL__NAME_MAX + 16]; /* ,"service":"name" */
  char service[TRAIL__NAME_MAX + 1];
  /* redaction: keys (lowercase) in redact_text, NUL-separated */
  uint64_t redact_sig[64];    /* per key length: see trail__redact_sig() */
  uint32_t redact_by_len[64]; /* bit i set: key i has that length */
  uint8_t nredact;
  /*
   * The list's generation: a new one for each list parsed, so that bound
   * fields encoded under another list are told apart by one compare.
   */
  uint32_t redact_gen;
  uint16_t redact_off[TRAIL__REDACT_MAX];
  uint8_t redact_len[TRAIL__REDACT_MAX];
  char redact_text[TRAIL__REDACT_TEXT];
  const struct trail__pfields *pfields; /* process fields, NULL: none */
  struct trail__conf *retired_next;
} trail__conf;

/*
 * Writes seg (,"key":" of contract.h, n bytes), the valid name and its
 * closing quote into out; returns the length. For the logger and service
 * segments, made once per name.
 */
static inline size_t trail__string_seg(char *out, const char *seg, size_t n,
                                       const char *name, size_t len) {
  memcpy(out, seg, n);
  memcpy(out + n, name, len);
  out[n + len] = '"';
  return n + len + 1;
}

/* ---- locks and fork (state.c) ------------------------------------------ */

/* The lock order: a thread takes trail's locks in increasing rank only. */
enum trail__rank {
  TRAIL__RANK_LIFECYCLE = 1, /* async.c: the writer's start and stop */
  TRAIL__RANK_CONFIG,        /* trail__lock */
  TRAIL__RANK_QUEUE,         /* ring.c, async.c: the ring's slow moments */
  TRAIL__RANK_COUNTERS,      /* counters.c: the per-thread blocks */
  TRAIL__RANK_SINK, /* sink.c: a pipe or socket, across writev; rotate.c:
                      a rotating file, across its flock, stat and writev */
};
/* Checked builds abort when the order is broken. */
#if !defined(NDEBUG) || defined(TRAIL_LOCK_CHECK)
#define TRAIL__LOCK_CHECK 1
#else
#define TRAIL__LOCK_CHECK 0
#endif
/* Takes / releases m of that rank, with cancellation off while any is held. */
void trail__lock_take(pthread_mutex_t *m, int rank);
void trail__lock_drop(pthread_mutex_t *m, int rank);
/* How many trail locks this thread holds now. */
int trail__locks_held(void);
/* The system's page size (random.c). */
size_t trail__page_bytes(void);

/*
 * crash_stack.c: while the crash handler is installed, a thread gets an
 * alternate signal stack of its own the first time it logs or begins a
 * request, so that its stack overflow is reported too.
 */
extern int trail__crash_stacks_on;
extern TRAIL__TLS char trail__crash_stack_seen;
void trail__crash_stack_slow(void);
static inline void trail__crash_stack_thread(void) {
  if (!trail__crash_stack_seen &&
      __atomic_load_n(&trail__crash_stacks_on, __ATOMIC_RELAXED))
    trail__crash_stack_slow();
}

extern pthread_mutex_t trail__lock; /* serialises configuration changes */
static inline void trail__config_lock(void) {
  trail__lock_take(&trail__lock, TRAIL__RANK_CONFIG);
}
static inline void trail__config_unlock(void) {
  trail__lock_drop(&trail__lock, TRAIL__RANK_CONFIG);
}

/* The fork handlers' parts, called by state.c in rank order. */
void trail__async_fork_prepare(void);
void trail__async_fork_parent(void);
void trail__async_fork_child(void);
void trail__counters_fork_prepare(void);
void trail__counters_fork_release(void);
void trail__sinks_fork_child(void);

extern int trail__caller_on;
extern size_t trail__max_line_v;

extern trail__conf *trail__conf_current; /* NULL until the first change */
/* The snapshot of the defaults, made on first use. */
const trail__conf *trail__conf_default(void);
/* The snapshot in force. Inline: every event reads it. */
static inline const trail__conf *trail__conf_get(void) {
  const trail__conf *c = TRAIL__LOAD(&trail__conf_current);
  return c != NULL ? c : trail__conf_default();
}
/* A private copy of the current snapshot to change (config lock held). */
trail__conf *trail__conf_copy_locked(void);
/* Publishes c and retires the old snapshot (config lock held). */
void trail__conf_publish_locked(trail__conf *c);
/* Sets c's service name (valid name assumed). */
void trail__conf_set_service(trail__conf *c, const char *name, size_t len);
/* The defaults' stdout sink (sink.c); made on first use, never freed. */
trail__sink *trail__sink_default_stdout(void);
/* Retires c's sinks not in keep; frees the retired (config lock held). */
void trail__sinks_retire_locked(const trail__conf *c, const trail__conf *keep);
void trail__sinks_free_retired_locked(void);
/* Writes a finished line to every sink of c that takes level. */
void trail__sinks_write(const trail__conf *c, trail_level level,
                        const char *line, size_t len);
/* The kernel id of the thread handling a crash, 0 before any (crash.c). */
extern int trail__crash_tid;
/* From a thread about to write a line once trail__crash_tid is set: waits
 * for the process to die, unless it is the crashing thread. */
void trail__crash_park_others(void);
/* A line to s from the crash handler: async-signal-safe, never blocked
 * for good (a sink stalled for 1 s is given up for the rest of the crash). */
void trail__sink_write_crash(trail__sink *s, const char *p, size_t n);
struct iovec;
/* Finishes a line whose write(2) to s->fast_fd returned r, short of n. */
void trail__sink_write_rest(trail__sink *s, const char *p, size_t n, ssize_t r);
/* Writes cnt lines (one iovec each) to an fd sink; consumes iov. */
void trail__sink_writev(trail__sink *s, struct iovec *iov, int cnt);
/* The same without taking the sink's lock (the caller holds what it needs). */
void trail__sink_writev_unlocked(trail__sink *s, struct iovec *iov, int cnt);
/* Closes (a file's fd) and frees a sink not published or retired. */
void trail__sink_free(trail__sink *s);
/* Opens a file sink object (not yet published). */
int trail__sink_open_file(const char *path, trail_level min, trail__sink **out);
trail__sink *trail__sink_new_fd(int fd, trail_level min);
/* Makes s the only sink; returns its id or a negative code (s freed). */
int trail__sinks_replace(trail__sink *s);
/* ---- rotation by size (rotate.c) --------------------------------------- */

#define TRAIL__ROTATE_KEEP_MAX 1000 /* rotated files kept, at most */
/* A file sink that rotates past max_bytes, keeping keep files (unpublished). */
int trail__sink_open_rotating(const char *path, trail_level min,
                              uint64_t max_bytes, unsigned keep,
                              trail__sink **out);
/* Writes cnt lines to a rotating sink, rotating as needed; consumes iov. */
void trail__rotate_writev(trail__sink *s, struct iovec *iov, int cnt);
void trail__rotate_free(trail__rotate *r);
/* A forked child's own open of the lock file (config lock held). */
void trail__rotate_fork_child(trail__sink *s);
/* TRAIL_ROTATE's "SIZE,KEEP"; 0 or -1. */
int trail__rotate_parse(const char *v, uint64_t *max_bytes, unsigned *keep);
/* Makes the single file sink rotate; 0, -EINVAL (no such sink) or -errno. */
int trail__rotate_output(uint64_t max_bytes, unsigned keep);

/* ---- reopening on a signal (reopen.c) ---------------------------------- */

/* Set by the signal handler of trail_reopen_on_signal(). */
extern int trail__reopen_pending;
/* Reopens the files if the flag is set (and clears it). */
void trail__reopen_run(void);
/* Before a line is written: one relaxed load, a branch not taken. */
static inline void trail__reopen_check(void) {
  if (__builtin_expect(TRAIL__LOAD_RELAXED(&trail__reopen_pending), 0))
    trail__reopen_run();
}

/* Frees retired snapshots and sinks, closes owned fds (config lock held). */
void trail__conf_reset_locked(void);

/* 0 when k[0..len) cannot be one of c's sensitive keys; see redact_sig. */
static inline int trail__redact_filter(const trail__conf *c, const char *k,
                                       size_t len) {
  return len > 0 && len < 64 &&
         ((c->redact_sig[len] >>
           trail__redact_sig((unsigned char)k[0], (unsigned char)k[len - 1])) &
          1);
}

/* trail__redacted() behind the filter, inline for the per-field call. */
static inline int trail__maybe_redacted(const char *k, size_t len) {
  return trail__redact_filter(trail__conf_get(), k, len) &&
         trail__redacted(k, len);
}

/* ---- events (log.c, record.c) ------------------------------------------ */

/*
 * Everything one line is made of. In sync mode the pointers lead into the
 * caller's objects (logger, context, fields); an event deferred to the
 * async writer is copied into a queue record (record.c) and read back as
 * an event whose pointers lead into that record.
 */
typedef struct trail__event {
  trail_level level;
  int cut;         /* the message was cut before (the f variants) */
  int lfields_cut; /* a bound value of the logger was cut when bound */
  int64_t sec;     /* the time of the call, UTC */
  long usec;
  int tsc;              /* sec holds a time stamp counter reading instead */
  int buffered;         /* written from its request's buffer: marked so */
  const char *name_seg; /* ,"logger":"name" */
  size_t name_seg_len;
  const char *ids; /* the context's pre-encoded ids */
  size_t ids_len;
  const char *caller; /* file.c:42, not yet escaped */
  size_t caller_len;
  const char *lfields; /* the logger's bound fields, pre-encoded */
  size_t lfields_len;
  const trail__key *lkeys;
  size_t lnkeys;
  uint32_t lgen; /* the redaction generation of lfields, and of cfields */
  uint32_t cgen;
  const char *cfields; /* the context's bound fields, pre-encoded */
  size_t cfields_len;
  const trail__key *ckeys;
  size_t cnkeys;
  const char *msg;
  size_t msg_len;
  const trail_field *fields;
  size_t nfields;
  const struct trail__pfields *pf; /* the process fields, NULL: none */
} trail__event;

/* Most keys an event may have to be deferred (more: encoded by the caller). */
#define TRAIL__RECORD_KEYS_MAX 64
/* Keys an event read back from a record can have, process fields and the
 * line's own keys included: the keys array its encoding needs. */
#define TRAIL__EVENT_KEYS                                                      \
  (TRAIL__PFIELDS_MAX + 2 * TRAIL__RECORD_KEYS_MAX + TRAIL_CTX_FIELDS_MAX + 1)
/*
 * Encodes ev as one line into b (b->limit: the line's content budget, see
 * encode.h). keys must have room for the process fields' keys + lnkeys +
 * cnkeys + nfields + 1 keys.
 * Returns the line's length; *truncated tells whether something was cut.
 * Async-signal-safe for events read back from records (no json_t values).
 */
size_t trail__event_encode(trail__buf *b, trail__key *keys, size_t keys_cap,
                           const trail__conf *c, const trail__event *ev);

/*
 * Bytes of the record of ev, or 0 when ev cannot be deferred (json_t
 * values, too many keys): the caller then encodes it itself. slen gets the
 * length of each field's string (TRAIL__RECORD_KEYS_MAX entries).
 */
size_t trail__record_size(const trail__event *ev, uint32_t *slen);
/* Copies ev into dst (trail__record_size(ev) bytes, 8-aligned). */
void trail__record_write(char *dst, const trail__event *ev,
                         const uint32_t *slen);
/*
 * Reads a record of size bytes back: *ev points into rec and into fields,
 * which must have room for TRAIL__RECORD_KEYS_MAX fields. Returns 0, or -1
 * when the record does not hold together (its lengths run past size, a
 * bound key lies outside its fields): the crash handler may read a record
 * the writer is zeroing at that moment, and must not follow it anywhere.
 */
int trail__record_read(const char *rec, size_t size, trail__event *ev,
                       trail_field *fields);

/* ---- the async writer (async.c; its ring: ring.h, ring.c) ------------- */

enum {
  TRAIL__ASYNC_OFF = 0,
  TRAIL__ASYNC_QUEUED = 1,
  TRAIL__ASYNC_DROPPED = 2
};
/* 1 while the writer runs (may be stale: trail__async_push* decide). */
extern int trail__async_on;
/* Queues a finished line when the writer runs; see the enum. */
int trail__async_push(trail_level level, const char *line, size_t len);
/*
 * Queues ev for the writer to encode, when the writer runs and keeps up
 * (the ring at most half full) and ev can be deferred, stamping it with
 * the time (ev->sec, usec, tsc); TRAIL__ASYNC_OFF otherwise: the caller
 * then stamps and encodes the line and calls trail__async_push().
 */
int trail__async_push_event(trail__event *ev);
int trail__async_flush(void);
/* The crash handler's drain: write(2) only, no lock. */
void trail__async_crash_drain(void);
/*
 * The async writer's progress word (async.c), NULL on other threads. The
 * writer adds TRAIL__WATCH_STEP at each step it makes: a write that took
 * bytes, a sink or a callback begun, a batch found. A stop sets
 * TRAIL__WATCH_STOPPING first; when it has seen no step for its wait, it
 * sets TRAIL__WATCH_GIVEN_UP by a compare-and-swap against the word it last
 * read, so that either the stop sees the step, or the writer sees, at that
 * step, that it was given up. Both seq_cst.
 */
extern TRAIL__TLS uint64_t *trail__writer_watch;
#define TRAIL__WATCH_GIVEN_UP ((uint64_t)1)
#define TRAIL__WATCH_STOPPING ((uint64_t)2)
#define TRAIL__WATCH_STEP ((uint64_t)4)
/* A step of the writer; 1 once a stop has given it up (0 on any other
 * thread): it then writes nothing more but the rest of a line begun. */
static inline int trail__writer_step(void) {
  uint64_t *w = trail__writer_watch;
  return w != NULL &&
         (__atomic_add_fetch(w, TRAIL__WATCH_STEP, __ATOMIC_SEQ_CST) &
          TRAIL__WATCH_GIVEN_UP);
}
/* Writers given up by a stop and still in a sink: their snapshot and sinks
 * are kept, not freed, while there are any (seq_cst). */
extern int trail__writers_given_up;
uint64_t trail__async_high_water(void);
void trail__async_reset_high_water(void);
/* Logs straight to the sinks, bypassing the queue (the writer's own lines). */
void trail__log_direct(trail_logger *logger, trail_level level, const char *msg,
                       const trail_field *fields, size_t nfields);

/* ---- counters (counters.c) --------------------------------------------- */

void trail__count_event(trail_level level, size_t bytes);
void trail__count_bytes(size_t bytes);
/* An event queued for the writer, which counts its bytes when it encodes it. */
void trail__count_queued(trail_level level);
void trail__count_write_error(void);
void trail__count_truncated(void);
void trail__count_dropped(void);
void trail__count_high_water(uint64_t bytes);
void trail__count_suppressed(void);
void trail__count_buffered(void);
void trail__count_buffer_flushed(uint64_t n);
void trail__count_buffer_discarded(uint64_t n);

/* ---- small helpers ----------------------------------------------------- */

/*
 * Reports the variables of env ("NAME=value", NULL ended) that look like
 * trail's (TRAIL_*) but are not read by it (config.c).
 */
void trail__env_check_names(char *const *env);

/* snprintf into a config error, if err is not NULL. */
void trail__config_error(trail_config_error *err, int code, const char *source,
                         const char *fmt, ...) TRAIL__PRINTF(4, 5);

#endif /* TRAIL_INTERNAL_H */
