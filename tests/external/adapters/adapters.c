/*
 * A program outside the tree that uses two adapters and the libraries they
 * serve: civetweb (trail_civetweb_callbacks(), mg_version()) and libcurl
 * (trail_curl_begin() on a handle of its own, curl_easy_init()). Linked with
 * trail::trail_civetweb and trail::trail_curl only (CMakeLists.txt here),
 * or with `pkg-config --libs trail-civetweb trail-curl`, it must build and
 * run: the adapters' targets and .pc files bring civetweb and libcurl.
 *
 * It writes two lines: the outgoing call's own line (logger http.client,
 * ended as a failed connection; nothing is sent), then "adapters" with what
 * the calls returned.
 */
#include <civetweb.h>
#include <curl/curl.h>
#include <string.h>
#include <trail.h>
#include <trail/civetweb.h>
#include <trail/curl.h>

int main(void) {
  if (trail_init("external-adapters") != 0)
    return 1;
  struct mg_callbacks cb;
  memset(&cb, 0, sizeof cb);
  int civetweb = trail_civetweb_callbacks(&cb, NULL);

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return 1;
  CURL *easy = curl_easy_init();
  if (easy == NULL)
    return 1;
  trail_ctx ctx;
  trail_ctx_init(&ctx);
  trail_curl_call call;
  int curl = trail_curl_begin(&call, easy, &ctx, NULL);
  size_t span_len = strlen(trail_curl_span_id(&call));
  trail_curl_end(&call, CURLE_COULDNT_CONNECT);
  curl_easy_cleanup(easy);
  curl_global_cleanup();

  trail_info(NULL, "adapters", TRAIL_INT("civetweb", civetweb),
             TRAIL_BOOL("hooked", cb.begin_request != NULL),
             TRAIL_STR("mg_version", mg_version()), TRAIL_INT("curl", curl),
             TRAIL_INT("span_len", span_len));
  trail_shutdown();
  return 0;
}
