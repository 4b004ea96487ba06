// The control socket's replies: every type survives its JSON mapping unchanged, and a reply a
// client cannot trust (a missing or mistyped field, an unknown event or key) is an error that
// names it, never a default.
#include "daemon/control_replies.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

ControlReplyMessage round_trip(const ControlReplyMessage& reply) {
  const auto parsed = parse_control_reply(nlohmann::json::parse(control_reply_json(reply).dump()));
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().describe()) << control_reply_json(reply);
  return parsed.ok() ? *parsed : ControlReplyMessage(HeartbeatReply{});
}

std::string error_of(const std::string& line) {
  const auto parsed = parse_control_reply(nlohmann::json::parse(line));
  return parsed.ok() ? "" : parsed.error().message;
}

TEST(ControlReplies, EveryReplySurvivesItsMapping) {
  EXPECT_TRUE(std::holds_alternative<HeartbeatReply>(round_trip(HeartbeatReply{})));

  const auto refused = std::get<RefusedReply>(round_trip(RefusedReply{{"no", "do this", 7}}));
  EXPECT_EQ(refused.error.error, "no");
  EXPECT_EQ(refused.error.hint, "do this");
  EXPECT_EQ(refused.error.exit_code, 7);

  const auto status = std::get<StatusReply>(round_trip(StatusReply{{{"queue", nlohmann::json::array()}}}));
  EXPECT_TRUE(status.status["queue"].is_array());

  const auto accepted = std::get<BackupAcceptedReply>(round_trip(BackupAcceptedReply{"merged", 12, "same"}));
  EXPECT_EQ(accepted.admission, "merged");
  EXPECT_EQ(accepted.job_id, 12u);
  EXPECT_EQ(accepted.reason, "same");

  const BackupReport report{
      3, "full", "manual", "r", "2026-11-30T10:00:00Z", "failed", "m", 50, 6, "2026-11-30T10:00:01Z", 1.5};
  const auto finished = std::get<BackupFinishedReply>(round_trip(BackupFinishedReply{report}));
  EXPECT_EQ(finished.result.job_id, 3u);
  EXPECT_EQ(finished.result.outcome, "failed");
  EXPECT_EQ(finished.result.pgbackrest_exit_code, 50);
  EXPECT_EQ(finished.result.exit_code, 6);
  EXPECT_DOUBLE_EQ(finished.result.seconds, 1.5);

  EXPECT_EQ(std::get<AbandonedReply>(round_trip(AbandonedReply{"stopped"})).reason, "stopped");
  EXPECT_EQ(std::get<DumpAcceptedReply>(round_trip(DumpAcceptedReply{9})).job_id, 9u);
  const auto step = std::get<StepReply>(round_trip(StepReply{"dump", "restore", "done", 2.25}));
  EXPECT_EQ(step.job, "dump");
  EXPECT_EQ(step.step, "restore");
  EXPECT_DOUBLE_EQ(step.seconds, 2.25);
  EXPECT_EQ(control_reply_json(StepReply{"drill", "checks", "started", 0})["event"], "drill-step");
  EXPECT_EQ(std::get<StepReply>(round_trip(StepReply{"drill", "checks", "started", 0})).job, "drill");

  const auto drill_accepted =
      std::get<DrillAcceptedReply>(round_trip(DrillAcceptedReply{4, "it waits behind the backups"}));
  EXPECT_EQ(drill_accepted.job_id, 4u);
  EXPECT_EQ(drill_accepted.reason, "it waits behind the backups");
  DrillSummary drilled{"20261201T100000Z",
                       "failed",
                       4,
                       "/state/drills/20261201T100000Z.json",
                       "20261201-020000F",
                       2,
                       "2026-12-01T10:00:00Z",
                       1.5,
                       42.25,
                       4521,
                       3,
                       "tables in api: api.public.drill_heap"};
  const auto drill =
      std::get<DrillSummary>(std::get<DrillFinishedReply>(round_trip(DrillFinishedReply{drilled})).outcome);
  EXPECT_EQ(drill.result, "failed");
  EXPECT_EQ(drill.exit_code, 4);
  EXPECT_EQ(drill.repo, 2);
  EXPECT_EQ(drill.objects_checked, 4521u);
  EXPECT_EQ(drill.objects_failed, 3u);
  EXPECT_DOUBLE_EQ(drill.total_seconds, 42.25);
  EXPECT_EQ(drill.first_failure, "tables in api: api.public.drill_heap");
  const auto could_not = std::get<ReplyError>(
      std::get<DrillFinishedReply>(round_trip(DrillFinishedReply{ReplyError{"no set", "take a backup", 5}}))
          .outcome);
  EXPECT_EQ(could_not.exit_code, 5);
  // A summary's result is passed or failed; an error is sent as one.
  auto odd = control_reply_json(DrillFinishedReply{drilled});
  odd["summary"]["result"] = "error";
  EXPECT_FALSE(parse_control_reply(odd).ok());
  const auto progress = std::get<DumpProgressReply>(round_trip(DumpProgressReply{1'434'186, 3'159'000}));
  EXPECT_EQ(progress.bytes_done, 1'434'186u);
  EXPECT_EQ(progress.bytes_total, 3'159'000u);

  const auto kept = std::get<DumpKeptReply>(round_trip(DumpKeptReply{
      "/scratch/run", 5533, "postgres", "api", "db-0", "2026-12-01T06:00:00Z", "2026-12-01T07:00:00Z"}));
  EXPECT_EQ(kept.socket_dir, "/scratch/run");
  EXPECT_EQ(kept.port, 5533);
  EXPECT_EQ(kept.database, "api");
  EXPECT_EQ(kept.pod, "db-0");
  EXPECT_EQ(kept.until, "2026-12-01T07:00:00Z");
  EXPECT_NE(error_of(R"({"event":"dump-kept","socket_dir":"/s","port":0,"user":"u","database":"d","pod":"p",)"
                     R"("since":"s","until":"u"})")
                .find("\"port\""),
            std::string::npos);

  const auto written = std::get<DumpFinishedReply>(round_trip(
      DumpFinishedReply{DumpWritten{"/o.sql", "/o.sql.manifest.json", 42, "xxh128:ab", "set", 2, 0.5}}));
  ASSERT_TRUE(std::holds_alternative<DumpWritten>(written.outcome));
  EXPECT_EQ(std::get<DumpWritten>(written.outcome).bytes, 42u);
  EXPECT_EQ(std::get<DumpWritten>(written.outcome).repo, 2);
  const auto failed =
      std::get<DumpFinishedReply>(round_trip(DumpFinishedReply{ReplyError{"disk", "free it", 5}}));
  ASSERT_TRUE(std::holds_alternative<ReplyError>(failed.outcome));
  EXPECT_EQ(std::get<ReplyError>(failed.outcome).exit_code, 5);
}

