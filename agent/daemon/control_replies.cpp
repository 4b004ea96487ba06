#include "daemon/control_replies.hpp"

#include <limits>

#include "daemon/control_protocol.hpp"
#include "daemon/json_fields.hpp"
#include "time/target_time.hpp"

namespace agent {

namespace {

constexpr std::int64_t kMaxId = std::numeric_limits<std::int64_t>::max();

Error not_understood(const std::string& message) {
  return make_error(ErrorKind::external_tool, "the agent's reply is not understood: " + message,
                    "the running agent and this command must be the same version (restart the container)");
}

JsonFields reply_fields(const nlohmann::json& object) {
  return JsonFields(object, kControlMaxLine, not_understood);
}

std::string iso(std::chrono::system_clock::time_point t) {
  return format_iso_utc(std::chrono::floor<Microseconds>(t));
}

nlohmann::json error_json(const char* event, const ReplyError& error) {
  return {{"event", event},
          {"ok", false},
          {"error", error.error},
          {"hint", error.hint},
          {"exit_code", error.exit_code}};
}

Result<ReplyError> parse_error(JsonFields& fields) {
  ReplyError error;
  auto message = fields.required_text("error");
  if (!message) return message.error();
  error.error = *message;
  auto hint = fields.text("hint");
  if (!hint) return hint.error();
  error.hint = hint->value_or("");
  auto code = fields.required_integer("exit_code", 1, 255);
  if (!code) return code.error();
  error.exit_code = static_cast<int>(*code);
  auto ok = fields.flag("ok");
  if (!ok) return ok.error();
  if (*ok && **ok) return not_understood("an error reply says \"ok\": true");
  return error;
}

Result<BackupReport> parse_report(const nlohmann::json& object) {
  auto fields = reply_fields(object);
  BackupReport r;
  auto id = fields.required_integer("job_id", 0, kMaxId);
  if (!id) return id.error();
  r.job_id = static_cast<std::uint64_t>(*id);
  for (auto [key, into] :
       {std::pair{"type", &r.type}, std::pair{"trigger", &r.trigger}, std::pair{"reason", &r.reason},
        std::pair{"requested_at", &r.requested_at}, std::pair{"outcome", &r.outcome},
        std::pair{"message", &r.message}, std::pair{"started_at", &r.started_at}}) {
    auto value = fields.required_text(key);
    if (!value) return value.error();
    *into = *value;
  }
  auto code = fields.required_integer("pgbackrest_exit_code", -1, 255);
  if (!code) return code.error();
  r.pgbackrest_exit_code = static_cast<int>(*code);
  auto exit_code = fields.required_integer("exit_code", 0, 255);
  if (!exit_code) return exit_code.error();
  r.exit_code = static_cast<int>(*exit_code);
  auto seconds = fields.required_number("seconds");
  if (!seconds) return seconds.error();
  r.seconds = *seconds;
  auto repo = fields.required_integer("repo", 0, 256);
  if (!repo) return repo.error();
  r.repo = static_cast<int>(*repo);
  if (auto s = fields.no_unknown_keys("a backup report"); !s) return s.error();
  return r;
}

Result<DumpWritten> parse_written(const nlohmann::json& object) {
  auto fields = reply_fields(object);
  DumpWritten w;
  for (auto [key, into] : {std::pair{"output", &w.output}, std::pair{"manifest", &w.manifest},
                           std::pair{"checksum", &w.checksum}, std::pair{"backup_set", &w.backup_set}}) {
    auto value = fields.required_text(key);
    if (!value) return value.error();
    *into = *value;
  }
  auto bytes = fields.required_integer("bytes", 0, kMaxId);
  if (!bytes) return bytes.error();
  w.bytes = static_cast<std::uint64_t>(*bytes);
  auto repo = fields.required_integer("repo", 0, 256);
  if (!repo) return repo.error();
  w.repo = static_cast<int>(*repo);
  auto gap = fields.required_number("gap_seconds");
  if (!gap) return gap.error();
  w.gap_seconds = *gap;
  if (auto s = fields.no_unknown_keys("a dump summary"); !s) return s.error();
  return w;
}

Result<DrillSummary> parse_drill_summary(const nlohmann::json& object) {
  auto fields = reply_fields(object);
  DrillSummary d;
  for (auto [key, into] : {std::pair{"id", &d.id}, std::pair{"result", &d.result},
                           std::pair{"manifest", &d.manifest}, std::pair{"backup_set", &d.backup_set},
                           std::pair{"target", &d.target}, std::pair{"first_failure", &d.first_failure}}) {
    auto value = fields.required_text(key);
    if (!value) return value.error();
    *into = *value;
  }
  if (d.result != "passed" && d.result != "failed")
    return not_understood("a drill summary with result \"" + shortened(d.result) + "\"");
  auto exit_code = fields.required_integer("exit_code", 0, 255);
  if (!exit_code) return exit_code.error();
  d.exit_code = static_cast<int>(*exit_code);
  auto repo = fields.required_integer("repo", 0, 256);
  if (!repo) return repo.error();
  d.repo = static_cast<int>(*repo);
  for (auto [key, into] :
       {std::pair{"gap_seconds", &d.gap_seconds}, std::pair{"total_seconds", &d.total_seconds}}) {
    auto value = fields.required_number(key);
    if (!value) return value.error();
    *into = *value;
  }
  for (auto [key, into] :
       {std::pair{"objects_checked", &d.objects_checked}, std::pair{"objects_failed", &d.objects_failed}}) {
    auto value = fields.required_integer(key, 0, kMaxId);
    if (!value) return value.error();
    *into = static_cast<std::uint64_t>(*value);
  }
  if (auto s = fields.no_unknown_keys("a drill summary"); !s) return s.error();
  return d;
}

Result<StepReply> parse_step(JsonFields& fields, std::string job) {
  auto step = fields.required_text("step");
  if (!step) return step.error();
  auto state = fields.required_text("state");
  if (!state) return state.error();
  auto seconds = fields.required_number("seconds");
  if (!seconds) return seconds.error();
  return StepReply{std::move(job), *step, *state, *seconds};
}

// A finished reply: "ok": true with the summary `read` understands, or the error fields.
template <class Reply, class Read>
Result<ControlReplyMessage> parse_finished(JsonFields& fields, const std::string& event, Read read) {
  auto ok = fields.flag("ok");
  if (!ok) return ok.error();
  if (!*ok) return not_understood("a " + event + " reply without \"ok\"");
  if (!**ok) {
    auto error = parse_error(fields);
    if (!error) return error.error();
    return ControlReplyMessage(Reply{*error});
  }
  auto summary = fields.object("summary");
  if (!summary) return summary.error();
  if (!*summary) return not_understood("a " + event + " reply without \"summary\"");
  auto parsed = read(**summary);
  if (!parsed) return parsed.error();
  return ControlReplyMessage(Reply{*parsed});
}

// Overloaded lambdas for std::visit.
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

nlohmann::json dump_kept_json(const DumpKeptReply& k) {
  return {{"socket_dir", k.socket_dir},
          {"port", k.port},
          {"user", k.user},
          {"database", k.database},
          {"pod", k.pod},
          {"since", k.since},
          {"until", k.until}};
}

ReplyError reply_error(const Error& error) {
  return {error.message, error.hint, exit_code_for(error.kind)};
}

BackupReport backup_report(const BackupResult& result) {
  return {result.job_id,
          backup_type_name(result.request.type),
          trigger_name(result.request.trigger),
          result.request.reason,
          iso(result.request.requested_at),
          backup_outcome_name(result.outcome),
          result.message,
          result.pgbackrest_exit_code,
          backup_exit_code(result),
          iso(result.started),
          result.seconds,
          result.repo};
}

nlohmann::json backup_report_json(const BackupReport& r) {
  return {{"job_id", r.job_id},
          {"type", r.type},
          {"trigger", r.trigger},
          {"reason", r.reason},
          {"requested_at", r.requested_at},
          {"outcome", r.outcome},
          {"message", r.message},
          {"pgbackrest_exit_code", r.pgbackrest_exit_code},
          {"exit_code", r.exit_code},
          {"started_at", r.started_at},
          {"seconds", r.seconds},
          {"repo", r.repo}};
}

nlohmann::json control_reply_json(const ControlReplyMessage& reply) {
  return std::visit(
      Overloaded{
          [](const HeartbeatReply&) -> nlohmann::json {
            return {{"event", "heartbeat"}};
          },
          [](const RefusedReply& r) { return error_json("refused", r.error); },
          [](const StatusReply& r) -> nlohmann::json {
            return {{"event", "status"}, {"ok", true}, {"status", r.status}};
          },
          [](const BackupAcceptedReply& r) -> nlohmann::json {
            return {{"event", "backup-accepted"},
                    {"admission", r.admission},
                    {"job_id", r.job_id},
                    {"reason", r.reason}};
          },
          [](const BackupFinishedReply& r) -> nlohmann::json {
            return {{"event", "backup-finished"}, {"result", backup_report_json(r.result)}};
          },
          [](const AbandonedReply& r) -> nlohmann::json {
            return {{"event", "abandoned"}, {"reason", r.reason}};
          },
          [](const DumpAcceptedReply& r) -> nlohmann::json {
            return {{"event", "dump-accepted"}, {"job_id", r.job_id}};
          },
          [](const StepReply& r) -> nlohmann::json {
            return {{"event", r.job + "-step"}, {"step", r.step}, {"state", r.state}, {"seconds", r.seconds}};
          },
          [](const DumpKeptReply& r) -> nlohmann::json {
            auto json = dump_kept_json(r);
            json["event"] = "dump-kept";
            return json;
          },
          [](const DumpProgressReply& r) -> nlohmann::json {
            return {{"event", "dump-progress"}, {"bytes_done", r.bytes_done}, {"bytes_total", r.bytes_total}};
          },
          [](const DumpFinishedReply& r) -> nlohmann::json {
            if (const auto* error = std::get_if<ReplyError>(&r.outcome))
              return error_json("dump-finished", *error);
            const auto& w = std::get<DumpWritten>(r.outcome);
            return {{"event", "dump-finished"},
                    {"ok", true},
                    {"summary",
                     {{"output", w.output},
                      {"manifest", w.manifest},
                      {"bytes", w.bytes},
                      {"checksum", w.checksum},
                      {"backup_set", w.backup_set},
                      {"repo", w.repo},
                      {"gap_seconds", w.gap_seconds}}}};
          },
          [](const DrillAcceptedReply& r) -> nlohmann::json {
            return {{"event", "drill-accepted"}, {"job_id", r.job_id}, {"reason", r.reason}};
          },
          [](const DrillFinishedReply& r) -> nlohmann::json {
            if (const auto* error = std::get_if<ReplyError>(&r.outcome))
              return error_json("drill-finished", *error);
            const auto& d = std::get<DrillSummary>(r.outcome);
            return {{"event", "drill-finished"},
                    {"ok", true},
                    {"summary",
                     {{"id", d.id},
                      {"result", d.result},
                      {"exit_code", d.exit_code},
                      {"manifest", d.manifest},
                      {"backup_set", d.backup_set},
                      {"repo", d.repo},
                      {"target", d.target},
                      {"gap_seconds", d.gap_seconds},
                      {"total_seconds", d.total_seconds},
                      {"objects_checked", d.objects_checked},
                      {"objects_failed", d.objects_failed},
                      {"first_failure", d.first_failure}}}};
          },
      },
      reply);
}

Result<ControlReplyMessage> parse_control_reply(const nlohmann::json& line) {
  if (!line.is_object()) return not_understood("not a JSON object");
  auto fields = reply_fields(line);
  auto event = fields.required_text("event");
  if (!event) return event.error();
  Result<ControlReplyMessage> parsed = not_understood("unknown event \"" + shortened(*event) + "\"");
  if (*event == "heartbeat") {
    parsed = ControlReplyMessage(HeartbeatReply{});
  } else if (*event == "refused") {
    auto error = parse_error(fields);
    if (!error) return error.error();
    parsed = ControlReplyMessage(RefusedReply{*error});
  } else if (*event == "status") {
    auto ok = fields.flag("ok");
    if (!ok) return ok.error();
    auto status = fields.object("status");
    if (!status) return status.error();
    if (!*status) return not_understood("a status reply without \"status\"");
    parsed = ControlReplyMessage(StatusReply{**status});
  } else if (*event == "backup-accepted") {
    BackupAcceptedReply r;
    auto admission = fields.required_text("admission");
    if (!admission) return admission.error();
    if (*admission != "queued" && *admission != "merged" && *admission != "superseded" &&
        *admission != "refused")
      return not_understood("unknown admission \"" + shortened(*admission) + "\"");
    r.admission = *admission;
    auto id = fields.required_integer("job_id", 0, kMaxId);
    if (!id) return id.error();
    r.job_id = static_cast<std::uint64_t>(*id);
    auto reason = fields.required_text("reason");
    if (!reason) return reason.error();
    r.reason = *reason;
    parsed = ControlReplyMessage(r);
  } else if (*event == "backup-finished") {
    auto result = fields.object("result");
    if (!result) return result.error();
    if (!*result) return not_understood("a backup-finished reply without \"result\"");
    auto report = parse_report(**result);
    if (!report) return report.error();
    parsed = ControlReplyMessage(BackupFinishedReply{*report});
  } else if (*event == "abandoned") {
    auto reason = fields.required_text("reason");
    if (!reason) return reason.error();
    parsed = ControlReplyMessage(AbandonedReply{*reason});
  } else if (*event == "dump-accepted") {
    auto id = fields.required_integer("job_id", 0, kMaxId);
    if (!id) return id.error();
    parsed = ControlReplyMessage(DumpAcceptedReply{static_cast<std::uint64_t>(*id)});
  } else if (*event == "dump-step" || *event == "drill-step") {
    auto step = parse_step(fields, event->substr(0, event->find('-')));
    if (!step) return step.error();
    parsed = ControlReplyMessage(*step);
  } else if (*event == "dump-kept") {
    DumpKeptReply r;
    for (auto [key, into] : {std::pair{"socket_dir", &r.socket_dir}, std::pair{"user", &r.user},
                             std::pair{"database", &r.database}, std::pair{"pod", &r.pod},
                             std::pair{"since", &r.since}, std::pair{"until", &r.until}}) {
      auto value = fields.required_text(key);
      if (!value) return value.error();
      *into = *value;
    }
    auto port = fields.required_integer("port", 1, 65535);
    if (!port) return port.error();
    r.port = static_cast<int>(*port);
    parsed = ControlReplyMessage(r);
  } else if (*event == "dump-progress") {
    auto done = fields.required_integer("bytes_done", 0, kMaxId);
    if (!done) return done.error();
    auto total = fields.required_integer("bytes_total", 0, kMaxId);
    if (!total) return total.error();
    if (*done > *total) return not_understood("a dump-progress reply with more bytes done than in all");
    parsed = ControlReplyMessage(
        DumpProgressReply{static_cast<std::uint64_t>(*done), static_cast<std::uint64_t>(*total)});
  } else if (*event == "dump-finished") {
    parsed = parse_finished<DumpFinishedReply>(fields, *event, parse_written);
    if (!parsed) return parsed;
  } else if (*event == "drill-accepted") {
    auto id = fields.required_integer("job_id", 0, kMaxId);
    if (!id) return id.error();
    auto reason = fields.required_text("reason");
    if (!reason) return reason.error();
    parsed = ControlReplyMessage(DrillAcceptedReply{static_cast<std::uint64_t>(*id), *reason});
  } else if (*event == "drill-finished") {
    parsed = parse_finished<DrillFinishedReply>(fields, *event, parse_drill_summary);
    if (!parsed) return parsed;
  } else {
    return parsed;
  }
  if (auto s = fields.no_unknown_keys("a " + *event + " reply"); !s) return s.error();
  return parsed;
}

}  // namespace agent
