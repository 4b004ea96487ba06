// Fuzz target: one request line on the control socket (parse_control_request), from whoever
// can connect to it. Properties:
//  - a refusal can be sent back: its message and hint make a JSON reply that serializes as the
//    server writes it (invalid UTF-8 replaced, e.g. a quoted field name cut inside a character);
//  - an accepted request, written the way the clients write it (control_request_json), reads
//    back as the same request;
//  - a dump or drill request's port is within 1..65535 (a drill's repository within 1..256, and
//    the one its copy restores from), and the request then goes through
//    build_dump_job or build_drill_job, as the daemon does, without a crash;
//  - the same bytes read as a reply line by a client (parse_control_reply): refused with a
//    message, or a reply that the server's mapping writes back as one that reads the same.
#include <nlohmann/json.hpp>

#include <string>
#include <variant>

#include "daemon/control_api.hpp"
#include "daemon/control_replies.hpp"
#include "fuzz_check.hpp"
#include "fuzz_config.hpp"
#include "pipelines/drill_job.hpp"
#include "pipelines/dump_job.hpp"

namespace {

void check_reply_serializes(const agent::Error& error) {
  const nlohmann::json reply = agent::control_reply_json(agent::RefusedReply{agent::reply_error(error)});
  try {
    (void)reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const nlohmann::json::exception& e) {
    agent::fuzz::fail("a refusal cannot be sent as JSON", e.what());
  }
}

void check_reply_line(const std::string& text) {
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return;
  const auto reply = agent::parse_control_reply(json);
  if (!reply) {
    agent::fuzz::check(!reply.error().message.empty(), "a reply refused without a message");
    return;
  }
  std::string written;
  try {
    written =
        agent::control_reply_json(*reply).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const nlohmann::json::exception& e) {
    agent::fuzz::fail("an understood reply cannot be written back", e.what());
  }
  const auto again = agent::parse_control_reply(nlohmann::json::parse(written, nullptr, false));
  agent::fuzz::check(again.ok(), "a reply as the server writes it is not understood", written);
  agent::fuzz::check(agent::control_reply_json(*again).dump(
                         -1, ' ', false, nlohmann::json::error_handler_t::replace) == written,
                     "a reply reads back as another one", written);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_reply_line(std::string(agent::fuzz::as_text(data, size)));
  const auto request = agent::parse_control_request(agent::fuzz::as_text(data, size));
  if (!request) {
    agent::fuzz::check(!request.error().message.empty(), "a refusal without a message");
    check_reply_serializes(request.error());
    return 0;
  }
  const nlohmann::json sent = agent::control_request_json(*request);
  std::string line;
  try {
    line = sent.dump();
  } catch (const nlohmann::json::exception& e) {
    agent::fuzz::fail("an accepted request cannot be written back", e.what());
  }
  const auto again = agent::parse_control_request(line);
  agent::fuzz::check(again.ok(), "a request as the client writes it is refused", line);
  agent::fuzz::check(agent::control_request_json(*again) == sent, "a request reads back as another one",
                     line);

  if (const auto* dump = std::get_if<agent::DumpCommand>(&*request)) {
    if (dump->arguments.port)
      agent::fuzz::check(*dump->arguments.port >= 1 && *dump->arguments.port <= 65535,
                         "a dump request with a port outside 1..65535 was accepted", line);
    const auto job = agent::build_dump_job(agent::fuzz::default_config(), dump->arguments);
    if (!job) check_reply_serializes(job.error());
  }
  if (const auto* drill = std::get_if<agent::DrillCommand>(&*request)) {
    if (drill->arguments.port)
      agent::fuzz::check(*drill->arguments.port >= 1 && *drill->arguments.port <= 65535,
                         "a drill request with a port outside 1..65535 was accepted", line);
    if (drill->arguments.repo)
      agent::fuzz::check(*drill->arguments.repo >= 1 && *drill->arguments.repo <= 256,
                         "a drill request with a repository outside 1..256 was accepted", line);
    // As the daemon does before queueing it.
    const auto job = agent::build_drill_job(agent::fuzz::default_config(), drill->arguments,
                                            agent::SysMicros{std::chrono::seconds{1796119200}});
    if (!job) check_reply_serializes(job.error());
    if (job && drill->arguments.repo)
      agent::fuzz::check(job->copy.repo == *drill->arguments.repo,
                         "a drill request's repository is not the one its copy restores from", line);
  }
  return 0;
}
