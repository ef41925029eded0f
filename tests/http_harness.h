/*
 * Test harness for the example services: starts one as a child process on a
 * loopback port the kernel picks (--port 0), reads the port from its
 * "listening" line, keeps every line it writes (parsed with jansson), sends
 * real HTTP requests with libcurl, and stops it with SIGTERM.
 *
 * The examples' side of the contract (examples/orders.h): log, at info, a
 * line with message "listening" and an integer field "port" once the socket
 * is bound; exit with status 0 on SIGTERM.
 *
 * Bytes libcurl will not send go through the raw client, http_raw.h.
 *
 * Header-only, like support.h.
 */
#ifndef TRAIL_TEST_HTTP_HARNESS_H
#define TRAIL_TEST_HTTP_HARNESS_H

#include "support.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../examples/orders_config.h"
#include "http_raw.h"

typedef struct service {
  pid_t pid;
  int port;
  int out_fd;
  pthread_t reader;
  pthread_mutex_t lock;
  pthread_cond_t cv;
  json_t **lines; /* every stdout line, parsed */
  char **texts;   /* and as written */
  size_t n, cap;
  int eof;
  int bad_lines; /* lines that did not parse or broke the contract */
} service;

static inline void *service_reader(void *arg) {
  service *s = arg;
  FILE *f = fdopen(s->out_fd, "r");
  char *line = NULL;
  size_t cap_ = 0;
  ssize_t len;
  while ((len = getline(&line, &cap_, f)) > 0) {
    json_error_t e;
    json_t *j = NULL;
    int ok = line[len - 1] == '\n';
    for (ssize_t i = 0; ok && i + 1 < len; i++)
      if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
        ok = 0;
    if (ok)
      j = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                     &e);
    pthread_mutex_lock(&s->lock);
    if (j == NULL || !json_is_object(j)) {
      fprintf(stderr, "harness: bad line: %.300s\n", line);
      s->bad_lines++;
      json_decref(j);
    } else {
      if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->lines = realloc(s->lines, s->cap * sizeof *s->lines);
        s->texts = realloc(s->texts, s->cap * sizeof *s->texts);
      }
      s->lines[s->n] = j;
      s->texts[s->n] = strdup(line);
      s->n++;
      json_t *m = json_object_get(j, "message");
      json_t *p = json_object_get(j, "port");
      if (s->port == 0 && m && json_is_string(m) &&
          strcmp(json_string_value(m), "listening") == 0 && json_is_integer(p))
        s->port = (int)json_integer_value(p);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->lock);
  }
  free(line);
  fclose(f);
  pthread_mutex_lock(&s->lock);
  s->eof = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* Where the example name is: $TRAIL_TEST_EXAMPLES_DIR/name. */
static inline void service_path(const char *name, char *prog, size_t size) {
  const char *dir = getenv("TRAIL_TEST_EXAMPLES_DIR");
  snprintf(prog, size, "%s/%s", dir ? dir : "../examples", name);
}

/* Whether the example name was built (a test may then skip it). */
static inline int service_built(const char *name) {
  char prog[512];
  service_path(name, prog, sizeof prog);
  return access(prog, X_OK) == 0;
}

/*
 * Starts $TRAIL_TEST_EXAMPLES_DIR/name --port 0 [args...] with the environment
 * given as "K=V" strings (NULL-terminated, may be NULL), and waits for its
 * "listening" line. Skips the test (77) when the example was not built.
 */
static inline void service_start(service *s, const char *name,
                                 const char *const *args,
                                 const char *const *env) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->cv, NULL);
  char prog[512];
  service_path(name, prog, sizeof prog);
  if (access(prog, X_OK) != 0) {
    fprintf(stderr, "harness: %s not built, skipping\n", prog);
    exit(77);
  }
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const char *argv[32] = {prog, "--port", "0"};
    int n = 3;
    for (int i = 0; args && args[i] && n < 31; i++)
      argv[n++] = args[i];
    argv[n] = NULL;
    for (int i = 0; env && env[i]; i++)
      putenv((char *)env[i]);
    execv(prog, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  s->pid = pid;
  s->out_fd = fds[0];
  pthread_create(&s->reader, NULL, service_reader, s);
  pthread_mutex_lock(&s->lock);
  while (s->port == 0 && !s->eof)
    pthread_cond_wait(&s->cv, &s->lock);
  pthread_mutex_unlock(&s->lock);
  if (s->port == 0)
    fail_msg("%s exited before its listening line", name);
}

