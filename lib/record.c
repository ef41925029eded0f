/*
 * Queue records: an event copied whole into the async writer's ring, so
 * that the logging thread pays for copies and the writer thread for the
 * encoding. Everything the event points to (the logger's name and bound
 * fields, the context's ids and fields, the message, the fields' keys and
 * strings) is copied, because none of it has to outlive the logging call:
 * the caller may free its strings, leave its context or free a child
 * logger as soon as the call returns.
 *
 * Layout, every part 8-aligned: the fixed head (struct head), the keys of
 * the bound fields (trail__key each), one struct slot per field, then the
 * bytes: logger name segment, ids, caller, logger fields, context fields,
 * message, and per field its key and its string. The process fields are not
 * copied: the record names their set by its number, which stays valid (the
 * sets are immutable and kept until trail_shutdown()), so that the line
 * carries the set in force when the event was logged.
 */
#include <string.h>

#include "internal.h"

struct head {
  int64_t sec; /* or the time stamp counter, when tsc is set */
  int32_t usec;
  uint8_t level, cut, lfields_cut, tsc;
  uint16_t name_len, caller_len, nfields, lnkeys;
  uint16_t cnkeys, pad2_;
  uint32_t pgen; /* the process fields' set (trail__pfields_find), 0: none */
  uint32_t ids_len, msg_len, lfields_len, cfields_len;
  uint32_t lgen, cgen; /* the bound fields' redaction generations */
};

/* A field: its kind, key length and value; strings' bytes follow later. */
struct slot {
  uint32_t kind;
  uint32_t klen;
  union {
    uint64_t len; /* TRAIL_FIELD_STR: bytes, or NO_STR for a NULL string */
    int64_t i;
    uint64_t u;
    double d;
    int b;
  } v;
};

#define NO_STR UINT64_MAX

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t trail__record_size(const trail__event *ev, uint32_t *slen) {
  if (ev->nfields > TRAIL__RECORD_KEYS_MAX ||
      ev->lnkeys > TRAIL__RECORD_KEYS_MAX || ev->name_seg_len > UINT16_MAX ||
      ev->caller_len > UINT16_MAX || ev->msg_len > UINT32_MAX / 4)
    return 0;
  size_t bytes = ev->name_seg_len + ev->ids_len + ev->caller_len +
                 ev->lfields_len + ev->cfields_len + ev->msg_len;
  for (size_t i = 0; i < ev->nfields; i++) {
    const trail_field *f = &ev->fields[i];
    if (f->kind == TRAIL_FIELD_JSON)
      return 0; /* a tree, not bytes: encoded by the caller */
    size_t klen;
    trail__field_key(f, &klen);
    size_t n = 0;
    if (f->kind == TRAIL_FIELD_STR && f->v.s != NULL)
      n = f->len == TRAIL_NTS ? strlen(f->v.s) : f->len;
    if (n > UINT32_MAX / 4)
      return 0;
    slen[i] = (uint32_t)n;
    bytes += klen + n;
  }
  if (bytes > UINT32_MAX / 4)
    return 0;
  return pad8(sizeof(struct head) +
              (ev->lnkeys + ev->cnkeys) * sizeof(trail__key) +
              ev->nfields * sizeof(struct slot) + bytes);
}

/* Stores the event's scalars and lengths in the record's head. */
static inline void write_head(struct head *h, const trail__event *ev) {
  h->sec = ev->sec;
  h->usec = (int32_t)ev->usec;
  h->level = (uint8_t)ev->level;
  h->cut = (uint8_t)ev->cut;
  h->lfields_cut = (uint8_t)ev->lfields_cut;
  h->tsc = (uint8_t)ev->tsc;
  h->name_len = (uint16_t)ev->name_seg_len;
  h->caller_len = (uint16_t)ev->caller_len;
  h->nfields = (uint16_t)ev->nfields;
  h->lnkeys = (uint16_t)ev->lnkeys;
  h->cnkeys = (uint16_t)ev->cnkeys;
  h->ids_len = (uint32_t)ev->ids_len;
  h->msg_len = (uint32_t)ev->msg_len;
  h->lfields_len = (uint32_t)ev->lfields_len;
  h->cfields_len = (uint32_t)ev->cfields_len;
  h->lgen = ev->lgen;
  h->cgen = ev->cgen;
  h->pgen = ev->pf ? ev->pf->gen : 0;
}

/*
 * Fills the slot of field f and copies its key, then its string (slen bytes,
 * as trail__record_size() counted them) to p; returns the end of the copy.
 */
