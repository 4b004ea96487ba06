#include "pgbackrest/info.hpp"
#include "pgbackrest/backup_manifest.hpp"

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

// An LSN target is compared with each set's lsn.stop: text that is not a WAL position is left
// out (the set then has none) rather than read as one.
TEST(Info, KeepsALsnStopOnlyWhenItIsAWalPosition) {
  const auto with_stop = [](const std::string& stop) {
    return R"([{"name": "db", "backup": [{"label": "20241104-020000F", "type": "full",
      "timestamp": {"start": 1730685600, "stop": 1730685660}, "lsn": {"start": "0/3000028", "stop": )" +
           stop + "}}]}]";
  };
  for (const std::string good : {"0/4000050", "FFFFFFFF/ffffffff", "1/0"}) {
    auto parsed = parse_info_json(with_stop("\"" + good + "\""));
    ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
    EXPECT_EQ(parsed->front().backups.front().lsn_stop, good);
  }
  for (const std::string bad : {"\"\"", "\"/1\"", "\"x/1\"", "\"100000000/0\"", "\"0/4000050 \"", "5"}) {
    auto parsed = parse_info_json(with_stop(bad));
    ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
    EXPECT_EQ(parsed->front().backups.front().lsn_stop, "") << bad;
  }
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

// status.lock as pgBackRest 2.56.0 prints it with --output=json (stanzaStatusLockAdd in
// src/command/info/info.c; its infoTest.c): held, and size and size-cplt only when the size is
// not zero (pct-cplt only in text output). A stanza on 2.45 has only `held` for the backup.
// pgBackRest restores a set with page checksum errors like any other (its restore does not read
// the flag): the agent predicts the same set, so that a drill of it finds the damage.
TEST(Info, ASetWithPageChecksumErrorsIsChosenAsPgBackRestChoosesIt) {
  auto stanza = parse_info_json(kInfo)->front();
  ASSERT_GE(stanza.backups.size(), 2u);
  auto& newest = stanza.backups.back();
  newest.error = true;
  EXPECT_EQ(backup_for_target(stanza, at(newest.stop_epoch + 10), std::nullopt)->label, newest.label);
  EXPECT_EQ(choose_backup(stanza, at(newest.stop_epoch + 10), newest.label, 0).backup->label, newest.label);
}

TEST(Info, ReadsLockProgressOfBackupAndRestore) {
  auto parsed = parse_info_json(
      R"([{"archive":[],"backup":[],"cipher":"none","db":[],"name":"db","repo":[{"cipher":"none","key":1,)"
      R"("status":{"code":2,"message":"no valid backups"}}],"status":{"code":2,"lock":{)"
      R"("backup":{"held":true,"size":3159000,"size-cplt":1435765},"restore":{"held":false}},)"
      R"("message":"no valid backups"}},)"
      R"({"archive":[],"backup":[],"cipher":"none","db":[],"name":"db2","repo":[],"status":{"code":2,)"
      R"("lock":{"backup":{"held":false},"restore":{"held":true,"size":3159000,"size-cplt":389820}},)"
      R"("message":"no valid backups"}},)"
      R"({"archive":[],"backup":[],"cipher":"none","db":[],"name":"db3","repo":[],"status":{"code":2,)"
      R"("lock":{"backup":{"held":true},"restore":{"held":false}},"message":"no valid backups"}}])");
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  ASSERT_EQ(parsed->size(), 3u);
  const auto& backing_up = (*parsed)[0];
  EXPECT_TRUE(backing_up.backup_lock.held);
  EXPECT_EQ(backing_up.backup_lock.bytes_done, std::optional<std::uint64_t>(1435765));
  EXPECT_EQ(backing_up.backup_lock.bytes_total, std::optional<std::uint64_t>(3159000));
  EXPECT_FALSE(backing_up.restore_lock.held);
  EXPECT_FALSE(backing_up.restore_lock.bytes_total);
  const auto& restoring = (*parsed)[1];
  EXPECT_FALSE(restoring.backup_lock.held);
  EXPECT_TRUE(restoring.restore_lock.held);
  EXPECT_EQ(restoring.restore_lock.bytes_done, std::optional<std::uint64_t>(389820));
  EXPECT_EQ(restoring.restore_lock.bytes_total, std::optional<std::uint64_t>(3159000));
  // Held before the backup knows its size (or by expire): no sizes.
  const auto& starting = (*parsed)[2];
  EXPECT_TRUE(starting.backup_lock.held);
  EXPECT_FALSE(starting.backup_lock.bytes_done);
  EXPECT_FALSE(starting.backup_lock.bytes_total);
}

// Printed by a real pgBackRest 2.56.0 (`info --output=json`, the stanza's first full backup of a
// 400 MB cluster running): the sizes are the stanza's, with the repository still "no valid backups".
TEST(Info, ReadsWhatARealPgBackRest256PrintsDuringABackup) {
  const auto parsed = parse_info_json(
      R"([{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"00000001000000000000001B","min)"
      R"(":"000000010000000000000001"}],"backup":[],"cipher":"none","db":[{"id":1,"repo-key":1,"system-id)"
      R"(":7714174697337657508,"version":"15"}],"name":"db","repo":[{"cipher":"none","key":1,"status":{"c)"
      R"(ode":2,"message":"no valid backups"}}],"status":{"code":2,"lock":{"backup":{"held":true,"size":4)"
      R"(32600554,"size-cplt":427791461},"restore":{"held":false}},"message":"no valid backups"}}])");
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  const auto& stanza = parsed->front();
  EXPECT_EQ(stanza.status_code, 2);
  EXPECT_TRUE(stanza.backup_lock.held);
  EXPECT_EQ(stanza.backup_lock.bytes_done, std::optional<std::uint64_t>(427791461));
  EXPECT_EQ(stanza.backup_lock.bytes_total, std::optional<std::uint64_t>(432600554));
  EXPECT_FALSE(stanza.restore_lock.held);
}

