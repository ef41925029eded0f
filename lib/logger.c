/*
 * Loggers: the registry of named loggers, child loggers with bound fields,
 * and the per-logger threshold that the inline level check reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "internal.h"

trail__level_spec trail__spec = {.deflt = TRAIL_LEVEL_INFO};
uint32_t trail__sampling_first, trail__sampling_thereafter;

static trail_logger root_logger = {
    .head = {.threshold = TRAIL_LEVEL_INFO},
    .level = TRAIL_LEVEL_INFO,
    .registered = 1,
    .name_len = 4,
    .name = "root",
    .name_seg = TRAIL__SEG_STR(TRAIL__K_LOGGER) "root\"",
    .name_seg_len = TRAIL__LIT_LEN(TRAIL__SEG_STR(TRAIL__K_LOGGER) "root\""),
};

/* The root logger's head, read by trail_enabled() for a NULL logger. */
TRAIL_API struct trail__logger_head *const trail__root_head = &root_logger.head;

/* Every logger, root first, linked through all_next (config lock). */
static trail_logger *all_head = &root_logger;

trail_logger *trail__root(void) { return &root_logger; }

TRAIL_API trail_logger *trail_logger_root(void) { return &root_logger; }

static void link_logger(trail_logger *lg) {
  lg->all_prev = NULL;
  lg->all_next = all_head;
  if (all_head)
    all_head->all_prev = lg;
  all_head = lg;
}

static void unlink_logger(trail_logger *lg) {
  if (lg->all_prev)
    lg->all_prev->all_next = lg->all_next;
  else
    all_head = lg->all_next;
  if (lg->all_next)
    lg->all_next->all_prev = lg->all_prev;
}

/*
 * A logger's threshold is the higher of its own level and the lowest level
 * any sink takes: an event below it would reach nobody, so the inline check
 * in trail.h rejects it with a single comparison. While some context
 * buffers (buffer.c), its own level counts as no higher than the lowest
 * level buffered, so that such lines reach trail__log(), which keeps them
 * for their request or drops them; a logger set to off is not buffered.
 */
static void update_threshold(trail_logger *lg, int sink_min) {
  int own = lg->level;
  int floor = __atomic_load_n(&trail__buffer_floor_v, __ATOMIC_RELAXED);
  if (floor < own && own != TRAIL_LEVEL_OFF) /* off stays off */
    own = floor;
  int t = own > sink_min ? own : sink_min;
  __atomic_store_n(&lg->head.threshold, t, __ATOMIC_RELAXED);
}

void trail__loggers_update_locked(void) {
  int sink_min = trail__conf_get()->min_level;
  for (trail_logger *lg = all_head; lg; lg = lg->all_next)
    update_threshold(lg, sink_min);
}

void trail__loggers_apply_spec_locked(const trail__level_spec *spec) {
  trail__spec = *spec;
  for (trail_logger *lg = all_head; lg; lg = lg->all_next)
    __atomic_store_n(
        &lg->level, (int)trail__level_spec_lookup(spec, lg->name, lg->name_len),
        __ATOMIC_RELAXED);
  trail__loggers_update_locked();
}

static void set_name(trail_logger *lg, const char *name, size_t len) {
  memcpy(lg->name, name, len);
  lg->name[len] = '\0';
  lg->name_len = len;
  lg->name_seg_len = trail__string_seg(
      lg->name_seg, TRAIL__SEG_STR(TRAIL__K_LOGGER),
      TRAIL__LIT_LEN(TRAIL__SEG_STR(TRAIL__K_LOGGER)), name, len);
}

/* Named loggers live in a small singly linked list: there are few. */
typedef struct named {
  trail_logger logger;
  struct named *next;
} named;
static named *registry;

/*
 * The registered logger called name (len bytes), or NULL. Without the lock:
 * a logger is published whole (release) at the list's head, never unlinked
 * or freed, and its name and next never change after that, so a reader
 * that sees it (acquire) sees them. trail_logger_get() is called per
 * request by the middleware and by handlers: a lock there was a mutex and
 * two cancellation-state changes per call.
 */
