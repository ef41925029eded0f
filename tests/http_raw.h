/*
 * A raw HTTP/1.x client for the HTTP tests, for what libcurl will not send
 * (a bare CR or a control byte in a header, an absolute-form target, many
 * repeated headers, pipelined requests) or what it hides (how many
 * X-Request-ID headers a response has).
 *
 *   raw_connect()      a loopback TCP connection (fails the test if refused)
 *   raw_send()         all of the bytes (-1 when the server closed first)
 *   raw_read_all()     every byte until the server closes
 *   raw_parse()        the responses in those bytes, one after the other
 *   raw_exchange()     one connection: send, read until close, parse
 *   raw_request()      the same for one request: its response
 *   raw_post_sized()   a POST of a body of n bytes, sized or in one chunk
 *   raw_read_one()     one response on a kept-alive connection (keep-alive:
 *                      several requests on one connection, in turn)
 *   raw_read_head()    a response head only (an interim 100 Continue)
 *   raw_read_response() until close: the first response
 *   raw_abort()        a reset: the client is gone at once
 *
 * A response's body is delimited by its Content-Length, else by the end of
 * what was read (a response without a body, such as HEAD's, simply has no
 * bytes after its head). Included by http_harness.h; header-only.
 */
#ifndef TRAIL_TEST_HTTP_RAW_H
#define TRAIL_TEST_HTTP_RAW_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RAW_MAX 16 /* responses kept per exchange */

typedef struct raw_response {
  int status;           /* 0: no response (or not HTTP) */
  char request_id[256]; /* the first X-Request-ID, "" when none */
  int request_id_count; /* how many X-Request-ID headers */
  int conn_close;       /* "Connection: close" was sent */
  long content_length;  /* -1 when none */
  char body[4096];      /* the body's first bytes, NUL-terminated */
  size_t body_len;      /* the body's length (it may exceed sizeof body) */
  size_t used;          /* bytes of the stream this response took */
} raw_response;

typedef struct raw_reply {
  int n; /* responses parsed */
  raw_response r[RAW_MAX];
  size_t len; /* bytes read */
} raw_reply;

/* A connection to 127.0.0.1:port; -1 and *err on failure. */
static inline int raw_connect_rc(int port, int *err) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  /* A bound on a broken test, not a timing assumption. */
  struct timeval tv = {120, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    *err = errno;
    close(fd);
    return -1;
  }
  return fd;
}

static inline int raw_connect(int port) {
  int err = 0;
  int fd = raw_connect_rc(port, &err);
  if (fd < 0)
    fail_msg("connect to port %d: %s", port, strerror(err));
  return fd;
}

/* Sends all of p; -1 when the server closed first (it may: what it
 * answered is still there to read). */
