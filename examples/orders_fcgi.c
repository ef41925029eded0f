/*
 * The orders service (examples/orders.h) as a FastCGI application on
 * libfcgi, with trail's adapter, for a web server such as nginx in front
 * (docs/middleware-fcgi.md has the nginx configuration): every line a
 * request logs carries its request_id and trace_id, every response carries
 * X-Request-ID, every request ends with one access line. The ids, the
 * client's address and its User-Agent come from the FastCGI params nginx
 * sends (HTTP_X_REQUEST_ID, HTTP_TRACEPARENT, REMOTE_ADDR, ...).
 *
 *   orders_fcgi [--port N] [--threads N]
 *   orders_fcgi --help
 *
 * It serves FastCGI (not HTTP) on 127.0.0.1:N; --port 0 lets the kernel
 * pick the port, which the "listening" line says. --threads: the worker
 * threads (default 8), each taking the next connection with
 * FCGX_Accept_r() and serving its request. On SIGINT or SIGTERM it stops
 * accepting, lets the requests in flight finish, logs "stopped" and exits
 * 0.
 *
 * What trail adds to a libfcgi service is marked "trail:"; the rest is what
 * the service would be without it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <trail.h>
#include <trail/fcgi.h>

#include "orders.h"

#define THREADS_DEFAULT 8
#define THREADS_MAX 256

static const char USAGE[] =
    "usage: orders_fcgi [--port N] [--threads N]\n"
    "\n"
    "The orders service (GET /api/orders/{id}, POST /api/orders,\n"
    "GET /healthz, GET /metrics) as a FastCGI application on libfcgi, with\n"
    "trail's adapter, for a web server such as nginx in front\n"
    "(fastcgi_pass 127.0.0.1:N). It speaks FastCGI, not HTTP. It writes\n"
    "trail's JSON lines on stdout; SIGINT or SIGTERM stops it after the\n"
    "requests in flight.\n"
    "\n"
    "  --port N      listen on 127.0.0.1, port N (default 8080; 0: the\n"
    "                kernel chooses, and the \"listening\" line says which)\n"
    "  --threads N   worker threads, 1 to 256 (default 8)\n"
    "  -h, --help    print this help and exit\n";

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t flight_lock = PTHREAD_MUTEX_INITIALIZER;
static int in_flight; /* requests accepted and not yet ended */

static trail_http_config cfg; /* trail: read by every worker */
static int listen_fd = -1;

static void flight_add(int d) {
  pthread_mutex_lock(&flight_lock);
  in_flight += d;
  pthread_mutex_unlock(&flight_lock);
}

/*
 * The request body, CONTENT_LENGTH bytes of FastCGI's stdin. Returns the
 * bytes read (*body malloc'd, NUL-terminated, NULL for none); -1 when the
 * body is larger than ORDERS_BODY_MAX, -2 when out of memory.
 */
static long read_body(FCGX_Request *req, char **body) {
  *body = NULL;
  const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->envp);
  char *end;
  errno = 0;
  unsigned long long want = cl != NULL ? strtoull(cl, &end, 10) : 0;
  if (cl == NULL || errno != 0 || end == cl || want == 0)
    return 0;
  if (want > ORDERS_BODY_MAX)
    return -1;
  char *buf = malloc((size_t)want + 1);
  if (buf == NULL)
    return -2;
  int got = FCGX_GetStr(buf, (int)want, req->in);
  if (got < 0)
    got = 0;
  buf[got] = '\0';
  *body = buf;
  return got;
}

/* One request, with its context entered by trail_fcgi_begin(). */
static void serve(trail_fcgi *tf) {
  FCGX_Request *req = &tf->request;
  const char *method = FCGX_GetParam("REQUEST_METHOD", req->envp);
  const char *path = FCGX_GetParam("REQUEST_URI", req->envp);
  orders_reply rep;
  char *body;
  long len = read_body(req, &body);
  if (len == -1) {
    orders_too_large(&rep);
  } else if (len < 0) {
    orders_set(&rep, 500, "{\"error\":\"out of memory\"}");
  } else {
    orders_handle(method ? method : "", path ? path : "/", body, (size_t)len,
                  &rep);
  }
  free(body);
  char type[128];
  snprintf(type, sizeof type, "Content-Type: %s", rep.content_type);
  const char *headers[] = {type, NULL};
  /* trail: the response through the adapter: Status, X-Request-ID, the
   * headers, Content-Length and the body, counted for the access line. */
  trail_fcgi_respond(tf, rep.status, headers, rep.body, rep.len);
}