TEST(Info, OlderPgBackRestHasNoProgress) {
  const auto stanza = parse_info_json(kInfo)->front();  // 2.45: lock.backup.held only, no restore
  EXPECT_FALSE(stanza.backup_lock.held);
  EXPECT_FALSE(stanza.backup_lock.bytes_total);
  EXPECT_FALSE(stanza.restore_lock.held);
  EXPECT_FALSE(stanza.restore_lock.bytes_total);
}

// Progress is only shown: a size that is not a byte count leaves it unknown, the read stands.
TEST(Info, IgnoresAProgressSizeThatIsNotAByteCount) {
  const auto parsed = parse_info_json(
      R"([{"name":"db","status":{"code":0,"message":"ok","lock":{"backup":{"held":true,"size":-1,"size-cplt":0}}}}])");
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_TRUE(parsed->front().backup_lock.held);
  EXPECT_FALSE(parsed->front().backup_lock.bytes_total);
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

// Two repositories as pgBackRest 2.45 reports them with repo2's directory unreadable (trimmed
// from a real run, tests/integration/repositories_test.cpp does the same for real): the stanza's
// status is 4, "different across repos", and each repository has its own.
const char* const kRepo2Unreadable = R"([{
  "archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
               "max": "000000010000000000000006", "min": "000000010000000000000001"}],
  "backup": [
    {"archive": {"start": "000000010000000000000002", "stop": "000000010000000000000002"},
     "database": {"id": 1, "repo-key": 1}, "error": false, "label": "20261130-232147F",
     "timestamp": {"start": 1796080907, "stop": 1796080912}, "type": "full",
     "info": {"size": 22992567, "repository": {"size": 3043464}}},
    {"archive": {"start": "000000010000000000000005", "stop": "000000010000000000000006"},
     "database": {"id": 1, "repo-key": 1}, "error": false, "label": "20261130-232147F_20261130-232157I",
     "timestamp": {"start": 1796080917, "stop": 1796080920}, "type": "incr",
     "info": {"size": 22992567, "repository": {"size": 3043464}}}
  ],
  "cipher": "none", "db": [{"id": 1, "repo-key": 1, "system-id": 7311234567890123456, "version": "15"}],
  "name": "db",
  "repo": [
    {"cipher": "none", "key": 1, "status": {"code": 0, "message": "ok"}},
    {"cipher": "none", "key": 2, "status": {"code": 99, "message":
      "[PathOpenError] unable to list file info for path '/c/repo2/backup': [13] Permission denied"}}
  ],
  "status": {"code": 4, "lock": {"backup": {"held": false}}, "message": "different across repos"}
}])";