static named *registry_find(const char *name, size_t len) {
  for (named *n = __atomic_load_n(&registry, __ATOMIC_ACQUIRE); n; n = n->next)
    if (n->logger.name_len == len && memcmp(n->logger.name, name, len) == 0)
      return n;
  return NULL;
}

/* Makes and publishes the logger called name (config lock held). */
static named *registry_add_locked(const char *name, size_t len) {
  named *n = calloc(1, sizeof *n);
  if (n == NULL)
    return NULL;
  set_name(&n->logger, name, len);
  n->logger.registered = 1;
  n->logger.level = trail__level_spec_lookup(&trail__spec, name, len);
  if (trail__sampling_first > 0)
    n->logger.sampler =
        trail__sampler_new(trail__sampling_first, trail__sampling_thereafter);
  update_threshold(&n->logger, trail__conf_get()->min_level);
  n->next = registry;
  __atomic_store_n(&registry, n, __ATOMIC_RELEASE);
  link_logger(&n->logger);
  return n;
}

/*
 * Finds or makes the logger called name. Registry loggers are never freed:
 * a pointer kept in a static variable stays valid for the whole process.
 */
TRAIL_API trail_logger *trail_logger_get(const char *name) {
  if (name == NULL)
    return &root_logger;
  size_t len = strlen(name);
  if (!trail__logger_name_valid(name, len))
    return NULL;
  if (len == 4 && memcmp(name, "root", 4) == 0)
    return &root_logger;
  named *n = registry_find(name, len);
  if (n == NULL) {
    trail__config_lock();
    n = registry_find(name, len);
    if (n == NULL)
      n = registry_add_locked(name, len);
    trail__config_unlock();
  }
  return n ? &n->logger : NULL;
}

/*
 * Starts a child's bound fields with its parent's: a copy, or, when they
 * were encoded under another redaction list, a copy with the current list
 * applied. Returns the generation the copy stands for.
 */
static uint32_t copy_parent(trail__buf *b, trail__keyset *ks,
                            const trail_logger *parent) {
  const trail__conf *c = trail__conf_get();
  if (parent->nkeys > 0 && parent->redact_gen != c->redact_gen) {
    trail__copy_fields(b, ks, parent->fields, parent->fields_len, parent->keys,
                       parent->nkeys, c);
  } else if (parent->fields_len > 0) {
    memcpy(b->data, parent->fields, parent->fields_len);
    memcpy(ks->keys, parent->keys, parent->nkeys * sizeof *ks->keys);
    b->len = parent->fields_len;
    ks->n = parent->nkeys;
  }
  return c->redact_gen;
}

/* The longest escape of one byte of a string: \u00xx. */
#define ESCAPED_MAX 6

/*
 * The bytes a child's bound fields may need: its parent's, with room for a
 * redaction marker in place of each of them, then each new field at its
 * worst (every byte of a string escaped), but never more than a line's
 * maximum past the parent's.
 */
static size_t bound_cap(const trail_logger *parent, const trail_field *fields,
                        size_t nfields) {
  /* The parent's values may be redacted now: room for each marker. */
  size_t base =
      parent->fields_len + 64 + parent->nkeys * sizeof TRAIL__REDACTED;
  size_t cap = base;
  for (size_t i = 0; i < nfields; i++) {
    cap += 16 + (fields[i].key ? strlen(fields[i].key) * ESCAPED_MAX : 1) + 64;
    if (fields[i].kind == TRAIL_FIELD_STR && fields[i].v.s)
      cap += ESCAPED_MAX * (fields[i].len == TRAIL_NTS ? strlen(fields[i].v.s)
                                                       : fields[i].len);
  }
  /*
   * json_t values are measured by the line maximum, which also caps giant
   * strings: a bound field can never be longer than a line anyway.
   */
  for (size_t i = 0; i < nfields; i++)
    if (fields[i].kind == TRAIL_FIELD_JSON)
      cap = base + trail_max_line();
  if (cap > base + trail_max_line())
    cap = base + trail_max_line();
  return cap;
}