/*
 * A worker: accepts the next request (one thread in FCGX_Accept_r() at a
 * time, as libfcgi's threaded example does), serves it, ends it. It stops
 * when accepting fails: the main thread shuts the listening socket down.
 */
static void *worker(void *arg) {
  (void)arg;
  trail_fcgi tf; /* trail: in place of a bare FCGX_Request */
  if (trail_fcgi_init(&tf, &cfg, listen_fd) != 0)
    return NULL;
  for (;;) {
    pthread_mutex_lock(&accept_lock);
    int rc = FCGX_Accept_r(&tf.request);
    pthread_mutex_unlock(&accept_lock);
    if (rc < 0)
      break;
    flight_add(1);
    trail_fcgi_begin(&tf); /* trail: ids from the params, context entered */
    serve(&tf);
    trail_fcgi_end(&tf); /* trail: finished, context left, access line */
    flight_add(-1);
  }
  FCGX_Free(&tf.request, 0);
  return NULL;
}

/* The command line (cli.h): --port and --threads. */
static void parse_args(int argc, char **argv, int *port, long *threads) {
  cli cl;
  cli_init(&cl, "orders_fcgi", USAGE, argc, argv);
  while (cli_next(&cl)) {
    const char *v;
    if (cli_port(&cl, port))
      continue;
    if (!cli_value(&cl, "--threads", &v))
      cli_unknown(&cl);
    long n = 0;
    for (const char *p = v; *p; p++) {
      if (*p < '0' || *p > '9')
        cli_fail(&cl, "--threads: '%s' is not a number", v);
      if (n <= THREADS_MAX)
        n = n * 10 + (*p - '0');
    }
    if (n < 1 || n > THREADS_MAX)
      cli_fail(&cl, "--threads: %s is out of range (1 to %d)", v, THREADS_MAX);
    *threads = n;
  }
}

/* A listening TCP socket on 127.0.0.1:port; *bound gets the real port. */
static int open_listener(int port, int *bound) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(fd, SOMAXCONN) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
    close(fd);
    return -1;
  }
  *bound = ntohs(a.sin_port);
  return fd;
}

int main(int argc, char **argv) {
  int port = 8080;
  long nthreads = THREADS_DEFAULT;
  parse_args(argc, argv, &port, &nthreads);
  trail_init("orders-fcgi");
  /* trail: the middleware configuration, borrowed by every trail_fcgi. */
  orders_http_config(&cfg);
  if (FCGX_Init() != 0) {
    trail_error(NULL, "cannot initialise libfcgi");
    trail_shutdown();
    return 1;
  }
  int bound = 0;
  listen_fd = open_listener(port, &bound);
  if (listen_fd < 0) {
    trail_errorf(NULL, "cannot listen on 127.0.0.1:%d: %s", port,
                 strerror(errno));
    trail_shutdown();
    return 1;
  }

  /* SIGINT and SIGTERM: see orders_stop_pipe(). */
  int pfd[2];
  sigset_t old_mask;
  if (orders_stop_pipe(pfd, &old_mask) != 0) {
    trail_shutdown();
    return 1;
  }
  pthread_t threads[THREADS_MAX];
  long started = 0;
  for (; started < nthreads; started++)
    if (pthread_create(&threads[started], NULL, worker, NULL) != 0)
      break;
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  if (started == 0) {
    trail_error(NULL, "cannot start a worker thread");
    trail_shutdown();
    return 1;
  }
  trail_info(NULL, "listening", TRAIL_INT("port", bound),
             TRAIL_INT("threads", started), TRAIL_STR("server", "libfcgi"),
             TRAIL_STR("protocol", "fastcgi"));

  char c;
  while (read(pfd[0], &c, 1) < 0 && errno == EINTR) {
  }

  /* Stop accepting: a worker blocked in accept() returns at once, the
   * others find the socket shut when their request is done. */
  pthread_mutex_lock(&flight_lock);
  int busy = in_flight;
  pthread_mutex_unlock(&flight_lock);
  trail_info(NULL, "stopping", TRAIL_INT("in_flight", busy));
  shutdown(listen_fd, SHUT_RDWR);
  for (long i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  close(listen_fd);
  orders_stop_fd = -1; /* a late signal finds no descriptor to write to */
  close(pfd[0]);
  close(pfd[1]);
  trail_info(NULL, "stopped");
  trail_shutdown();
  return 0;
}
