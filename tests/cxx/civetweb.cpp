/*
 * The civetweb adapter from C++: a server on 127.0.0.1 (a port the kernel
 * picks) with trail's callbacks and a handler written as a lambda, one
 * request over a raw socket, and its lines on standard output, which
 * tests/check_cxx.sh parses: the handler's line and the access line, both
 * with the request id the client sent.
 *
 * Exits 1 when the server does not start or the response is not a 200
 * carrying that X-Request-ID.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <trail.h>
#include <trail/civetweb.h>
#include <trail/http.h>

namespace {

const char *const kRequestId = "cxx-civetweb-1";
const int kSocketTimeoutSec = 30; /* bounds a broken test only */

/* GET /hello over one connection; the whole response, read until close. */
std::string fetch(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return "";
  struct timeval tv = {kSocketTimeoutSec, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<struct sockaddr *>(&sa), sizeof sa) == 0) {
    const std::string req = std::string("GET /hello?q=1 HTTP/1.1\r\n"
                                        "Host: 127.0.0.1\r\n"
                                        "X-Request-ID: ") +
                            kRequestId + "\r\nConnection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        reply.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return reply;
}

bool reply_ok(const std::string &reply) {
  const std::string id_header = std::string("X-Request-ID: ") + kRequestId;
  return reply.compare(0, 12, "HTTP/1.1 200") == 0 &&
         reply.find(id_header) != std::string::npos &&
         reply.find("\r\n\r\nhello from C++\n") != std::string::npos;
}

} // namespace

int main() {
  static trail_http_config cfg; /* outlives the server */
  trail_service_set("check-cxx-civetweb");
  trail_output_set("stdout", nullptr);
  trail_http_config_init(&cfg);
  struct mg_callbacks cb;
  std::memset(&cb, 0, sizeof cb);
  if (trail_civetweb_callbacks(&cb, &cfg) != 0)
    return 1;
  const char *options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "1",
                           nullptr};
  mg_init_library(0);
  struct mg_context *ctx = mg_start(&cb, nullptr, options);
  if (ctx == nullptr)
    return 1;
  mg_set_request_handler(
      ctx, "/hello",
      [](struct mg_connection *conn, void *) -> int {
        const std::string body = "hello from C++\n";
        trail_info(nullptr, "handled", TRAIL_STR("handler", "lambda"),
                   TRAIL_UINT("body_bytes", body.size()));
        return trail_civetweb_send(conn, 200, "text/plain", body.data(),
                                   body.size());
      },
      nullptr);
  struct mg_server_port ports[2];
  int port = mg_get_server_ports(ctx, 2, ports) >= 1 ? ports[0].port : 0;
  const std::string reply = port > 0 ? fetch(port) : "";
  mg_stop(ctx); /* joins the workers: the access line is written */
  mg_exit_library();
  trail_flush();
  if (!reply_ok(reply)) {
    std::fprintf(stderr, "civetweb: unexpected response:\n%s\n", reply.c_str());
    return 1;
  }
  trail_shutdown();
  return 0;
}