/*
 * Encodes the child's bound fields into data (cap bytes) and keys (room for
 * the parent's keys, nfields more and one spare): the parent's first, then
 * the new ones. lg owns both buffers after this.
 */
static void encode_bound(trail_logger *lg, const trail_logger *parent,
                         const trail_field *fields, size_t nfields, char *data,
                         size_t cap, trail__key *keys) {
  trail__buf b = {.data = data, .len = 0, .limit = cap, .truncated = 0};
  trail__keyset ks = {.keys = keys, .n = 0, .cap = parent->nkeys + nfields + 1};
  lg->redact_gen = copy_parent(&b, &ks, parent);
  for (size_t i = 0; i < nfields; i++)
    if (trail__put_field(&b, &ks, &fields[i]) != 0)
      break; /* what does not fit in a line is left out, as in a line */
  lg->fields = data;
  lg->fields_len = b.len;
  /* A bound value cut here makes every line of this logger a cut line. */
  lg->fields_cut = parent->fields_cut || b.truncated;
  lg->keys = keys;
  lg->nkeys = ks.n;
}

/*
 * Gives a new child its parent's name, level and sampling settings (its own
 * sampler: a child's flood is counted apart from its parent's), and links it
 * in, under the lock, so that later changes of level reach it.
 */
static void link_child(trail_logger *lg, const trail_logger *parent) {
  set_name(lg, parent->name, parent->name_len);
  trail__config_lock();
  lg->level = __atomic_load_n(&parent->level, __ATOMIC_RELAXED);
  if (parent->sampler != NULL)
    lg->sampler =
        trail__sampler_new(trail__sampler_first(parent->sampler),
                           trail__sampler_thereafter(parent->sampler));
  update_threshold(lg, trail__conf_get()->min_level);
  link_logger(lg);
  trail__config_unlock();
}

/*
 * A child carries its parent's bound fields followed by its own, encoded
 * here once with the rename rule applied, so that each event only copies
 * bytes. The buffer is sized generously for the worst case (every byte of a
 * string escaped as \u00xx) and then trimmed.
 */
TRAIL_API trail_logger *trail_logger_with(trail_logger *parent,
                                          const trail_field *fields,
                                          size_t nfields) {
  if (parent == NULL)
    parent = &root_logger;
  if (nfields > 0 && fields == NULL)
    return NULL;
  size_t cap = bound_cap(parent, fields, nfields);
  trail_logger *lg = calloc(1, sizeof *lg);
  char *data = malloc(cap + TRAIL__BUF_SLACK);
  trail__key *keys = calloc(parent->nkeys + nfields + 1, sizeof *keys);
  if (lg == NULL || data == NULL || keys == NULL) {
    free(lg);
    free(data);
    free(keys);
    return NULL;
  }
  encode_bound(lg, parent, fields, nfields, data, cap, keys);
  link_child(lg, parent);
  return lg;
}

static void destroy(trail_logger *lg) {
  free(lg->fields);
  free(lg->keys);
  trail__sampler_free(lg->sampler);
  free(lg);
}

/* Frees a child; registry loggers (and NULL) are left alone. */
TRAIL_API void trail_logger_free(trail_logger *logger) {
  if (logger == NULL || logger->registered)
    return;
  uint64_t pending = trail__sample_take(logger);
  if (pending > 0)
    trail__sample_report(logger, pending);
  trail__config_lock();
  unlink_logger(logger);
  int pinned = logger->pins > 0;
  logger->doomed = pinned;
  trail__config_unlock();
  if (!pinned)
    destroy(logger);
}

TRAIL_API const char *trail_logger_name(const trail_logger *logger) {
  return logger ? logger->name : root_logger.name;
}