/*
 * Stops the service with signal sig and waits for it and for its last
 * line. It must exit 0 and every line it wrote must have parsed.
 */
static inline void service_stop_with(service *s, int sig) {
  kill(s->pid, sig);
  int status;
  assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
  pthread_join(s->reader, NULL);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("service ended with status 0x%x", status);
  assert_int_equal(s->bad_lines, 0);
}

/* service_stop_with() SIGTERM, the signal a service manager sends. */
static inline void service_stop(service *s) { service_stop_with(s, SIGTERM); }

static inline void service_free(service *s) {
  for (size_t i = 0; i < s->n; i++) {
    json_decref(s->lines[i]);
    free(s->texts[i]);
  }
  free(s->lines);
  free(s->texts);
  memset(s, 0, sizeof *s);
}

/* Lines whose string key equals value (NULL value: lines having key). */
static inline size_t service_count(service *s, const char *key,
                                   const char *value) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) {
    json_t *v = json_object_get(s->lines[i], key);
    if (v && (value == NULL ||
              (json_is_string(v) && strcmp(json_string_value(v), value) == 0)))
      n++;
  }
  return n;
}

/*
 * The level an access line has when level is what its status gives: a
 * request slower than the examples' threshold (ORDERS_SLOW_MS) is written
 * at warn at least, which a loaded machine or a sanitizer build can reach
 * for any request. So a test expecting info accepts warn exactly then.
 */
static inline const char *service_level(const json_t *acc, const char *level) {
  json_t *d = json_object_get(acc, "duration_ms");
  if (strcmp(level, "info") == 0 && json_is_number(d) &&
      json_number_value(d) > ORDERS_SLOW_MS)
    return "warn";
  return level;
}

/* The access line (logger "http", message "request completed") of a
 * request id; NULL when there is none. */
static inline json_t *service_access_line(service *s, const char *request_id) {
  for (size_t i = 0; i < s->n; i++) {
    json_t *j = s->lines[i];
    json_t *rid = json_object_get(j, "request_id");
    json_t *lg = json_object_get(j, "logger");
    json_t *m = json_object_get(j, "message");
    if (rid && lg && m && strcmp(json_string_value(lg), "http") == 0 &&
        strcmp(json_string_value(m), "request completed") == 0 &&
        strcmp(json_string_value(rid), request_id) == 0)
      return j;
  }
  return NULL;
}

/* ---- requests ---------------------------------------------------------- */

typedef struct http_response {
  long status;
  char request_id[256]; /* the X-Request-ID response header */
  char body[4096];
  size_t body_len;
  int curl_error;
} http_response;

static inline size_t http_on_body(char *p, size_t size, size_t n, void *u) {
  http_response *r = u;
  size_t len = size * n;
  size_t room = sizeof r->body - 1 - r->body_len;
  size_t take = len < room ? len : room;
  memcpy(r->body + r->body_len, p, take);
  r->body_len += take;
  r->body[r->body_len] = '\0';
  return len;
}

static inline size_t http_on_header(char *p, size_t size, size_t n, void *u) {
  http_response *r = u;
  size_t len = size * n;
  if (len > 14 && strncasecmp(p, "X-Request-ID:", 13) == 0) {
    const char *v = p + 13;
    size_t vl = len - 13;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
      v++;
      vl--;
    }
    while (vl > 0 &&
           (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
      vl--;
    if (vl >= sizeof r->request_id)
      vl = sizeof r->request_id - 1;
    memcpy(r->request_id, v, vl);
    r->request_id[vl] = '\0';
  }
  return len;
}

/*
 * One request: method, path, raw header lines ("Name: value", NULL-
 * terminated, may be NULL), and a body for POST (may be NULL).
 */
static inline void http_request(int port, const char *method, const char *path,
                                const char *const *headers, const char *body,
                                http_response *out) {
  memset(out, 0, sizeof *out);
  CURL *c = curl_easy_init();
  assert_non_null(c);
  char url[4096];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  struct curl_slist *h = NULL;
  for (int i = 0; headers && headers[i]; i++)
    h = curl_slist_append(h, headers[i]);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body != NULL) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    h = curl_slist_append(h, "Content-Type: application/json");
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  out->curl_error = (int)curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
}

