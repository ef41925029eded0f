/*
 * Fuzz target: queue records (lib/record.c), the copy of an event that the
 * async writer encodes later.
 *
 * The input builds one event as a logging call would: a logger with bound
 * fields (made by trail_logger_with), a request context with ids and bound
 * fields, a caller text, a message with any bytes, up to 70 fields of every
 * kind with arbitrary keys (NULL, empty, long, repeated) and values. The
 * event is encoded directly, as sync mode does; then it is copied into a
 * record of exactly trail__record_size() bytes (AddressSanitizer catches a
 * write past it), the original strings are wiped, the record is read back
 * and encoded again. The two lines must be the same bytes. An event the
 * record cannot hold (a json_t field, more than TRAIL__RECORD_KEYS_MAX
 * fields) must be refused with size 0, and only such an event.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

#define MAX_FIELDS (TRAIL__RECORD_KEYS_MAX + 6)
#define MAX_BOUND 8
#define KEYS_CAP (2 * TRAIL__RECORD_KEYS_MAX + TRAIL_CTX_FIELDS_MAX + 8)

static const char *const key_table[] = {"level",    "k",  "",       "message",
                                        "password", "_k", "user_id"};
#define KEY_TABLE_N (sizeof key_table / sizeof key_table[0])

/* A writable copy, wiped after the record is made: the record must not
 * point into it. */
static char *own(const uint8_t *p, size_t n, char **list, size_t *nlist) {
  char *c = malloc(n + 1);
  if (c == NULL)
    abort();
  memcpy(c, p, n);
  c[n] = '\0';
  list[(*nlist)++] = c;
  return c;
}

static void decode_field(fz_in *in, trail_field *f, char **owned,
                         size_t *nowned, int *has_json) {
  const uint8_t *s;
  size_t n;
  uint8_t kind = fz_u8(in), keysel = fz_u8(in);
  const char *key;
  if (keysel < KEY_TABLE_N) {
    key = key_table[keysel];
  } else if (keysel == KEY_TABLE_N) {
    key = NULL;
  } else {
    n = fz_slice8(in, &s);
    key = own(s, n, owned, nowned);
  }
  switch (kind % 7) {
  case 0:
    n = fz_slice16(in, 5000, &s);
    *f = TRAIL_STRN(key, own(s, n, owned, nowned), n);
    break;
  case 1:
    n = fz_slice8(in, &s);
    *f = TRAIL_STR(key, kind & 0x80 ? NULL : own(s, n, owned, nowned));
    break;
  case 2:
    *f = TRAIL_INT(key, (int64_t)fz_u64(in));
    break;
  case 3:
    *f = TRAIL_UINT(key, fz_u64(in));
    break;
  case 4: {
    uint64_t bits = fz_u64(in);
    double d;
    memcpy(&d, &bits, sizeof d);
    *f = TRAIL_DOUBLE(key, d);
    break;
  }
  case 5:
    *f = TRAIL_BOOL(key, fz_u8(in));
    break;
  default:
    if (kind & 0x80) {
      *f = TRAIL_JSON(key, NULL);
      *has_json = 1;
    } else {
      *f = TRAIL_INT(key, 1);
      f->kind = (trail_field_kind)(40 + (kind >> 4)); /* not a kind */
    }
    break;
  }
  /* A runtime key's length comes with it now and then, as TRAIL_STRN's
   * callers may pass it; otherwise it is measured. */
  f->klen = key && (keysel & 1) ? (uint32_t)strlen(key) : 0;
}