static inline int raw_send(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads until the server closes (or resets): a malloc'd, NUL-terminated
 * buffer, its length in *len. */
static inline char *raw_read_all(int fd, size_t *len) {
  size_t room = 1 << 16, n = 0;
  char *buf = malloc(room);
  assert_non_null(buf);
  for (;;) {
    if (n + 1 >= room) {
      room *= 2;
      buf = realloc(buf, room);
      assert_non_null(buf);
    }
    ssize_t r = recv(fd, buf + n, room - 1 - n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      fail_msg("the server neither answered nor closed");
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

static inline const char *raw_find(const char *p, size_t len, const char *s) {
  size_t sl = strlen(s);
  for (size_t i = 0; i + sl <= len; i++)
    if (memcmp(p + i, s, sl) == 0)
      return p + i;
  return NULL;
}

/*
 * Parses the one response at the start of p (len bytes) into out.
 * Returns 0, or -1 when p does not start with a whole response head.
 */
static inline int raw_parse_one(const char *p, size_t len, raw_response *out) {
  memset(out, 0, sizeof *out);
  out->content_length = -1;
  /* "HTTP/": a server may answer in the version the request named */
  if (len < 12 || strncmp(p, "HTTP/", 5) != 0 || p[8] != ' ')
    return -1;
  const char *end = raw_find(p, len, "\r\n\r\n");
  if (end == NULL)
    return -1;
  out->status = atoi(p + 9);
  const char *h = raw_find(p, (size_t)(end - p) + 2, "\r\n") + 2;
  while (h < end) {
    const char *eol = raw_find(h, (size_t)(end - h) + 2, "\r\n");
    size_t hl = (size_t)(eol - h);
    if (hl >= 13 && strncasecmp(h, "X-Request-ID:", 13) == 0) {
      const char *v = h + 13;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      size_t n = (size_t)(eol - v);
      while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
      if (out->request_id_count++ == 0) {
        if (n >= sizeof out->request_id)
          n = sizeof out->request_id - 1;
        memcpy(out->request_id, v, n);
        out->request_id[n] = '\0';
      }
    } else if (hl >= 15 && strncasecmp(h, "Content-Length:", 15) == 0) {
      out->content_length = strtol(h + 15, NULL, 10);
    } else if (hl >= 17 && strncasecmp(h, "Connection: close", 17) == 0) {
      out->conn_close = 1;
    }
    h = eol + 2;
  }
  size_t head = (size_t)(end - p) + 4;
  size_t avail = len - head;
  size_t body = out->content_length >= 0 && (size_t)out->content_length < avail
                    ? (size_t)out->content_length
                    : avail;
  out->body_len = body;
  size_t copy = body < sizeof out->body - 1 ? body : sizeof out->body - 1;
  memcpy(out->body, p + head, copy);
  out->body[copy] = '\0';
  out->used = head + body;
  return 0;
}

/* Every response in buf, one after the other (pipelined requests). */
static inline void raw_parse(const char *buf, size_t len, raw_reply *out) {
  size_t at = 0;
  out->n = 0;
  out->len = len;
  while (out->n < RAW_MAX && at < len &&
         raw_parse_one(buf + at, len - at, &out->r[out->n]) == 0) {
    at += out->r[out->n].used;
    out->n++;
  }
}

/*
 * Sends req (len bytes) on a new connection and reads until the server
 * closes: every response it wrote. half_close: end the sending side after
 * the request (for a server that would otherwise keep the connection
 * open); a server may read that as the client leaving.
 */
static inline void raw_exchange_opt(int port, const void *req, size_t len,
                                    int half_close, raw_reply *out) {
  int fd = raw_connect(port);
  raw_send(fd, req, len);
  if (half_close)
    shutdown(fd, SHUT_WR);
  size_t n;
  char *buf = raw_read_all(fd, &n);
  close(fd);
  raw_parse(buf, n, out);
  free(buf);
}

static inline void raw_exchange(int port, const void *req, size_t len,
                                raw_reply *out) {
  raw_exchange_opt(port, req, len, 0, out);
}

static inline void raw_exchange_str(int port, const char *req, raw_reply *out) {
  raw_exchange(port, req, strlen(req), out);
}

/* One request (it should ask to close) and its one response; status 0
 * when the server answered nothing. */
static inline void raw_request(int port, const void *req, size_t len,
                               raw_response *out) {
  raw_reply *rr = malloc(sizeof *rr);
  assert_non_null(rr);
  raw_exchange(port, req, len, rr);
  if (rr->n > 0) {
    *out = rr->r[0];
  } else {
    memset(out, 0, sizeof *out);
    out->content_length = -1;
  }
  free(rr);
}

static inline void raw_request_str(int port, const char *req,
                                   raw_response *out) {
  raw_request(port, req, strlen(req), out);
}

/* n bytes (n >= 8) of a JSON object: {"a":"xx...x"}. */
static inline void raw_fill_object(char *b, size_t n) {
  memcpy(b, "{\"a\":\"", 6);
  memset(b + 6, 'x', n - 8);
  memcpy(b + n - 2, "\"}", 2);
}

/*
 * POST target with request id rid and a body of n bytes (n >= 8, a JSON
 * object {"a":"xx...x"}), with Content-Length or, when chunked, in one
 * chunk, asking to close: its response.
 */
static inline void raw_post_sized(int port, const char *target, const char *rid,
                                  size_t n, int chunked, raw_response *out) {
  char head[512];
  int hl = snprintf(head, sizeof head,
                    "POST %s HTTP/1.1\r\nHost: t\r\nX-Request-ID: %s\r\n"
                    "Content-Type: application/json\r\nConnection: close\r\n",
                    target, rid);
  assert_true(hl > 0 && (size_t)hl < sizeof head);
  hl += snprintf(head + hl, sizeof head - (size_t)hl,
                 chunked ? "Transfer-Encoding: chunked\r\n\r\n%zx\r\n"
                         : "Content-Length: %zu\r\n\r\n",
                 n);
  assert_true((size_t)hl < sizeof head);
  static const char tail[] = "\r\n0\r\n\r\n";
  size_t len = (size_t)hl + n + (chunked ? sizeof tail - 1 : 0);
  char *req = malloc(len);
  assert_non_null(req);
  memcpy(req, head, (size_t)hl);
  char *b = req + hl;
  raw_fill_object(b, n);
  if (chunked)
    memcpy(b + n, tail, sizeof tail - 1);
  raw_request(port, req, len, out);
  free(req);
}

/*
 * Reads exactly one response from a kept-alive connection: its head, then
 * Content-Length bytes of body (none when no_body: the answer to a HEAD).
 * Returns 0, or -1 when the server closed before a whole head.
 */
static inline int raw_read_one(int fd, int no_body, raw_response *out) {
  char head[16384];
  size_t n = 0;
  memset(out, 0, sizeof *out);
  while (n < sizeof head - 1) {
    ssize_t r = recv(fd, head + n, 1, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    n++;
    if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
      break;
  }
  if (raw_parse_one(head, n, out) != 0)
    return -1;
  long want = no_body || out->content_length < 0 ? 0 : out->content_length;
  size_t got = 0;
  while ((long)got < want) {
    char chunk[4096];
    size_t ask =
        (size_t)want - got < sizeof chunk ? (size_t)want - got : sizeof chunk;
    ssize_t r = recv(fd, chunk, ask, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    size_t room = got < sizeof out->body - 1 ? sizeof out->body - 1 - got : 0;
    memcpy(out->body + got, chunk, (size_t)r < room ? (size_t)r : room);
    got += (size_t)r;
  }
  out->body_len = got;
  out->body[got < sizeof out->body ? got : sizeof out->body - 1] = '\0';
  out->used = n + got;
  return 0;
}

/* Reads up to and including the blank line that ends a response head (an
 * interim "100 Continue" one, say): a NUL-terminated buf, its length. */
static inline size_t raw_read_head(int fd, char *buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    ssize_t r = recv(fd, buf + n, 1, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n++;
    if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
      break;
  }
  buf[n] = '\0';
  return n;
}

/* Reads until the server closes; out: the first response (status 0 when
 * none). */
static inline void raw_read_response(int fd, raw_response *out) {
  size_t n;
  char *buf = raw_read_all(fd, &n);
  if (raw_parse_one(buf, n, out) != 0) {
    memset(out, 0, sizeof *out);
    out->content_length = -1;
  }
  free(buf);
}

/* Resets the connection (RST): the client is gone, at once. */
static inline void raw_abort(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

#endif /* TRAIL_TEST_HTTP_RAW_H */