static inline void http_get(int port, const char *path,
                            const char *const *headers, http_response *out) {
  http_request(port, "GET", path, headers, NULL, out);
}

/* ---- concurrency ------------------------------------------------------- */

typedef struct http_job {
  int port;
  char path[256];
  char rid_header[64]; /* "X-Request-ID: ..." */
  http_response resp;
  pthread_barrier_t *start;
} http_job;

static inline void *http_job_run(void *arg) {
  http_job *j = arg;
  const char *headers[] = {j->rid_header, NULL};
  pthread_barrier_wait(j->start);
  http_get(j->port, j->path, headers, &j->resp);
  return NULL;
}

/* Runs n jobs (port, path and header set) at once: a barrier releases
 * them together. */
static inline void http_jobs_run(int n, http_job *jobs) {
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)n);
  pthread_t *t = calloc((size_t)n, sizeof *t);
  for (int i = 0; i < n; i++) {
    jobs[i].start = &start;
    pthread_create(&t[i], NULL, http_job_run, &jobs[i]);
  }
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  free(t);
  pthread_barrier_destroy(&start);
}

/*
 * Sends n GET requests at once, each with its own X-Request-ID "conc-<i>";
 * path may contain one %d for i.
 */
static inline void http_concurrent(int port, const char *path_fmt, int n,
                                   http_job *jobs) {
  for (int i = 0; i < n; i++) {
    jobs[i].port = port;
    /* path_fmt's one %d, filled by hand: a format that is not a literal
     * would defeat the compiler's format checks. */
    const char *d = strstr(path_fmt, "%d");
    if (d == NULL)
      snprintf(jobs[i].path, sizeof jobs[i].path, "%s", path_fmt);
    else
      snprintf(jobs[i].path, sizeof jobs[i].path, "%.*s%d%s",
               (int)(d - path_fmt), path_fmt, i, d + 2);
    snprintf(jobs[i].rid_header, sizeof jobs[i].rid_header,
             "X-Request-ID: conc-%d", i);
  }
  http_jobs_run(n, jobs);
}

/*
 * The isolation check: every line that carries request_id "conc-<i>" must
 * carry the same trace_id as that request's access line, and every request
 * must have its access line and at least one handler line.
 */
static inline void check_isolation(service *s, int n) {
  for (int i = 0; i < n; i++) {
    char rid[32];
    snprintf(rid, sizeof rid, "conc-%d", i);
    json_t *acc = service_access_line(s, rid);
    if (acc == NULL)
      fail_msg("no access line for %s", rid);
    const char *trace = json_string_value(json_object_get(acc, "trace_id"));
    assert_non_null(trace);
    size_t lines = 0;
    for (size_t k = 0; k < s->n; k++) {
      json_t *r = json_object_get(s->lines[k], "request_id");
      if (r == NULL || strcmp(json_string_value(r), rid) != 0)
        continue;
      lines++;
      const char *t =
          json_string_value(json_object_get(s->lines[k], "trace_id"));
      if (t == NULL || strcmp(t, trace) != 0)
        fail_msg("line of %s carries another trace: %s", rid, s->texts[k]);
    }
    if (lines < 2)
      fail_msg("%s has %zu lines, want the handler's and the access line", rid,
               lines);
  }
  /* No handler line without a request id: a leaked or missing context. */
  for (size_t k = 0; k < s->n; k++) {
    json_t *lg = json_object_get(s->lines[k], "logger");
    if (lg && strcmp(json_string_value(lg), "orders") == 0 &&
        json_object_get(s->lines[k], "request_id") == NULL)
      fail_msg("handler line without request id: %s", s->texts[k]);
  }
}

#endif /* TRAIL_TEST_HTTP_HARNESS_H */