static inline char *write_field(struct slot *sl, char *p, const trail_field *f,
                                const uint32_t *slen) {
  size_t klen;
  const char *key = trail__field_key(f, &klen);
  sl->kind = (uint32_t)f->kind;
  sl->klen = (uint32_t)klen;
  p = trail__copy(p, key, klen);
  switch (f->kind) {
  case TRAIL_FIELD_STR:
    if (f->v.s == NULL) {
      sl->v.len = NO_STR;
    } else {
      sl->v.len = *slen;
      p = trail__copy(p, f->v.s, *slen);
    }
    break;
  case TRAIL_FIELD_INT:
    sl->v.i = f->v.i;
    break;
  case TRAIL_FIELD_UINT:
    sl->v.u = f->v.u;
    break;
  case TRAIL_FIELD_DOUBLE:
    sl->v.d = f->v.d;
    break;
  case TRAIL_FIELD_BOOL:
    sl->v.b = f->v.b;
    break;
  default:
    sl->v.u = 0; /* written as "[invalid field kind]", as in sync mode */
    break;
  }
  return p;
}

/*
 * Writes the record of ev at dst, in the layout above: the head, the bound
 * keys, the slots, then every byte segment in order.
 */
void trail__record_write(char *dst, const trail__event *ev,
                         const uint32_t *slen) {
  /* Stored member by member: dst is 8-aligned, as struct head needs. */
  write_head((struct head *)(void *)dst, ev);
  char *p = dst + sizeof(struct head);
  /* Bound fields and the caller are rare: one test skips all of them. */
  size_t rare = ev->lnkeys | ev->cnkeys | ev->caller_len | ev->lfields_len |
                ev->cfields_len;
  if (rare) {
    p = trail__copy(p, ev->lkeys, ev->lnkeys * sizeof(trail__key));
    p = trail__copy(p, ev->ckeys, ev->cnkeys * sizeof(trail__key));
  }
  struct slot *slots = (struct slot *)(void *)p;
  p += ev->nfields * sizeof(struct slot);
  p = trail__copy(p, ev->name_seg, ev->name_seg_len);
  p = trail__copy(p, ev->ids, ev->ids_len);
  if (rare) {
    p = trail__copy(p, ev->caller, ev->caller_len);
    p = trail__copy(p, ev->lfields, ev->lfields_len);
    p = trail__copy(p, ev->cfields, ev->cfields_len);
  }
  p = trail__copy(p, ev->msg, ev->msg_len);
  for (size_t i = 0; i < ev->nfields; i++)
    p = write_field(&slots[i], p, &ev->fields[i], &slen[i]);
}

/*
 * 1 when the bound-field keys locate keys inside seg as copy_bound() needs:
 * each key starts after its ,", ends before its ": and the next field.
 */
static int keys_valid(const trail__key *keys, size_t n, size_t seg_len) {
  for (size_t i = 0; i < n; i++) {
    trail__key k;
    memcpy(&k, &keys[i], sizeof k);
    size_t end = seg_len;
    if (i + 1 < n) {
      trail__key next;
      memcpy(&next, &keys[i + 1], sizeof next);
      if (next.off < 2)
        return 0;
      end = next.off - 2;
    }
    if (k.off < 2 || (size_t)k.off + k.len + 1 > end)
      return 0;
  }
  return 1;
}

/*
 * Copies the head out of the record (size bytes at rec) and checks it: the
 * counts within their limits and every length adding up within the record.
 * Sets *need to the bytes the head accounts for, to which the fields' keys
 * and strings are added as they are read. -1 when the record is refused.
 */
static inline int read_head(const char *rec, size_t size, struct head *h,
                            uint64_t *need) {
  if (size < sizeof *h)
    return -1;
  memcpy(h, rec, sizeof *h);
  if (h->nfields > TRAIL__RECORD_KEYS_MAX ||
      h->lnkeys > TRAIL__RECORD_KEYS_MAX || h->cnkeys > TRAIL_CTX_FIELDS_MAX ||
      h->level > TRAIL_LEVEL_FATAL)
    return -1;
  /* 64-bit sums of these lengths cannot wrap. */
  *need = sizeof *h + ((uint64_t)h->lnkeys + h->cnkeys) * sizeof(trail__key) +
          (uint64_t)h->nfields * sizeof(struct slot) + h->name_len +
          h->ids_len + h->caller_len + h->lfields_len + h->cfields_len +
          h->msg_len;
  return *need > size ? -1 : 0;
}

