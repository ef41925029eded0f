/*
 * Fields: writing one key and its typed value, and keeping every key of a
 * line unique by the one rename rule of docs/log-format.md: a key already in
 * the line (reserved, or written earlier) gets "_" prepended until unique.
 */
#include <string.h>

#include "contract.h"
#include "internal.h"

/*
 * Reserved keys are the contract's own; a field may never take one, whether
 * or not this line carries it (a line without user_id must not get a
 * TRAIL__K_USER_ID field that a query would take for the context's).
 */
int trail__key_reserved(const char *k, size_t len) {
  const char *want;
  switch (len) {
  case 5:
    want = TRAIL__K_LEVEL;
    break;
  case 6:
    want = k[0] == 'l' ? TRAIL__K_LOGGER : TRAIL__K_CALLER;
    break;
  case 7:
    want = k[0] == 'm'   ? TRAIL__K_MESSAGE
           : k[0] == 'u' ? TRAIL__K_USER_ID
           : k[1] == 'e' ? TRAIL__K_SERVICE
                         : TRAIL__K_SPAN_ID;
    break;
  case 8:
    want = k[0] == 't' ? TRAIL__K_TRACE_ID : TRAIL__K_BUFFERED;
    break;
  case 9:
    want = k[1] == 'i' ? TRAIL__K_TIMESTAMP : TRAIL__K_TRUNCATED;
    break;
  case 10:
    want = TRAIL__K_REQUEST_ID;
    break;
  default:
    return 0;
  }
  for (size_t i = 0; i < len; i++)
    if (k[i] != want[i])
      return 0;
  return 1;
}

static int key_taken(const trail__buf *b, const trail__keyset *ks,
                     const char *k, size_t len) {
  if (trail__key_reserved(k, len))
    return 1;
  for (size_t i = 0; i < ks->n; i++) {
    const char *o = b->data + ks->keys[i].off;
    if (ks->keys[i].len != len)
      continue;
    if (len == 0)
      return 1; /* two empty keys are the same key */
    if (o[0] != k[0])
      continue;
    /* Keys are short: a plain loop beats a call to memcmp. */
    size_t j = 1;
    while (j < len && o[j] == k[j])
      j++;
    if (j == len)
      return 1;
  }
  return 0;
}

/*
 * The key text sits at b->data[koff..b->len - 1) followed by its closing
 * quote. While it is taken, shift it right by one and put "_" in front.
 * Returns -1 when the renaming does not fit.
 */
static int make_unique(trail__buf *b, trail__keyset *ks, size_t koff) {
  while (key_taken(b, ks, b->data + koff, b->len - 1 - koff)) {
    if (b->len + 1 > b->limit)
      return -1;
    memmove(b->data + koff + 1, b->data + koff, b->len - koff);
    b->data[koff] = '_';
    b->len++;
  }
  ks->keys[ks->n].off = (uint32_t)koff;
  ks->keys[ks->n].len = (uint32_t)(b->len - 1 - koff);
  ks->n++;
  return 0;
}

static int put_value(trail__buf *b, const trail_field *f) {
  switch (f->kind) {
  case TRAIL_FIELD_STR:
    if (f->v.s == NULL)
      return trail__buf_put(b, "null", 4);
    return trail__put_string(b, f->v.s,
                             f->len == TRAIL_NTS ? strlen(f->v.s) : f->len);
  case TRAIL_FIELD_INT:
    return trail__put_int(b, f->v.i);
  case TRAIL_FIELD_UINT:
    return trail__put_uint(b, f->v.u);
  case TRAIL_FIELD_DOUBLE:
    return trail__put_double(b, f->v.d);
  case TRAIL_FIELD_BOOL:
    return trail__put_bool(b, f->v.b);
  case TRAIL_FIELD_JSON:
    return trail__put_json(b, f->v.j);
  default:
    /* A field not made by the macros: say so rather than guess. */
    return trail__put_string(b, "[invalid field kind]", 20);
  }
}

