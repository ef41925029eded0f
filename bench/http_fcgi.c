/*
 * The HTTP benchmark as a FastCGI application on libfcgi, for nginx in
 * front (bench/http_bench.h has the command line; --port is the FastCGI
 * port): --threads worker threads (default 8), each taking the next request
 * with FCGX_Accept_r() under one lock, in both modes. --trail: trail_fcgi
 * in place of a bare FCGX_Request, trail_fcgi_begin(),
 * trail_fcgi_respond() and trail_fcgi_end(); --plain writes the same
 * response with FCGX_PutStr() and ends it with FCGX_Finish_r().
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <trail/fcgi.h>

#include "http_bench.h"

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static trail_http_config cfg;
static int listen_fd = -1;

static void *worker(void *arg) {
  (void)arg;
  trail_fcgi tf;
  FCGX_Request *req = &tf.request;
  if (hb_trail_on) {
    if (trail_fcgi_init(&tf, &cfg, listen_fd) != 0)
      return NULL;
  } else if (FCGX_InitRequest(req, listen_fd, 0) != 0) {
    return NULL;
  }
  for (;;) {
    pthread_mutex_lock(&accept_lock);
    int rc = FCGX_Accept_r(req);
    pthread_mutex_unlock(&accept_lock);
    if (rc < 0)
      break;
    if (hb_trail_on)
      trail_fcgi_begin(&tf);
    hb_reply r;
    hb_handle(FCGX_GetParam("REQUEST_METHOD", req->envp),
              FCGX_GetParam("REQUEST_URI", req->envp), &r);
    if (hb_trail_on) {
      static const char *const headers[] = {"Content-Type: application/json",
                                            NULL};
      trail_fcgi_respond(&tf, r.status, headers, r.body, r.len);
      trail_fcgi_end(&tf);
    } else {
      /* snprintf: libfcgi's own FCGX_FPrintF() knows no %zu */
      char head[128];
      int n = snprintf(head, sizeof head,
                       "Status: %d\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n\r\n",
                       r.status, r.len);
      FCGX_PutStr(head, n, req->out);
      FCGX_PutStr(r.body, (int)r.len, req->out);
      FCGX_Finish_r(req);
    }
  }
  FCGX_Free(req, 0);
  return NULL;
}

int main(int argc, char **argv) {
  hb_args a;
  hb_parse(&a, argc, argv, 8);
  sigset_t stop;
  hb_block_signals(&stop);
  hb_trail_init(&a, "bench-fcgi");
  if (a.trail)
    hb_http_config(&cfg);
  if (FCGX_Init() != 0) {
    fprintf(stderr, "http_fcgi: cannot initialise libfcgi\n");
    hb_trail_shutdown(&a);
    return 1;
  }
  listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)a.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listen_fd < 0 ||
      bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listen_fd, SOMAXCONN) != 0) {
    fprintf(stderr, "http_fcgi: cannot listen on port %d\n", a.port);
    hb_trail_shutdown(&a);
    return 1;
  }
  pthread_t threads[256];
  int started = 0;
  for (; started < a.threads; started++)
    if (pthread_create(&threads[started], NULL, worker, NULL) != 0)
      break;
  hb_ready();
  hb_wait_stop(&stop);
  shutdown(listen_fd, SHUT_RDWR);
  for (int i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  close(listen_fd);
  hb_trail_shutdown(&a);
  return 0;
}
