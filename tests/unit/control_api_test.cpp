// The control protocol's one JSON mapping: what clients send reads back unchanged, and
// anything else is refused with the field named.
#include "daemon/control_api.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

std::string refusal(const std::string& line) {
  auto parsed = parse_control_request(line);
  EXPECT_FALSE(parsed.ok()) << line;
  return parsed ? std::string() : parsed.error().message;
}

TEST(ControlApi, WhatClientsSendReadsBackUnchanged) {
  DumpArguments a;
  a.target = "2024-11-04 09:40:00-08:00";
  a.database = "api";
  a.output = "/pgdata/x.sql";
  a.scratch = "/scratch";
  a.port = 65535;
  a.backup_set = "20241104-020000F";
  a.repo = 2;
  a.overwrite = true;
  a.tables = {"public.marks", "x --file=/tmp/evil"};
  a.exclude_schemas = {"audit"};
  a.data_only = true;
  a.format = "custom";
  a.compress = "gzip:1";
  a.jobs = 2;
  a.globals = true;
  a.keep_running = true;
  a.keep_for = "30m";
  DrillArguments drill;
  drill.target = "2024-11-04 09:40:00-08:00";
  drill.backup_set = "20241104-020000F";
  drill.databases = {"api", "crm"};
  drill.assertions = {"api: SELECT true"};
  drill.scratch = "/scratch";
  drill.port = 5533;
  for (const ControlRequest& request :
       {ControlRequest(StatusCommand{}), ControlRequest(DumpStopCommand{}),
        ControlRequest(BackupCommand{BackupType::incr, true}),
        ControlRequest(BackupCommand{BackupType::full, false, 2}), ControlRequest(DumpCommand{a}),
        ControlRequest(DumpCommand{DumpArguments{"t", {}, {}, {}, {}, {}, {}, false}}),
        ControlRequest(DrillCommand{drill}), ControlRequest(DrillCommand{})}) {
    const std::string line = control_request_json(request).dump();
    auto parsed = parse_control_request(line);
    ASSERT_TRUE(parsed.ok()) << line << ": " << parsed.error().message;
    EXPECT_EQ(control_request_json(*parsed), control_request_json(request)) << line;
  }
}

TEST(ControlApi, KeepRunningFieldsAreReadStrictly) {
  auto parsed =
      parse_control_request(R"({"command":"dump","target":"t","keep_running":true,"keep_for":"2h"})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto& dump = std::get<DumpCommand>(*parsed);
  EXPECT_TRUE(dump.arguments.keep_running);
  EXPECT_EQ(dump.arguments.keep_for.value_or(""), "2h");
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","keep_running":"yes"})").find("\"keep_running\""),
            std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","keep_for":3600})").find("\"keep_for\""),
            std::string::npos);
  // `agent dump --stop` carries nothing; anything else is refused.
  EXPECT_TRUE(std::holds_alternative<DumpStopCommand>(*parse_control_request(R"({"command":"dump-stop"})")));
  EXPECT_NE(refusal(R"({"command":"dump-stop","target":"t"})").find("\"target\""), std::string::npos);
}

TEST(ControlApi, DrillFieldsAreReadStrictly) {
  auto parsed = parse_control_request(R"({"command":"drill","latest":true,"databases":["api"]})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto& drill = std::get<DrillCommand>(*parsed);
  EXPECT_TRUE(drill.arguments.latest);
  EXPECT_EQ(drill.arguments.databases, std::vector<std::string>{"api"});
  EXPECT_FALSE(drill.arguments.target.has_value());
  EXPECT_NE(refusal(R"({"command":"drill","latest":"yes"})").find("\"latest\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"drill","databases":"api"})").find("\"databases\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"drill","port":0})").find("\"port\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"drill","output":"/x"})").find("\"output\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"drill","repo":0})").find("\"repo\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"drill","repo":"2"})").find("\"repo\""), std::string::npos);
  for (const char* bad : {"257", "-1", "2.5", "[2]", "null", "99999999999999999999"})
    EXPECT_NE(refusal(std::string(R"({"command":"drill","repo":)") + bad + "}").find("\"repo\""),
              std::string::npos)
        << bad;
  auto with_repo = parse_control_request(R"({"command":"drill","set":"20241104-020000F","repo":2})");
  ASSERT_TRUE(with_repo.ok()) << with_repo.error().message;
  EXPECT_EQ(std::get<DrillCommand>(*with_repo).arguments.repo.value_or(0), 2);
  // What the client sends is what the agent reads.
  EXPECT_EQ(control_request_json(*with_repo)["repo"], 2);
  auto again = parse_control_request(control_request_json(*with_repo).dump());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(std::get<DrillCommand>(*again).arguments.repo.value_or(0), 2);
}

TEST(ControlApi, DefaultsOfABackup) {
  auto parsed = parse_control_request(R"({"command":"backup"})");
  ASSERT_TRUE(parsed.ok());
  const auto& backup = std::get<BackupCommand>(*parsed);
  EXPECT_EQ(backup.type, BackupType::full);
  EXPECT_FALSE(backup.wait);
}

TEST(ControlApi, EachRefusalNamesItsField) {
  EXPECT_NE(refusal(R"({"command":"backup","wait":"yes"})").find("\"wait\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"backup","type":"--repo1-path=/x"})").find("\"type\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","port":4294972296})").find("\"port\""),
            std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","port":0})").find("\"port\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","port":5533.5})").find("\"port\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","repo":0})").find("\"repo\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"backup","repo":300})").find("\"repo\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","repo":257})").find("\"repo\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","repo":"2"})").find("\"repo\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":["t"]})").find("\"target\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump"})").find("\"target\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","tables":"x"})").find("\"tables\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","tables":[1]})").find("\"tables\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","jobs":33})").find("\"jobs\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"dump","target":"t","database":null})").find("\"database\""),
            std::string::npos);
  EXPECT_NE(refusal(R"({"command":"status","verbose":true})").find("\"verbose\""), std::string::npos);
  EXPECT_NE(refusal(R"({"command":"reboot"})").find("reboot"), std::string::npos);
  EXPECT_NE(refusal(R"({"command":7})").find("\"command\""), std::string::npos);
  EXPECT_NE(refusal("[1,2]").find("object"), std::string::npos);
  EXPECT_NE(refusal("{").find("not JSON"), std::string::npos);
  EXPECT_NE(refusal(std::string(kControlMaxRequestBytes + 1, ' ')).find("longer"), std::string::npos);
  const std::string long_field =
      R"({"command":"dump","target":")" + std::string(kControlMaxFieldBytes + 1, 'x') + "\"}";
  EXPECT_NE(refusal(long_field).find("longer"), std::string::npos);
  EXPECT_NE(refusal(std::string(R"({"command":"dump","target":"a\u0000b"})")).find("NUL"), std::string::npos);
}

TEST(ControlApi, RefusalsAreUsageErrors) {
  auto parsed = parse_control_request(R"({"command":"backup","wait":1})");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().kind, ErrorKind::usage);
  EXPECT_FALSE(parsed.error().hint.empty());
}

}  // namespace
}  // namespace agent