/* Sets one logger's level; the next event on any thread sees it. */
TRAIL_API int trail_logger_set_level(trail_logger *logger, trail_level level) {
  if ((int)level < (int)TRAIL_LEVEL_TRACE || (int)level > (int)TRAIL_LEVEL_OFF)
    return TRAIL_EINVAL_LEVEL;
  if (logger == NULL)
    logger = &root_logger;
  trail__config_lock();
  __atomic_store_n(&logger->level, (int)level, __ATOMIC_RELAXED);
  update_threshold(logger, trail__conf_get()->min_level);
  trail__config_unlock();
  return 0;
}

TRAIL_API trail_level trail_logger_level(const trail_logger *logger) {
  if (logger == NULL)
    logger = &root_logger;
  return (trail_level)__atomic_load_n(&logger->level, __ATOMIC_RELAXED);
}

/*
 * Suppression reports are lines, and no line is written with the config
 * lock held (a fork waits for that lock; see state.c). So the counts are
 * taken under the lock into a list of pinned loggers (a logger freed
 * meanwhile is freed by the last unpin), and written after it.
 */
typedef struct pending_report {
  trail_logger *lg;
  uint64_t n;
} pending_report;

/* Takes every logger's count (lock held); NULL with *count 0 if none. */
static pending_report *take_reports_locked(size_t *count) {
  size_t all = 0, k = 0;
  for (trail_logger *lg = all_head; lg; lg = lg->all_next)
    all += trail__sample_pending(lg);
  *count = 0;
  if (all == 0)
    return NULL; /* the common case: nothing allocated */
  pending_report *r = malloc(all * sizeof *r);
  for (trail_logger *lg = all_head; lg && r != NULL && k < all;
       lg = lg->all_next) {
    uint64_t n = trail__sample_take(lg);
    if (n > 0) {
      lg->pins++;
      r[k++] = (pending_report){lg, n};
    }
  }
  *count = k;
  return r;
}

static void write_reports(pending_report *r, size_t k) {
  for (size_t i = 0; i < k; i++)
    trail__sample_report(r[i].lg, r[i].n);
  trail__config_lock();
  size_t dead = 0;
  for (size_t i = 0; i < k; i++)
    if (--r[i].lg->pins == 0 && r[i].lg->doomed)
      r[dead++] = r[i];
  trail__config_unlock();
  for (size_t i = 0; i < dead; i++)
    destroy(r[i].lg);
  free(r);
}

/*
 * Sets sampling on every logger and on those made later. Registry loggers
 * and children alike: a flood does not care which kind of logger it uses.
 * Everything happens under the lock, so no logger can be freed meanwhile;
 * the counts the old settings held back are reported after.
 */
TRAIL_API int trail_sampling_set(uint32_t first, uint32_t thereafter) {
  int rc = 0;
  trail__config_lock();
  trail__sampling_first = first;
  trail__sampling_thereafter = thereafter;
  for (trail_logger *lg = all_head; lg; lg = lg->all_next) {
    trail__sampler *s = NULL;
    if (first > 0 && (s = trail__sampler_new(first, thereafter)) == NULL) {
      rc = -ENOMEM;
      continue;
    }
    trail__sampler_carry_locked(lg, trail__sampler_set_locked(lg, s));
  }
  trail__config_unlock();
  trail__sample_report_all(); /* what the old settings held back */
  return rc;
}

/*
 * fork() child (config lock held by the fork): the suppressed events not
 * yet reported are the parent's, which reports them; a report from the
 * child too would count them twice. Stores only: no lock, no allocation.
 */
void trail__loggers_fork_child(void) {
  for (trail_logger *lg = all_head; lg; lg = lg->all_next)
    (void)trail__sample_take(lg);
}

/* Writes every logger's pending suppression report (trail_flush). */
void trail__sample_report_all(void) {
  size_t k;
  trail__config_lock();
  pending_report *r = take_reports_locked(&k);
  trail__config_unlock();
  write_reports(r, k);
}
