#include "pgbackrest/info.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

// Shape of `pgbackrest info --output=json` 2.45, trimmed.
const char* const kInfo = R"([{
  "name": "db",
  "status": {"code": 0, "message": "ok", "lock": {"backup": {"held": false}}},
  "db": [{"id": 1, "system-id": 7311234567890123456, "version": "15"}],
  "archive": [{"id": "15-1", "min": "000000010000000000000003", "max": "00000001000000000000000A"}],
  "backup": [
    {"label": "20241104-020000F", "type": "full", "error": false,
     "backrest": {"format": 5, "version": "2.45"},
     "timestamp": {"start": 1730685600, "stop": 1730685660},
     "info": {"size": 1000000, "delta": 1000000, "repository": {"size": 400000, "delta": 400000}}},
    {"label": "20241104-020000F_20241104-091500I", "type": "incr", "error": false,
     "timestamp": {"start": 1730711700, "stop": 1730711710},
     "info": {"size": 1200000, "delta": 200000, "repository": {"size": 80000, "delta": 80000}}}
  ]
}])";

SysMicros at(std::int64_t epoch) {
  return SysMicros{std::chrono::seconds{epoch}};
}

TEST(Info, ParsesStanzaBackupsAndArchive) {
  auto parsed = parse_info_json(kInfo);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  ASSERT_EQ(parsed->size(), 1u);
  const auto& stanza = parsed->front();
  EXPECT_EQ(stanza.name, "db");
  ASSERT_EQ(stanza.backups.size(), 2u);
  EXPECT_EQ(stanza.backups[1].type, "incr");
  EXPECT_EQ(stanza.backups[1].stop_epoch, 1730711710);
  EXPECT_EQ(stanza.backups[1].database_bytes, 1200000u);
  EXPECT_EQ(stanza.archive_max, "00000001000000000000000A");
  EXPECT_EQ(stanza.backups[0].backrest_version, "2.45");
  EXPECT_EQ(stanza.backups[1].backrest_version, "");  // not said: no version check
}

TEST(Info, ChoosesTheNewestSetThatEndedBeforeTheTarget) {
  const auto stanza = parse_info_json(kInfo)->front();
  EXPECT_EQ(backup_for_target(stanza, at(1730685700), std::nullopt)->label, "20241104-020000F");
  EXPECT_EQ(backup_for_target(stanza, at(1730711800), std::nullopt)->label,
            "20241104-020000F_20241104-091500I");
  EXPECT_EQ(backup_for_target(stanza, at(1730685600), std::nullopt), nullptr);
  EXPECT_EQ(backup_for_target(stanza, at(1730711800), std::string("20241104-020000F"))->label,
            "20241104-020000F");
  EXPECT_EQ(oldest_backup(stanza)->label, "20241104-020000F");
}

TEST(Info, RejectsGarbage) {
  EXPECT_FALSE(parse_info_json("not json").ok());
  EXPECT_FALSE(parse_info_json("{}").ok());
  EXPECT_FALSE(parse_info_json(R"([{"name": "db", "backup": [{"label": 1}]}])").ok());
}

TEST(Info, UnreadableRepositoryIsAnErrorThoughPgBackRestExitsZero) {
  // As pgBackRest 2.45 prints it for a repository it cannot list.
  auto parsed = parse_info_json(
      R"([{"archive":[],"backup":[],"cipher":"none","db":[],"name":"db","repo":[{"cipher":"none","key":1,)"
      R"("status":{"code":99,"message":"[PathOpenError] unable to list file info for path '/r/backup': [13] )"
      R"(Permission denied"}}],"status":{"code":99,"lock":{"backup":{"held":false}},"message":"other"}}])");
  ASSERT_TRUE(parsed.ok());
  const auto readable = check_stanza_readable(parsed->front());
  ASSERT_FALSE(readable.ok());
  EXPECT_NE(readable.error().message.find("Permission denied"), std::string::npos);
  StanzaInfo no_backups;
  no_backups.status_code = 2;
  EXPECT_TRUE(check_stanza_readable(no_backups).ok());
}

TEST(Info, AVersionMismatchWithTheRepositoryHostIsRefusedNamingBothVersions) {
  // pgBackRest 2.45 against PGO's 2.56.0 repository host (tests/integration/pgo_topology_test.cpp).
  auto parsed = parse_info_json(
      R"([{"archive":[],"backup":[],"cipher":"none","db":[],"name":"db","repo":[{"cipher":"none","key":1,)"
      R"("status":{"code":99,"message":"[ProtocolError] expected value '2.45' for greeting key 'version' )"
      R"(but got '2.56.0'\nHINT: is the same version of pgBackRest installed on the local and remote host?"}}],)"
      R"("status":{"code":99,"lock":{"backup":{"held":false}},"message":"other"}}])");
  ASSERT_TRUE(parsed.ok());
  const auto readable = check_stanza_readable(parsed->front());
  ASSERT_FALSE(readable.ok());
  EXPECT_EQ(readable.error().kind, ErrorKind::environment);
  EXPECT_NE(
      readable.error().message.find("pgBackRest versions differ: pgbackrest.bin is pgBackRest 2.45, the "
                                    "remote pgBackRest it connects to (the repository host, over TLS or "
                                    "SSH) is 2.56.0"),
      std::string::npos)
      << readable.error().message;
  EXPECT_NE(readable.error().hint.find("set pgbackrest.bin to a pgBackRest 2.56.0"), std::string::npos);

  // A command's ERROR line says the same without the error's name.
  const auto from_check = version_mismatch_refusal(
      "ERROR: [039]: expected value '2.53.1' for greeting key 'version' but got '2.56.0'\n"
      "       HINT: is the same version of pgBackRest installed on the local and remote host?");
  ASSERT_TRUE(from_check.has_value());
  EXPECT_NE(from_check->message.find("is pgBackRest 2.53.1,"), std::string::npos) << from_check->message;
  EXPECT_FALSE(
      version_mismatch_refusal("ERROR: [039]: expected value 'x' for greeting key 'name'").has_value());
  EXPECT_FALSE(version_mismatch_refusal("[PathOpenError] unable to list file info").has_value());
}

TEST(Info, MissingStanzaHasNoBackups) {
  auto parsed = parse_info_json(
      R"([{"name":"db","status":{"code":1,"message":"missing stanza path"},"backup":[],"db":[]}])");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->front().status_code, 1);
  EXPECT_EQ(oldest_backup(parsed->front()), nullptr);
}

}  // namespace
}  // namespace agent