/*
 * Points ev into the record, whose head h is checked and whose parts start at
 * p: the scalars from h, the bound keys and every byte segment in place.
 * Sets *slots to the fields' slots and returns where the fields' bytes start.
 */
static inline const char *read_parts(const char *p, const struct head *h,
                                     trail__event *ev,
                                     const struct slot **slots) {
  ev->level = (trail_level)h->level;
  ev->cut = h->cut;
  ev->lfields_cut = h->lfields_cut;
  ev->sec = h->sec;
  ev->usec = h->usec;
  ev->tsc = h->tsc;
  ev->buffered = 0; /* marked by the flush that reads it, if one does */
  ev->lkeys = (const trail__key *)(const void *)p;
  ev->lnkeys = h->lnkeys;
  p += h->lnkeys * sizeof(trail__key);
  ev->ckeys = (const trail__key *)(const void *)p;
  ev->cnkeys = h->cnkeys;
  ev->lgen = h->lgen;
  ev->cgen = h->cgen;
  ev->pf = trail__pfields_find(h->pgen);
  p += h->cnkeys * sizeof(trail__key);
  *slots = (const struct slot *)(const void *)p;
  p += h->nfields * sizeof(struct slot);
  ev->name_seg = p;
  ev->name_seg_len = h->name_len;
  p += h->name_len;
  ev->ids = p;
  ev->ids_len = h->ids_len;
  p += h->ids_len;
  ev->caller = p;
  ev->caller_len = h->caller_len;
  p += h->caller_len;
  ev->lfields = p;
  ev->lfields_len = h->lfields_len;
  p += h->lfields_len;
  ev->cfields = p;
  ev->cfields_len = h->cfields_len;
  p += h->cfields_len;
  ev->msg = p;
  ev->msg_len = h->msg_len;
  return p + h->msg_len;
}

/*
 * Fills f from its slot, its key and string pointing into the record at *p,
 * which moves past them. *need grows by their lengths and must stay within
 * the record's size; -1 when it does not, or for a kind a record never has.
 */
static inline int read_field(trail_field *f, const struct slot *slot,
                             const char **p, uint64_t *need, size_t size) {
  struct slot sl;
  memcpy(&sl, slot, sizeof sl);
  memset(f, 0, sizeof *f);
  f->kind = (trail_field_kind)sl.kind;
  *need += sl.klen;
  if (*need > size)
    return -1;
  /* The key is not NUL-terminated here: its length is always given. */
  f->key = sl.klen ? *p : "";
  f->klen = sl.klen;
  *p += sl.klen;
  switch (sl.kind) {
  case TRAIL_FIELD_STR:
    if (sl.v.len == NO_STR) {
      f->v.s = NULL;
    } else {
      if (sl.v.len > size - *need)
        return -1;
      *need += sl.v.len;
      f->v.s = *p;
      f->len = (size_t)sl.v.len;
      *p += sl.v.len;
    }
    break;
  case TRAIL_FIELD_INT:
    f->v.i = sl.v.i;
    break;
  case TRAIL_FIELD_UINT:
    f->v.u = sl.v.u;
    break;
  case TRAIL_FIELD_DOUBLE:
    f->v.d = sl.v.d;
    break;
  case TRAIL_FIELD_BOOL:
    f->v.b = sl.v.b;
    break;
  case TRAIL_FIELD_JSON:
    return -1; /* never in a record: a pointer would be read */
  default:
    break;
  }
  return 0;
}

/*
 * Reads the record of size bytes at rec into ev, its fields into fields (as
 * many as the record has, at most TRAIL__RECORD_KEYS_MAX), everything
 * pointing into the record. Every count and length is checked against the
 * record's size first: -1 for a record that cannot be trusted.
 */
int trail__record_read(const char *rec, size_t size, trail__event *ev,
                       trail_field *fields) {
  struct head h;
  uint64_t need;
  if (read_head(rec, size, &h, &need) != 0)
    return -1;
  const struct slot *slots;
  const char *p = read_parts(rec + sizeof h, &h, ev, &slots);
  if (!keys_valid(ev->lkeys, ev->lnkeys, ev->lfields_len) ||
      !keys_valid(ev->ckeys, ev->cnkeys, ev->cfields_len))
    return -1;
  for (size_t i = 0; i < h.nfields; i++)
    if (read_field(&fields[i], &slots[i], &p, &need, size) != 0)
      return -1;
  ev->fields = fields;
  ev->nfields = h.nfields;
  return 0;
}