/*
 * Appends ,"key":value. A key that does not fit whole is not written at all
 * (a cut key would be a different key); a value may be cut (strings, json)
 * but is never left out once its key is written.
 */
/*
 * The common key, written in one pass with no call: short, plain ASCII
 * (nothing to escape), not reserved, not yet in the line. The bytes are
 * checked and copied together past b->len and only committed when every
 * test passed; otherwise 0 is returned and the general path takes the key.
 */
static int put_plain_key(trail__buf *b, trail__keyset *ks, const char *key,
                         size_t klen) {
  size_t start = b->len;
  if (klen == 0 || klen > 64 || start + klen + 4 > b->limit)
    return 0;
  char *o = b->data + start;
  o[0] = ',';
  o[1] = '"';
  for (size_t i = 0; i < klen; i++) {
    unsigned char c = (unsigned char)key[i];
    if (!trail__plain_table[c])
      return 0;
    o[2 + i] = (char)c;
  }
  o[2 + klen] = '"';
  o[3 + klen] = ':';
  if (key_taken(b, ks, o + 2, klen))
    return 0;
  ks->keys[ks->n].off = (uint32_t)(start + 2);
  ks->keys[ks->n].len = (uint32_t)klen;
  ks->n++;
  b->len = start + klen + 4;
  return 1;
}

int trail__put_field(trail__buf *b, trail__keyset *ks, const trail_field *f) {
  size_t start = b->len;
  size_t klen;
  const char *key = trail__field_key(f, &klen);
  int saved = b->truncated;
  if (!put_plain_key(b, ks, key, klen) &&
      (trail__buf_put(b, ",", 1) != 0 || trail__put_string(b, key, klen) != 0 ||
       make_unique(b, ks, start + 2) != 0 || trail__buf_put(b, ":", 1) != 0))
    goto refuse;
  int r = trail__maybe_redacted(key, klen)
              ? trail__buf_put(b, TRAIL__REDACTED, sizeof TRAIL__REDACTED - 1)
              : put_value(b, f);
  if (r < 0) {
    ks->n--;
    goto refuse;
  }
  return r;
refuse:
  b->len = start;
  b->truncated = saved | 1;
  return -1;
}

/*
 * Copies a field that was encoded earlier (a logger's or a context's bound
 * field): seg[start..end) is ,"key":value and key locates the key text.
 * With redact, the marker is written in place of the value.
 */
int trail__copy_field(trail__buf *b, trail__keyset *ks, const char *seg,
                      trail__key key, size_t start, size_t end, int redact) {
  size_t at = b->len;
  size_t head = key.off + key.len - start;           /* ,"key */
  if (trail__buf_put(b, seg + start, head + 1) != 0) /* with its quote */
    goto refuse;
  if (make_unique(b, ks, at + (key.off - start)) != 0)
    goto refuse;
  int r = redact ? trail__buf_put(b, ":" TRAIL__REDACTED,
                                  sizeof(":" TRAIL__REDACTED) - 1)
                 : trail__buf_put(b, seg + start + head + 1,
                                  end - start - head - 1);
  if (r != 0) {
    ks->n--;
    goto refuse;
  }
  return 0;
refuse:
  b->len = at;
  b->truncated = 1;
  return -1;
}

void trail__copy_fields(trail__buf *b, trail__keyset *ks, const char *seg,
                        size_t seg_len, const trail__key *keys, size_t nkeys,
                        const trail__conf *redact) {
  for (size_t i = 0; i < nkeys; i++) {
    size_t start = keys[i].off - 2;
    size_t end = i + 1 < nkeys ? keys[i + 1].off - 2 : seg_len;
    int r = redact != NULL &&
            trail__redacted_in(redact, seg + keys[i].off, keys[i].len);
    trail__copy_field(b, ks, seg, keys[i], start, end, r);
  }
}