TEST(ControlReplies, WhatCannotBeTrustedIsAnErrorNamingIt) {
  EXPECT_NE(error_of(R"({"event":"dump-progress","bytes_done":5,"bytes_total":4})").find("more bytes done"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"dump-progress","bytes_done":-1,"bytes_total":4})").find("\"bytes_done\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"dump-progress","bytes_done":1})").find("\"bytes_total\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"launch"})").find("unknown event \"launch\""), std::string::npos);
  EXPECT_NE(error_of(R"({"ok":true})").find("no field \"event\""), std::string::npos);
  EXPECT_NE(error_of(R"({"event":"backup-accepted","admission":"queued","reason":""})").find("\"job_id\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"backup-accepted","admission":"queued","job_id":"7","reason":""})")
                .find("field \"job_id\" must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"backup-accepted","admission":"maybe","job_id":7,"reason":""})")
                .find("unknown admission"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"abandoned","reason":"x","extra":1})").find("unknown field \"extra\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"refused","ok":false,"error":"x","exit_code":0})").find("\"exit_code\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"refused","ok":true,"error":"x","exit_code":2})").find("\"ok\": true"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"backup-finished","result":{"job_id":1}})").find("no field"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"dump-finished","ok":true})").find("without \"summary\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"event":"status","ok":true,"status":[]})").find("must be an object"),
            std::string::npos);
  EXPECT_FALSE(parse_control_reply(nlohmann::json::array()).ok());
  // The error says what to do about it.
  const auto parsed = parse_control_reply(nlohmann::json::parse(R"({"event":"launch"})"));
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().hint.find("same version"), std::string::npos);
}

}  // namespace
}  // namespace agent