TEST(Info, EachRepositoryHasItsOwnStatusAndOneFailingIsPartial) {
  auto parsed = parse_info_json(kRepo2Unreadable);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  const auto& stanza = parsed->front();
  EXPECT_EQ(stanza.status_code, 4);
  EXPECT_EQ(stanza.status_message, "different across repos");
  ASSERT_EQ(stanza.repos.size(), 2u);
  EXPECT_EQ(stanza.repos[0].key, 1);
  EXPECT_TRUE(stanza.repos[0].readable());
  EXPECT_EQ(stanza.repos[0].archive_max, "000000010000000000000006");
  EXPECT_EQ(stanza.repos[1].key, 2);
  EXPECT_EQ(stanza.repos[1].status_code, 99);
  EXPECT_FALSE(stanza.repos[1].readable());
  EXPECT_NE(stanza.repos[1].status_message.find("Permission denied"), std::string::npos);
  EXPECT_EQ(stanza.repos[1].archive_max, "");
  EXPECT_EQ(stanza.backups[1].repo, 1);
  // Readable: repo1 is. Not an error any more, a partial failure in repo2's own status.
  EXPECT_TRUE(check_stanza_readable(stanza).ok());
  const auto view = repository_view(stanza, 2);
  EXPECT_TRUE(view.backups.empty());
  EXPECT_EQ(view.status_code, 99);
  EXPECT_EQ(repository_view(stanza, 1).backups.size(), 2u);
}

TEST(Info, DifferentAcrossRepositoriesWithNoneReadableIsAnError) {
  auto parsed = parse_info_json(
      R"([{"archive":[],"backup":[],"cipher":"none","db":[],"name":"db","repo":[)"
      R"({"cipher":"none","key":1,"status":{"code":1,"message":"missing stanza path"}},)"
      R"({"cipher":"none","key":2,"status":{"code":99,"message":"[HostConnectError] timeout"}}],)"
      R"("status":{"code":4,"lock":{"backup":{"held":false}},"message":"different across repos"}}])");
  ASSERT_TRUE(parsed.ok());
  const auto readable = check_stanza_readable(parsed->front());
  ASSERT_FALSE(readable.ok());
  EXPECT_NE(readable.error().message.find("repo1: missing stanza path; repo2: [HostConnectError] timeout"),
            std::string::npos)
      << readable.error().message;
  // A repository whose stanza has no backups yet (status 2) is readable.
  StanzaInfo mixed;
  mixed.status_code = 4;
  mixed.repos = {RepoStatus{1, 2, "no valid backups", "", ""},
                 RepoStatus{2, 1, "missing stanza path", "", ""}};
  EXPECT_TRUE(check_stanza_readable(mixed).ok());
}

TEST(Info, WithoutARepositoryListTheStanzaIsRepositoryOne) {
  const auto stanza = parse_info_json(kInfo)->front();
  const auto repos = repositories(stanza);
  ASSERT_EQ(repos.size(), 1u);
  EXPECT_EQ(repos[0].key, 1);
  EXPECT_EQ(repo_of(stanza.backups[0]), 1);
  EXPECT_EQ(repository_view(stanza, 1).backups.size(), 2u);
}

// repo1 holds an older full than repo2; both ended before the target.
StanzaInfo two_repositories() {
  StanzaInfo stanza;
  stanza.name = "db";
  stanza.repos = {RepoStatus{1, 0, "ok", "", ""}, RepoStatus{2, 0, "ok", "", ""}};
  stanza.backups = {{"20241104-010000F", "full", 100, 200, 10, 5, false, 1},
                    {"20241104-020000F", "full", 300, 400, 10, 5, false, 2},
                    {"20241104-030000F", "full", 500, 600, 10, 5, false, 1}};
  return stanza;
}

