#include "exec/commands.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/version.hpp"
#include "pipelines/backup_pipeline.hpp"

namespace agent {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

const PgBackRestTarget kTarget{"pgbackrest", {"--config=/etc/pgbackrest/pgbackrest.conf"}, "db", 0};

TEST(Commands, InfoAsksForJson) {
  EXPECT_THAT(pgbackrest_info_argv(kTarget),
              ElementsAre("pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=db",
                          "--output=json", "--log-level-console=warn", "info"));
  auto with_repo = kTarget;
  with_repo.repo = 2;
  EXPECT_THAT(pgbackrest_info_argv(with_repo), Contains("--repo=2"));
}

TEST(Commands, Backup) {
  EXPECT_THAT(pgbackrest_backup_argv(kTarget, "incr"),
              ElementsAre("pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=db",
                          "--log-level-console=detail", "--type=incr", "backup"));
}

TEST(Commands, BackupAnnotationsAreOneArgumentEach) {
  EXPECT_THAT(
      pgbackrest_backup_argv(kTarget, "full", {{"agent-trigger", "manual"}, {"agent-request", "a --b=c"}}),
      ElementsAre("pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=db",
                  "--annotation=agent-trigger=manual", "--annotation=agent-request=a --b=c",
                  "--log-level-console=detail", "--type=full", "backup"));
}

// An annotation's value from the pod: control characters become spaces; a long one is cut at
// 256 bytes, never inside a UTF-8 character.
TEST(Commands, BackupAnnotationsOfARequest) {
  BackupRequest request{BackupType::full, Trigger::annotation, "annotation x=\"a\nb\tc\"", {}, 0};
  EXPECT_THAT(backup_annotations(request),
              ElementsAre(std::pair<std::string, std::string>{"agent-trigger", "annotation"},
                          std::pair<std::string, std::string>{"agent-request", "annotation x=\"a b c\""},
                          std::pair<std::string, std::string>{"agent-version", kAgentVersion}));
  request.reason = std::string(255, 'a') + "\xc3\xa9" + "tail";  // é straddles byte 256
  const auto cut = backup_annotations(request);
  ASSERT_EQ(cut.size(), 3u);
  EXPECT_EQ(cut[1].second, std::string(255, 'a'));
  request.reason = std::string(254, 'a') + "\xc3\xa9" + "tail";  // é ends at byte 256
  EXPECT_EQ(backup_annotations(request)[1].second, std::string(254, 'a') + "\xc3\xa9");
  request.reason.clear();
  EXPECT_EQ(backup_annotations(request).size(), 2u) << "no empty agent-request";
}

TEST(Commands, RestoreIsSafeForTheLiveRepository) {
  RestoreRequest request{"2024-11-04 17:40:00+00", "/pgdata/restore/data", "/pgdata/restore/tablespaces", 4,
                         std::nullopt};
  const auto argv = pgbackrest_restore_argv(kTarget, request);
  EXPECT_THAT(argv, Contains("--type=time"));
  EXPECT_THAT(argv, Contains("--target=2024-11-04 17:40:00+00"));
  EXPECT_THAT(argv, Contains("--pg1-path=/pgdata/restore/data"));
  EXPECT_THAT(argv, Contains("--delta"));
  EXPECT_THAT(argv, Contains("--archive-mode=off"));
  EXPECT_THAT(argv, Contains("--target-action=pause"));
  EXPECT_THAT(argv, Contains("--tablespace-map-all=/pgdata/restore/tablespaces"));
  EXPECT_THAT(argv, Contains("--process-max=4"));
  EXPECT_EQ(argv.back(), "restore");
  EXPECT_THAT(argv, Not(Contains(::testing::StartsWith("--set"))));
  request.backup_set = "20241104-020000F";
  EXPECT_THAT(pgbackrest_restore_argv(kTarget, request), Contains("--set=20241104-020000F"));
}

TEST(Commands, RestoreTakesEachTargetKindAsItsOwnTypeAndTheIncludedDatabaseByOid) {
  RestoreRequest request{"0/3000028", "/s/data", "/s/tablespaces", 2, std::nullopt};
  request.target_type = "lsn";
  auto argv = pgbackrest_restore_argv(kTarget, request);
  EXPECT_THAT(argv, Contains("--type=lsn"));
  EXPECT_THAT(argv, Contains("--target=0/3000028"));
  EXPECT_THAT(argv, Not(Contains(::testing::StartsWith("--db-include"))));
  request.include_database_oid = 16385;
  argv = pgbackrest_restore_argv(kTarget, request);
  EXPECT_THAT(argv, Contains("--db-include=16385"));
  EXPECT_EQ(argv.back(), "restore");
  EXPECT_THAT(pgbackrest_info_set_argv(kTarget, "20241104-020000F"),
              ElementsAre("pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=db",
                          "--output=json", "--log-level-console=warn", "--set=20241104-020000F", "info"));
  EXPECT_EQ(pgbackrest_manifest_get_argv(kTarget, "20241104-020000F").back(),
            "backup/db/20241104-020000F/backup.manifest");
}

TEST(Commands, ACopyRestoredWithOneDatabaseIgnoresInvalidPages) {
  ScratchServerSettings settings{"/bin", "/s/data", "/s/run", 5533, "128MB"};
  EXPECT_THAT(scratch_postgres_argv(settings), Not(Contains("ignore_invalid_pages=on")));
  settings.ignore_invalid_pages = true;
  EXPECT_THAT(scratch_postgres_argv(settings), Contains("ignore_invalid_pages=on"));
}

TEST(Commands, RestoreKeepsItsLockAndLogFilesInTheScratchDirectory) {
  RestoreRequest request{"2024-11-04 17:40:00+00", "/s/data", "/s/tablespaces", 2, std::nullopt};
  request.lock_dir = "/s/pgbackrest/lock";
  request.log_dir = "/s/pgbackrest/log";
  EXPECT_THAT(pgbackrest_restore_argv(kTarget, request),
              Not(Contains(::testing::StartsWith("--spool-path"))));
  // A restore empties the stanza's queue in the spool it is given: never the live one.
  request.spool_dir = "/s/pgbackrest/spool";
  const auto argv = pgbackrest_restore_argv(kTarget, request);
  EXPECT_THAT(argv, Contains("--lock-path=/s/pgbackrest/lock"));
  EXPECT_THAT(argv, Contains("--log-path=/s/pgbackrest/log"));
  EXPECT_THAT(argv, Contains("--spool-path=/s/pgbackrest/spool"));
  EXPECT_EQ(argv.back(), "restore");
}

TEST(Commands, TheCopysArchiveGetSharesNothingLive) {
  const ScratchArchiveGet paths{"/s/data", "/s/pgbackrest/lock", "/s/pgbackrest/log"};
  auto with_repo = kTarget;
  with_repo.repo = 2;
  EXPECT_EQ(
      scratch_restore_command(with_repo, paths),
      "'pgbackrest' '--config=/etc/pgbackrest/pgbackrest.conf' '--stanza=db' '--repo=2' '--pg1-path=/s/data' "
      "'--archive-async=n' '--lock-path=/s/pgbackrest/lock' '--log-path=/s/pgbackrest/log' "
      "'--log-level-console=off' '--log-level-stderr=warn' 'archive-get' %f \"%p\"");
  // /bin/sh reads each word as one, and PostgreSQL expands only its own %f and %p.
  const ScratchArchiveGet odd{"/s/it's 100%/data", "/l", "/g"};
  const auto command = scratch_restore_command(kTarget, odd);
  EXPECT_NE(command.find("'--pg1-path=/s/it'\\''s 100%%/data'"), std::string::npos) << command;
  EXPECT_THAT(
      scratch_archive_get_argv(kTarget, paths, "000000010000000000000007", "/s/wal-scan/x"),
      ElementsAre("pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=db",
                  "--pg1-path=/s/data", "--archive-async=n", "--lock-path=/s/pgbackrest/lock",
                  "--log-path=/s/pgbackrest/log", "--log-level-console=off", "--log-level-stderr=warn",
                  "archive-get", "000000010000000000000007", "/s/wal-scan/x"));
}

TEST(Commands, UserTextIsNeverAnOptionOfItsOwn) {
  // A target that looks like an option stays glued to --target=.
  RestoreRequest request{"--repo1-path=/evil", "/s/data", "/s/tablespaces", 1, std::nullopt};
  const auto argv = pgbackrest_restore_argv(kTarget, request);
  EXPECT_THAT(argv, Contains("--target=--repo1-path=/evil"));
  EXPECT_THAT(argv, Not(Contains("--repo1-path=/evil")));
}

TEST(Commands, BackupLabels) {
  EXPECT_TRUE(is_backup_label("20241104-020000F"));
  EXPECT_TRUE(is_backup_label("20241104-020000F_20241104-091500I"));
  EXPECT_TRUE(is_backup_label("20241104-020000F_20241104-091500D"));
  EXPECT_FALSE(is_backup_label("20241104-020000F --delta"));
  EXPECT_FALSE(is_backup_label("--repo1-path=/x"));
  EXPECT_FALSE(is_backup_label("latest"));
}

TEST(Commands, ScratchServerCannotReachOutside) {
  const auto argv = scratch_postgres_argv({"/usr/lib/postgresql/15/bin", "/s/data", "/s/run", 5533, "128MB"});
  EXPECT_EQ(argv[0], "/usr/lib/postgresql/15/bin/postgres");
  for (const char* setting :
       {"port=5533", "listen_addresses=", "unix_socket_directories=/s/run", "archive_mode=off",
        "shared_preload_libraries=", "primary_conninfo=", "hba_file=/s/run/pg_hba.conf", "ssl=off",
        "data_directory=/s/data", "hot_standby=on", "recovery_target_action=pause", "lc_messages=C"})
    EXPECT_THAT(argv, Contains(std::string(setting)));
}

TEST(Commands, ScratchServerFetchesWalItsOwnWayAndTimesOutOnLocks) {
  ScratchServerSettings settings{"/b", "/s/data", "/s/run", 5533, "128MB"};
  auto argv = scratch_postgres_argv(settings);
  EXPECT_THAT(argv, Contains("lock_timeout=0"));
  EXPECT_THAT(argv, Not(Contains(::testing::StartsWith("restore_command="))));
  EXPECT_THAT(argv, Not(Contains(::testing::StartsWith("recovery_target_lsn="))));
  settings.restore_command = "'pgbackrest' 'archive-get' %f \"%p\"";
  settings.lock_timeout_seconds = 30;
  settings.recovery_target_lsn = "0/80001C8";
  argv = scratch_postgres_argv(settings);
  EXPECT_THAT(argv, Contains("lock_timeout=30s"));
  EXPECT_THAT(argv, Contains("restore_command='pgbackrest' 'archive-get' %f \"%p\""));
  // The end of the archived WAL replaces the restored time target (only one target may be set).
  EXPECT_THAT(argv, Contains("recovery_target_time="));
  EXPECT_THAT(argv, Contains("recovery_target_lsn=0/80001C8"));
  EXPECT_THAT(argv, Contains("recovery_target_inclusive=on"));
  EXPECT_THAT(argv, Contains("recovery_target_action=pause"));
}

TEST(Commands, PgDumpGivesUpOnALockWhenTold) {
  DumpRequest request{"/b", "/s/run", 5533, "postgres", "api", "", {}, ""};
  EXPECT_THAT(pg_dump_argv(request), Not(Contains(::testing::StartsWith("--lock-wait-timeout"))));
  request.lock_wait_timeout_seconds = 30;
  EXPECT_THAT(pg_dump_argv(request), Contains("--lock-wait-timeout=30s"));
}

TEST(Commands, PgDumpConnectsThroughAQuotedConninfo) {
  const auto argv =
      pg_dump_argv({"/usr/lib/postgresql/15/bin", "/s/run", 5533, "postgres", "it's", "", {}, ""});
  EXPECT_THAT(argv, ElementsAre("/usr/lib/postgresql/15/bin/pg_dump",
                                "--dbname=host='/s/run' port=5533 user='postgres' dbname='it\\'s' "
                                "application_name='agent' connect_timeout=10",
                                "--create", "--format=plain", "--no-password"));
  // A database name that looks like a conninfo stays a name.
  EXPECT_EQ(conninfo("/s/run", 1, "u", "host=evil"),
            "host='/s/run' port=1 user='u' dbname='host=evil' application_name='agent' connect_timeout=10");
}

TEST(Commands, PgDumpSectionsCreateTheDatabaseOnlyInTheSchemaPiece) {
  DumpRequest request{"/b", "/s/run", 5533, "postgres", "api", "pre-data", {}, "K3y"};
  EXPECT_THAT(pg_dump_argv(request), Contains("--restrict-key=K3y"));
  EXPECT_THAT(pg_dump_argv(request), Contains("--create"));
  EXPECT_THAT(pg_dump_argv(request), Contains("--section=pre-data"));
  request.section = "data";
  request.exclude_table_data = {"\"public\".\"big\"", "\"s\".\"a \"\"b\""};
  const auto data = pg_dump_argv(request);
  EXPECT_THAT(data, Not(Contains("--create")));
  EXPECT_THAT(data, Contains("--section=data"));
  EXPECT_THAT(data, Contains("--exclude-table-data=\"public\".\"big\""));
  EXPECT_THAT(data, Contains("--exclude-table-data=\"s\".\"a \"\"b\""));
  request.section = "post-data";
  request.exclude_table_data.clear();
  EXPECT_THAT(pg_dump_argv(request), Not(Contains("--create")));
}

TEST(Commands, PgDumpSelectionIsOneElementPerPatternAndFormatsTakeTheirOptions) {
  DumpRequest request{"/b", "/s/run", 5533, "postgres", "api", "", {}, ""};
  request.tables = {"public.marks", "x --file=/tmp/evil"};
  request.exclude_schemas = {"audit"};
  request.data_only = true;
  request.create = false;
  const auto argv = pg_dump_argv(request);
  EXPECT_THAT(argv, Contains("--table=public.marks"));
  EXPECT_THAT(argv, Contains("--table=x --file=/tmp/evil"));
  EXPECT_THAT(argv, Not(Contains("--file=/tmp/evil")));
  EXPECT_THAT(argv, Contains("--exclude-schema=audit"));
  EXPECT_THAT(argv, Contains("--strict-names"));
  EXPECT_THAT(argv, Contains("--data-only"));
  EXPECT_THAT(argv, Not(Contains("--create")));
  DumpRequest directory{"/b", "/s/run", 5533, "postgres", "api", "", {}, ""};
  directory.format = "directory";
  directory.file = "/out/d.partial";
  directory.jobs = 2;
  directory.compress_level = 0;
  const auto d = pg_dump_argv(directory);
  EXPECT_THAT(d, Contains("--format=directory"));
  EXPECT_THAT(d, Contains("--file=/out/d.partial"));
  EXPECT_THAT(d, Contains("--jobs=2"));
  EXPECT_THAT(d, Contains("--compress=0"));
  EXPECT_THAT(d, Not(Contains("--strict-names")));
  EXPECT_THAT(pg_dumpall_globals_argv("/b", "dbname='postgres'"),
              ElementsAre("/b/pg_dumpall", "--dbname=dbname='postgres'", "--globals-only",
                          "--no-role-passwords", "--no-tablespaces", "--no-password"));
}

}  // namespace
}  // namespace agent