static size_t encode(const trail__event *ev, char *out, size_t max) {
  trail__key keys[KEYS_CAP];
  trail__buf b = {.data = out,
                  .len = 0,
                  .limit = max - TRAIL__TAIL_RESERVE,
                  .truncated = ev->cut};
  return trail__event_encode(&b, keys, KEYS_CAP, trail__conf_get(), ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  const uint8_t *s;
  size_t n;
  char *owned[4 * MAX_FIELDS + 8];
  size_t nowned = 0;
  trail_field f[MAX_FIELDS];
  int has_json = 0;

  size_t max = 2048 + fz_u16(&in) % 20000;
  uint8_t flags = fz_u8(&in);

  /* The logger, and maybe a child with bound fields. */
  trail_logger *base = trail_logger_get("fuzz.record");
  trail_logger *lg = base;
  size_t nbound = flags & 1 ? fz_u8(&in) % MAX_BOUND : 0;
  if (nbound > 0) {
    trail_field bf[MAX_BOUND];
    int j = 0;
    for (size_t i = 0; i < nbound; i++)
      decode_field(&in, &bf[i], owned, &nowned, &j);
    if (!j)
      lg = trail_logger_with(base, bf, nbound);
    if (lg == NULL)
      lg = base;
  }

  /* The context: ids and bound fields. */
  trail_ctx ctx;
  trail_ctx_clear(&ctx);
  int use_ctx = (flags & 2) != 0;
  if (use_ctx) {
    trail_ctx_init(&ctx);
    n = fz_slice8(&in, &s);
    if (n > 0)
      trail_ctx_set_user_id(&ctx, own(s, n, owned, &nowned));
    size_t nc = fz_u8(&in) % MAX_BOUND;
    trail_field cf[MAX_BOUND];
    int j = 0;
    for (size_t i = 0; i < nc; i++)
      decode_field(&in, &cf[i], owned, &nowned, &j);
    if (!j)
      trail_ctx_add_fields(&ctx, cf, nc);
  }
  trail__key ck[TRAIL_CTX_FIELDS_MAX];
  size_t cnkeys = use_ctx ? trail__ctx_keys(&ctx, ck, TRAIL_CTX_FIELDS_MAX) : 0;

  /* The caller text and the message. */
  n = fz_slice8(&in, &s);
  char *caller = flags & 4 ? own(s, n, owned, &nowned) : NULL;
  size_t caller_len = caller ? n : 0;
  n = fz_slice16(&in, 30000, &s);
  char *msg = own(s, n, owned, &nowned);
  size_t msg_len = n;

  size_t nfields = fz_u8(&in) % (MAX_FIELDS + 1);
  for (size_t i = 0; i < nfields; i++)
    decode_field(&in, &f[i], owned, &nowned, &has_json);

  trail__event ev = {
      .level = (trail_level)(fz_u8(&in) % 6),
      .cut = (flags & 8) != 0,
      .lfields_cut = lg->fields_cut,
      .sec = (int64_t)(fz_u32(&in) % 4000000000u),
      .usec = (long)(fz_u32(&in) % 1000000),
      .name_seg = lg->name_seg,
      .name_seg_len = lg->name_seg_len,
      .ids = use_ctx ? ctx.ids_ : NULL,
      .ids_len = use_ctx ? ctx.ids_len_ : 0,
      .caller = caller,
      .caller_len = caller_len,
      .lfields = lg->fields,
      .lfields_len = lg->fields_len,
      .lkeys = lg->keys,
      .lnkeys = lg->nkeys,
      .cfields = use_ctx ? ctx.fields_ : NULL,
      .cfields_len = cnkeys ? ctx.fields_len_ : 0,
      .ckeys = ck,
      .cnkeys = cnkeys,
      .msg = msg,
      .msg_len = msg_len,
      .fields = f,
      .nfields = nfields,
  };

  char *want = malloc(max + TRAIL__BUF_SLACK);
  char *got = malloc(max + TRAIL__BUF_SLACK);
  if (want == NULL || got == NULL)
    abort();
  size_t want_len = encode(&ev, want, max);

  uint32_t slen[TRAIL__RECORD_KEYS_MAX];
  size_t rsize = trail__record_size(&ev, slen);
  int refusable = has_json || nfields > TRAIL__RECORD_KEYS_MAX ||
                  lg->nkeys > TRAIL__RECORD_KEYS_MAX;
  if (rsize == 0) {
    FZ_CHECK(refusable, "an event a record can hold was refused");
  } else {
    FZ_CHECK(!refusable, "an event a record cannot hold was accepted");
    int aligned = (rsize & 7) == 0;
    FZ_CHECK(aligned, "record size %zu not a multiple of 8", rsize);
    /* Exactly rsize bytes, 8-aligned: a write past the end is caught. */
    char *rec = aligned_alloc(8, rsize);
    if (rec == NULL)
      abort();
    trail__record_write(rec, &ev, slen);
    /* Everything the event borrowed is wiped: the record owns copies. */
    for (size_t i = 0; i < nowned; i++)
      memset(owned[i], 'W', strlen(owned[i]));
    if (lg != base)
      trail_logger_free(lg);
    lg = base;
    memset(&ctx, 0xA5, sizeof ctx);
    trail__event back;
    trail_field bf[TRAIL__RECORD_KEYS_MAX];
    FZ_CHECK(trail__record_read(rec, rsize, &back, bf) == 0,
             "a record just written does not read back");
    size_t got_len = encode(&back, got, max);
    FZ_CHECK(got_len == want_len && memcmp(got, want, want_len) == 0,
             "the record's line differs:\n%.*s\n%.*s", (int)want_len, want,
             (int)got_len, got);
    free(rec);
  }

  free(want);
  free(got);
  if (lg != base)
    trail_logger_free(lg);
  for (size_t i = 0; i < nowned; i++)
    free(owned[i]);
  return 0;
}