TEST(Info, PgBackRestsChoiceIsTheFirstRepositoryWithASetNotTheNewestSet) {
  const auto stanza = two_repositories();
  // Both hold a set for 450; repo1 comes first, so its older set, not repo2's newer one.
  auto choice = choose_backup(stanza, at(450), std::nullopt, 0);
  EXPECT_EQ(choice.repo, 1);
  ASSERT_NE(choice.backup, nullptr);
  EXPECT_EQ(choice.backup->label, "20241104-010000F");
  EXPECT_EQ(backup_for_target(stanza, at(450), std::nullopt)->label, "20241104-020000F")
      << "the newest set over both repositories: not what pgBackRest restores";
  // --repo 2.
  choice = choose_backup(stanza, at(450), std::nullopt, 2);
  EXPECT_EQ(choice.repo, 2);
  EXPECT_EQ(choice.backup->label, "20241104-020000F");
  // repo1 unreadable: pgBackRest skips it.
  auto broken = stanza;
  broken.repos[0].status_code = 99;
  choice = choose_backup(broken, at(450), std::nullopt, 0);
  EXPECT_EQ(choice.repo, 2);
  EXPECT_EQ(choice.backup->label, "20241104-020000F");
  // A named set: the first repository that holds it.
  choice = choose_backup(stanza, at(700), std::string("20241104-020000F"), 0);
  EXPECT_EQ(choice.repo, 2);
  EXPECT_EQ(choice.backup->label, "20241104-020000F");
  // A named set that ends after the target: its repository, no set.
  choice = choose_backup(stanza, at(350), std::string("20241104-020000F"), 0);
  EXPECT_EQ(choice.repo, 2);
  EXPECT_EQ(choice.backup, nullptr);
  // None before the target anywhere; --repo 2 with none before the target.
  EXPECT_EQ(choose_backup(stanza, at(150), std::nullopt, 0).backup, nullptr);
  EXPECT_EQ(choose_backup(stanza, at(350), std::nullopt, 2).backup, nullptr);
  // The newest in repo1 when it has one: repo2 is not looked at.
  EXPECT_EQ(choose_backup(stanza, at(700), std::nullopt, 0).backup->label, "20241104-030000F");
}
// `pgbackrest info --set=LABEL --output=json`, 2.45 and 2.56 alike (trimmed): the set's
// databases in `database-ref`; an unknown set is status 6 with an empty backup list, exit 0.
TEST(BackupDatabases, ListsTheSetsDatabasesWithTheirOids) {
  const char* json = R"([{"name": "db", "status": {"code": 0, "message": "ok"},
    "backup": [{"label": "20261201-023516F_20261201-023522I", "type": "incr",
                "database-ref": [{"name": "api", "oid": 16385}, {"name": "postgres", "oid": 5}]}]}])";
  auto parsed = parse_backup_databases(json, "db", "20261201-023516F_20261201-023522I");
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_TRUE(parsed->has_value());
  ASSERT_EQ((*parsed)->size(), 2u);
  EXPECT_EQ((**parsed)[0].name, "api");
  EXPECT_EQ((**parsed)[0].oid, 16385u);
  EXPECT_EQ((**parsed)[1].name, "postgres");
}

TEST(BackupDatabases, AnUnknownSetIsAnErrorAndNoListIsNothing) {
  const char* missing =
      R"([{"archive":[],"backup":[],"name":"db","status":{"code":6,"message":"requested backup not found"}}])";
  auto parsed = parse_backup_databases(missing, "db", "20261201-023516F");
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("requested backup not found"), std::string::npos);
  const char* unlisted = R"([{"name": "db", "backup": [{"label": "20261201-023516F"}]}])";
  auto none = parse_backup_databases(unlisted, "db", "20261201-023516F");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(parse_backup_databases(
      R"([{"name": "db", "backup": [{"label": "L", "database-ref": [{"name": "x", "oid": -1}]}]}])", "db",
      "L"));
  EXPECT_FALSE(parse_backup_databases("not json", "db", "L"));
}

// backup.manifest as `pgbackrest repo-get` prints it (trimmed): a --db-include restore writes
// every file but the zeroed databases'.
TEST(BackupManifest, CountsWhatASelectiveRestoreWrites) {
  const char* manifest =
      "[backup]\nbackup-label=\"20241104-020000F\"\n\n"
      "[target:file]\n"
      "pg_data/PG_VERSION={\"size\":3,\"timestamp\":1}\n"
      "pg_data/base/5/1259={\"size\":1000,\"timestamp\":1}\n"
      "pg_data/base/16385/16390={\"checksum\":\"ab\",\"size\":20000,\"timestamp\":1}\n"
      "pg_data/base/16386/16400={\"size\":30000,\"timestamp\":1}\n"
      "pg_data/base/16386/PG_VERSION={\"size\":3,\"timestamp\":1}\n"
      "pg_tblspc/16384/PG_15_202209061/16386/16500={\"size\":40000,\"timestamp\":1}\n"
      "pg_tblspc/16384/PG_15_202209061/16385/16501={\"size\":500,\"timestamp\":1}\n"
      "pg_data/global/1262={\"size\":8192,\"timestamp\":1}\n\n"
      "[target:file:default]\nmode=\"0600\"\n";
  auto all = restored_bytes(manifest, {});
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(*all, 3u + 1000 + 20000 + 30000 + 3 + 40000 + 500 + 8192);
  auto only_16385 = restored_bytes(manifest, {16386});
  ASSERT_TRUE(only_16385);
  EXPECT_EQ(*only_16385, 3u + 1000 + 20000 + 500 + 8192);
  EXPECT_FALSE(restored_bytes("[backup]\nx=1\n", {}));
  EXPECT_FALSE(restored_bytes("[target:file]\npg_data/x={not json\n", {}));
}

}  // namespace
}  // namespace agent
