// spdlog's program in the benchmark: "spdlog_bench MODE N PATH [THREADS]".
//
// spdlog has no structured fields: the JSON frame of the line is its pattern
// (timestamp, level, logger name and the service as a literal) and the
// payload is a fmt format string with the keys written into it. Nothing is
// escaped, which makes it cheaper than a real JSON encoder.
//
// MODE sync:  logger over spdlog's basic_file_sink_mt (stdio-buffered).
// MODE async: async_logger on spdlog's thread pool (queue of 8192, one
//             worker), overflow policy "block", over the same sink.
#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

const char *const kPattern =
    "{\"timestamp\":\"%Y-%m-%dT%H:%M:%S.%fZ\",\"level\":\"%l\","
    "\"logger\":\"%n\",\"service\":\"orders-api\",%v}";

void usage(const char *prog) {
  std::fprintf(stderr, "usage: %s sync|async N PATH [THREADS]\n", prog);
  std::exit(2);
}

bool parse_u64(const char *s, std::uint64_t *out) {
  if (s[0] < '0' || s[0] > '9')
    return false;
  char *end;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  *out = v;
  return true;
}

void log_events(spdlog::logger *log, std::uint64_t count) {
  // The ids are per-event arguments, as a caller holds them.
  const std::string request_id = "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91";
  const std::string user_id = "user-4711";
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string span_id = "00f067aa0ba902b7";
  for (std::uint64_t i = 0; i < count; i++) {
    log->info("\"message\":\"{}\",\"request_id\":\"{}\",\"user_id\":\"{}\","
              "\"trace_id\":\"{}\",\"span_id\":\"{}\",\"method\":\"{}\","
              "\"path\":\"{}\",\"status\":{},\"duration_ms\":{}",
              "request completed", request_id, user_id, trace_id, span_id,
              "GET", "/api/orders/42", 200, 12.5 + (i % 100) / 100.0);
  }
}

} // namespace

int main(int argc, char **argv) {
  const char *prog = argc > 0 ? argv[0] : "spdlog_bench";
  if (argc < 4 || argc > 5)
    usage(prog);
  std::string mode = argv[1];
  std::uint64_t n = 0, threads = 1;
  if ((mode != "sync" && mode != "async") || !parse_u64(argv[2], &n) ||
      (argc == 5 &&
       (!parse_u64(argv[4], &threads) || threads < 1 || threads > 256)))
    usage(prog);
  std::string path = argv[3];

  std::shared_ptr<spdlog::logger> log;
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, true);
    if (mode == "async") {
      spdlog::init_thread_pool(spdlog::details::default_async_q_size, 1);
      log = std::make_shared<spdlog::async_logger>(
          "orders", sink, spdlog::thread_pool(),
          spdlog::async_overflow_policy::block);
    } else {
      log = std::make_shared<spdlog::logger>("orders", sink);
    }
  } catch (const spdlog::spdlog_ex &e) {
    std::fprintf(stderr, "%s: %s\n", prog, e.what());
    return 1;
  }
  log->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      kPattern, spdlog::pattern_time_type::utc, "\n"));
  log->set_level(spdlog::level::info);

  std::uint64_t per = n / threads;
  if (threads == 1) {
    log_events(log.get(), per);
  } else {
    std::vector<std::thread> pool;
    for (std::uint64_t k = 0; k < threads; k++)
      pool.emplace_back(log_events, log.get(), per);
    for (auto &t : pool)
      t.join();
  }

  log->flush();
  log.reset();
  spdlog::shutdown(); // joins the async worker after it drained the queue
  return 0;
}
