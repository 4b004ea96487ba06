#include "pipelines/dump_preflight.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

DumpJob job_for(const std::string& scratch, const std::string& output) {
  DumpJob job;
  job.config.postgres.port = 5432;
  job.config.postgres.bindir = "/usr/lib/postgresql/15/bin";
  job.scratch = scratch;
  job.output = output;
  job.port = 5533;
  return job;
}

LocalFacts healthy() {
  LocalFacts facts;
  facts.live_data = "/pgdata/pg15";
  facts.tablespaces = {{"16400", "/tblspc/fast"}};
  facts.scratch = "/pgdata/restore";
  facts.output = "/pgdata/restore.sql";
  facts.disk.filesystems = {{1, "/pgdata", 100'000'000'000, 100'000'000, {}}};
  facts.disk.scratch = facts.disk.output = 0;
  return facts;
}

std::string only_message(const std::vector<Error>& errors) {
  EXPECT_EQ(errors.size(), 1u);
  return errors.empty() ? "" : errors.front().message;
}

TEST(Preflight, HealthyFactsPass) {
  EXPECT_TRUE(check_local_facts(healthy(), job_for("/pgdata/restore", "/pgdata/restore.sql")).empty());
}

TEST(Preflight, PathWithin) {
  EXPECT_TRUE(path_within("/a/b", "/a"));
  EXPECT_TRUE(path_within("/a", "/a"));
  EXPECT_FALSE(path_within("/ab", "/a"));
  EXPECT_FALSE(path_within("/a", "/a/b"));
}

TEST(Preflight, ScratchMustNotOverlapTheLiveCluster) {
  const auto job = job_for("x", "/backups/restore.sql");
  auto facts = healthy();
  facts.output = "/backups/restore.sql";
  facts.scratch = "/pgdata/pg15";
  EXPECT_NE(only_message(check_local_facts(facts, job)).find("is or lies inside the live data directory"),
            std::string::npos);
  facts.scratch = "/pgdata/pg15/restore";
  EXPECT_NE(only_message(check_local_facts(facts, job)).find("is or lies inside the live data directory"),
            std::string::npos);
  facts.scratch = "/pgdata";
  EXPECT_NE(only_message(check_local_facts(facts, job)).find("contains the live data directory"),
            std::string::npos);
  facts.scratch = "/tblspc/fast/x";
  EXPECT_NE(only_message(check_local_facts(facts, job)).find("live tablespace"), std::string::npos);
}

TEST(Preflight, ScratchMustBeOursOrEmpty) {
  auto facts = healthy();
  facts.scratch_exists = true;
  facts.scratch_empty = false;
  const auto errors = check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql"));
  EXPECT_NE(only_message(errors).find("not empty and was not created by agent"), std::string::npos);
  facts.scratch_has_marker = true;
  EXPECT_TRUE(check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql")).empty());
}

TEST(Preflight, RunningServerInScratchIsRefused) {
  auto facts = healthy();
  facts.scratch_exists = true;
  facts.scratch_has_marker = true;
  facts.scratch_empty = false;
  facts.scratch_server_pid = 4242;
  facts.scratch_server_alive = true;
  const auto errors = check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql"));
  EXPECT_NE(only_message(errors).find("pid 4242"), std::string::npos);
  EXPECT_EQ(errors.front().kind, ErrorKind::environment);
  facts.scratch_server_alive = false;  // stale pid file: fine, prepare removes it
  EXPECT_TRUE(check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql")).empty());
}

TEST(Preflight, PortsAndOutput) {
  auto facts = healthy();
  facts.port_in_use = true;
  facts.output_dir_is_dir = false;
  const auto errors = check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql"));
  ASSERT_EQ(errors.size(), 2u);  // all problems at once
  EXPECT_NE(errors[0].message.find("port 5533 is already in use"), std::string::npos);
  EXPECT_NE(errors[1].message.find("does not exist"), std::string::npos);

  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.port = 5432;
  EXPECT_NE(only_message(check_local_facts(healthy(), job)).find("live server's port"), std::string::npos);

  facts = healthy();
  facts.output_exists = true;
  EXPECT_NE(only_message(check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql")))
                .find("already exists"),
            std::string::npos);
  facts.output = "/pgdata/restore/data/x.sql";
  facts.output_exists = false;
  EXPECT_NE(
      only_message(check_local_facts(facts, job_for("/pgdata/restore", "x"))).find("inside the scratch"),
      std::string::npos);
}

TEST(Preflight, AnOutputPathThatIsNotAFileIsFoundBeforeTheRestore) {
  // --output naming a directory, with --overwrite: publishing would fail after the whole restore
  // and dump; so would a directory where OUTPUT.partial or OUTPUT.manifest.json goes.
  auto facts = healthy();
  facts.output_exists = true;
  facts.output_paths_in_the_way = {"/pgdata/restore.sql is a directory"};
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.overwrite = true;
  auto errors = check_local_facts(facts, job);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "/pgdata/restore.sql is a directory");
  EXPECT_EQ(errors[0].kind, ErrorKind::usage);
  EXPECT_NE(errors[0].hint.find("--output -"), std::string::npos);
  // Without --overwrite it is still that, not "already exists".
  job.overwrite = false;
  EXPECT_EQ(only_message(check_local_facts(facts, job)), "/pgdata/restore.sql is a directory");
  // A file that exists, and a directory where its manifest goes: both at once.
  facts.output_paths_in_the_way = {"/pgdata/restore.sql.manifest.json is a directory"};
  errors = check_local_facts(facts, job);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].message, "/pgdata/restore.sql.manifest.json is a directory");
  EXPECT_NE(errors[1].message.find("already exists"), std::string::npos);
}

TEST(Preflight, RootIsRefused) {
  auto facts = healthy();
  facts.running_as_root = true;
  const auto errors = check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql"));
  EXPECT_NE(only_message(errors).find("root"), std::string::npos);
  EXPECT_NE(errors.front().hint.find("runuser"), std::string::npos);
}

TEST(Preflight, RestoredTablespacesMustStayInTheScratchDirectory) {
  const std::vector<TablespaceLink> live = {{"16400", "/tblspc/fast"}};
  EXPECT_TRUE(check_restored_tablespaces(live, {{"16400", "/s/tablespaces/fast"}}, "/s", "L").empty());
  auto errors = check_restored_tablespaces(live, {{"16400", "/tblspc/fast"}}, "/s", "L");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("outside the scratch directory"), std::string::npos);
  // A live tablespace the backup does not have: created after it.
  errors = check_restored_tablespaces({{"16400", "/tblspc/fast"}, {"16500", "/tblspc/new"}},
                                      {{"16400", "/s/tablespaces/fast"}}, "/s", "20241104-020000F");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(
      errors[0].message.find("live tablespace 16500 (/tblspc/new) is not in backup set 20241104-020000F"),
      std::string::npos);
}

StanzaInfo two_backups() {
  StanzaInfo stanza;
  stanza.name = "db";
  stanza.backups = {{"20241104-020000F", "full", 1000, 1100, 5'000'000, 100, false},
                    {"20241104-020000F_20241104-091500I", "incr", 2000, 2100, 6'000'000, 100, false}};
  return stanza;
}

TEST(Preflight, TargetMustBeInsideTheRecoverableWindow) {
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  const auto now = std::chrono::system_clock::time_point{std::chrono::seconds{5000}};
  job.target.instant = SysMicros{std::chrono::seconds{1050}};
  auto result = check_against_repository(two_backups(), job, healthy(), now);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::target_window);
  EXPECT_NE(result.error().message.find("before the oldest backup finished"), std::string::npos);
  EXPECT_NE(result.error().hint.find("recoverable window is from 1970-01-01T00:18:21Z"), std::string::npos);

  job.target.instant = SysMicros{std::chrono::seconds{6000}};
  result = check_against_repository(two_backups(), job, healthy(), now);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("in the future"), std::string::npos);

  // Far beyond the range of system_clock's nanoseconds.
  job.target.instant = SysMicros{std::chrono::hours{24 * 365 * 1000}};
  result = check_against_repository(two_backups(), job, healthy(), now);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("in the future"), std::string::npos);

  job.target.instant = SysMicros{std::chrono::seconds{2500}};
  result = check_against_repository(two_backups(), job, healthy(), now);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->label, "20241104-020000F_20241104-091500I");
}

TEST(Preflight, NeedsDiskForTheChosenBackup) {
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.target.instant = SysMicros{std::chrono::seconds{2500}};
  auto facts = healthy();
  facts.disk.filesystems[0].free_bytes = 1'000'000;
  job.output = "-";
  facts.disk.output = -1;
  auto result = check_against_repository(two_backups(), job, facts,
                                         std::chrono::system_clock::time_point{std::chrono::seconds{5000}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::environment);
  EXPECT_NE(result.error().message.find("not enough disk for the restore"), std::string::npos);
  facts.scratch_data_bytes = 5'500'000;  // a previous copy that --delta reuses counts
  EXPECT_TRUE(check_against_repository(two_backups(), job, facts,
                                       std::chrono::system_clock::time_point{std::chrono::seconds{5000}})
                  .ok());
}

TEST(Preflight, NamedSetMustExistAndEndBeforeTheTarget) {
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.target.instant = SysMicros{std::chrono::seconds{1500}};
  job.backup_set = "20241104-020000F_20241104-091500I";
  auto result = check_against_repository(two_backups(), job, healthy(),
                                         std::chrono::system_clock::time_point{std::chrono::seconds{5000}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::target_window);
  job.backup_set = "20200101-000000F";
  result = check_against_repository(two_backups(), job, healthy(),
                                    std::chrono::system_clock::time_point{std::chrono::seconds{5000}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::usage);
}

// --- the live volume: estimate, reserve, watched filesystems, the copy kept or not -----------

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kGiB = 1024 * kMiB;

// Backups whose WAL positions are known: segment 0x10 to 0x12 for the full, 0x20 to 0x21 for
// the incremental; the archive reaches 0x2F.
StanzaInfo backups_with_wal() {
  auto stanza = two_backups();
  stanza.backup_wal["20241104-020000F"] = {"000000010000000000000010", "000000010000000000000012"};
  stanza.backup_wal["20241104-020000F_20241104-091500I"] = {"000000010000000000000020",
                                                            "000000010000000000000021"};
  stanza.archive_max = "00000001000000000000002F";
  return stanza;
}

DumpJob job_at(std::int64_t target_seconds, const std::string& output = "/pgdata/restore.sql") {
  auto job = job_for("/pgdata/restore", output);
  job.target.instant = SysMicros{std::chrono::seconds{target_seconds}};
  job.config.disk.reserve_percent = 10;
  job.config.disk.reserve_mb = 1024;
  job.config.dump.connections = 2;
  job.config.dump.split_table_mb = 256;
  return job;
}

// The PGO layout: scratch, dump and live data directory on one 100 GiB volume.
LocalFacts one_live_volume(std::uint64_t free_bytes) {
  auto facts = healthy();
  facts.disk.filesystems = {{7, "/pgdata", 100 * kGiB, free_bytes, {"live data directory /pgdata/pg15"}}};
  facts.disk.scratch = facts.disk.output = 0;
  return facts;
}

TEST(PreflightDisk, EstimateCountsTheRestoreTheWalTheSpillAndTheDump) {
  auto stanza = backups_with_wal();
  // Target between the two backups: the full is restored, and the WAL to replay ends before
  // the end of the incremental (segment 0x21).
  auto job = job_at(1500);
  auto estimate = estimate_disk_use(stanza, stanza.backups[0], job, 16 * kMiB);
  EXPECT_EQ(estimate.restore, 5'000'000u);
  EXPECT_EQ(estimate.wal, (0x21 - 0x10 + 1) * 16 * kMiB);
  EXPECT_EQ(estimate.spill, 0u);  // no table can reach dump.split_table_mb
  EXPECT_EQ(estimate.dump, 5'000'000u);
  // After the newest backup: up to the newest archived segment.
  job = job_at(2500);
  estimate = estimate_disk_use(stanza, stanza.backups[1], job, 16 * kMiB);
  EXPECT_EQ(estimate.wal, (0x2F - 0x20 + 1) * 16 * kMiB);
  // Across a "log" boundary with 64 MiB segments.
  stanza.backup_wal["20241104-020000F_20241104-091500I"].start = "00000001000000000000003F";
  stanza.archive_max = "000000010000000100000001";
  estimate = estimate_disk_use(stanza, stanza.backups[1], job, 64 * kMiB);
  EXPECT_EQ(estimate.wal, 3 * 64 * kMiB);  // 0/3F, 1/00, 1/01
  // Unknown positions: nothing counted rather than nonsense.
  stanza.archive_max = "";
  EXPECT_EQ(estimate_disk_use(stanza, stanza.backups[1], job, 16 * kMiB).wal, 0u);
  // A large cluster and 4 connections: three ranges out of four may wait. Standard output: no file.
  stanza.backups[1].database_bytes = 40 * kGiB;
  job.config.dump.connections = 4;
  job.output = "-";
  estimate = estimate_disk_use(stanza, stanza.backups[1], job, 16 * kMiB);
  EXPECT_EQ(estimate.spill, 30 * kGiB);
  EXPECT_EQ(estimate.dump, 0u);
}

TEST(PreflightDisk, WalPositionsComeFromPgBackRestInfo) {
  const char* const info = R"([{"name": "db", "status": {"code": 0, "message": "ok"},
    "archive": [{"id": "15-1", "min": "000000010000000000000003", "max": "000000010000000000000009"}],
    "backup": [{"label": "F", "type": "full", "error": false, "timestamp": {"start": 100, "stop": 200},
                "archive": {"start": "000000010000000000000004", "stop": "000000010000000000000005"},
                "info": {"size": 1000, "repository": {"size": 500}}}]}])";
  auto parsed = parse_info_json(info);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  const auto& stanza = parsed->front();
  ASSERT_EQ(stanza.backup_wal.count("F"), 1u);
  EXPECT_EQ(stanza.backup_wal.at("F").stop, "000000010000000000000005");
  // Segments 4 to 9: six of 16 MiB.
  EXPECT_EQ(estimate_disk_use(stanza, stanza.backups[0], job_at(300), 16 * kMiB).wal, 6 * 16 * kMiB);
}

TEST(PreflightDisk, ReserveIsTheLargerOfShareAndBytesOnLiveFilesystemsOnly) {
  const auto job = job_at(2500);
  FilesystemFacts live{1, "/pgdata", 100 * kGiB, 50 * kGiB, {"live data directory /pgdata/pg15"}};
  EXPECT_EQ(live_reserve_bytes(live, job.config), 10 * kGiB);
  live.size_bytes = 5 * kGiB;  // a small volume: the floor
  EXPECT_EQ(live_reserve_bytes(live, job.config), 1 * kGiB);
  FilesystemFacts scratch_only{2, "/scratch", 100 * kGiB, 50 * kGiB, {}};
  EXPECT_EQ(live_reserve_bytes(scratch_only, job.config), 0u);
}

TEST(PreflightDisk, ADumpThatWouldCutIntoTheReserveIsRefused) {
  const auto stanza = backups_with_wal();
  auto job = job_at(2500);
  // 6 MB restore + 256 MiB WAL + 6 MB dump; reserve 10 GiB.
  auto facts = one_live_volume(10 * kGiB + 200 * kMiB);
  auto result = check_against_repository(stanza, job, facts,
                                         std::chrono::system_clock::time_point{std::chrono::seconds{5000}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::environment);
  const auto& message = result.error().message;
  EXPECT_NE(message.find("would cut into the 10.0 GiB kept free for the live cluster on /pgdata"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("the scratch directory and the dump, and the live data directory /pgdata/pg15"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("256.0 MiB of WAL to replay"), std::string::npos) << message;
  EXPECT_NE(message.find("for the dump"), std::string::npos) << message;
  EXPECT_NE(result.error().hint.find("volumes.temp"), std::string::npos);
  EXPECT_NE(result.error().hint.find("--output -"), std::string::npos);
  // Room for all of it and the reserve.
  facts.disk.filesystems[0].free_bytes = 11 * kGiB;
  EXPECT_TRUE(check_against_repository(stanza, job, facts,
                                       std::chrono::system_clock::time_point{std::chrono::seconds{5000}})
                  .ok());
  // Already below the reserve before anything is written.
  facts.disk.filesystems[0].free_bytes = 9 * kGiB;
  EXPECT_FALSE(check_against_repository(stanza, job, facts,
                                        std::chrono::system_clock::time_point{std::chrono::seconds{5000}})
                   .ok());
  // The same free space on a volume of the scratch directory's own only needs room.
  facts.disk.filesystems[0].live_uses.clear();
  EXPECT_TRUE(check_against_repository(stanza, job, facts,
                                       std::chrono::system_clock::time_point{std::chrono::seconds{5000}})
                  .ok());
}

TEST(PreflightDisk, EachFilesystemCountsWhatGoesThere) {
  auto job = job_at(2500);
  DiskEstimate estimate{10 * kGiB, 1 * kGiB, 5 * kGiB, 10 * kGiB};
  // Scratch on its own 100 GiB volume, the dump on the live one (100 GiB, reserve 10 GiB).
  auto facts = healthy();
  facts.disk.filesystems = {{2, "/scratch", 100 * kGiB, 16 * kGiB + 1, {}},
                            {1, "/pgdata", 100 * kGiB, 21 * kGiB, {"live data directory /pgdata/pg15"}}};
  facts.disk.scratch = 0;
  facts.disk.output = 1;
  EXPECT_TRUE(check_disk(facts, job, estimate, "L").empty());
  facts.disk.filesystems[0].free_bytes = 15 * kGiB;
  auto errors = check_disk(facts, job, estimate, "L");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("not enough disk for the restore"), std::string::npos)
      << errors[0].message;
  facts.scratch_data_bytes = 2 * kGiB;  // the last copy, reused by --delta
  EXPECT_TRUE(check_disk(facts, job, estimate, "L").empty());
  facts.disk.filesystems[1].free_bytes = 19 * kGiB;
  errors = check_disk(facts, job, estimate, "L");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("which holds the dump, and the live data directory"), std::string::npos)
      << errors[0].message;
  EXPECT_EQ(errors[0].hint.find("volumes.temp"), std::string::npos);  // the scratch is fine
  // Both on one live volume: everything counts once, against the reserve.
  facts = one_live_volume(36 * kGiB);
  EXPECT_TRUE(check_disk(facts, job, estimate, "L").empty());
  facts.disk.filesystems[0].free_bytes = 35 * kGiB;
  EXPECT_EQ(check_disk(facts, job, estimate, "L").size(), 1u);
}

TEST(PreflightDisk, WatchesTheFilesystemsItWritesToThatTheLiveClusterUses) {
  auto job = job_at(2500);
  auto facts = healthy();
  facts.disk.filesystems = {{2, "/scratch", 100 * kGiB, 50 * kGiB, {}},
                            {1, "/pgdata", 100 * kGiB, 50 * kGiB, {"live data directory /pgdata/pg15"}},
                            {3, "/pgwal", 10 * kGiB, 5 * kGiB, {"live WAL directory /pgwal/pg15_wal"}}};
  facts.disk.scratch = 0;
  facts.disk.output = 1;
  auto watched = filesystems_to_watch(facts, job);
  ASSERT_EQ(watched.size(), 1u);  // not the scratch volume, not the WAL volume it never writes to
  EXPECT_EQ(watched[0].path, "/pgdata");
  EXPECT_EQ(watched[0].reserve_bytes, 10 * kGiB);
  EXPECT_EQ(watched[0].description, "the dump, and the live data directory /pgdata/pg15");
  facts.disk.output = -1;  // standard output
  EXPECT_TRUE(filesystems_to_watch(facts, job).empty());
  facts = one_live_volume(50 * kGiB);
  watched = filesystems_to_watch(facts, job);
  ASSERT_EQ(watched.size(), 1u);
  EXPECT_EQ(watched[0].device, 7u);
}

TEST(PreflightDisk, TheCopyIsKeptByDefaultOnlyOffTheLiveVolume) {
  auto facts = one_live_volume(50 * kGiB);
  auto decision = decide_scratch_keeping(facts, "auto", false);
  EXPECT_FALSE(decision.keep);
  EXPECT_NE(decision.reason.find("shares a filesystem with the live data directory"), std::string::npos);
  EXPECT_TRUE(decide_scratch_keeping(facts, "always", false).keep);
  facts.disk.filesystems[0].live_uses.clear();
  EXPECT_TRUE(decide_scratch_keeping(facts, "auto", false).keep);
  EXPECT_FALSE(decide_scratch_keeping(facts, "never", false).keep);
  // Whatever the setting, not once free space there fell below the reserve.
  EXPECT_FALSE(decide_scratch_keeping(facts, "always", true).keep);
  facts.disk.scratch = -1;
  EXPECT_FALSE(decide_scratch_keeping(facts, "auto", false).keep);
}

// Two repositories: repo1 with an older full, repo2 with a newer one, both before the target.
StanzaInfo two_repositories() {
  StanzaInfo stanza;
  stanza.name = "db";
  stanza.status_code = 0;
  stanza.repos = {RepoStatus{1, 0, "ok", "", ""}, RepoStatus{2, 0, "ok", "", ""}};
  stanza.backups = {{"20241104-010000F", "full", 1000, 1100, 5'000'000, 100, false, 1},
                    {"20241104-020000F", "full", 1500, 1600, 7'000'000, 100, false, 2}};
  return stanza;
}

TEST(PreflightRepositories, TheSetIsPgBackRestsChoiceWithItsRepository) {
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.target.instant = SysMicros{std::chrono::seconds{2500}};
  const auto now = std::chrono::system_clock::time_point{std::chrono::seconds{5000}};
  auto chosen = check_against_repository(two_repositories(), job, healthy(), now);
  ASSERT_TRUE(chosen.ok()) << chosen.error().describe();
  EXPECT_EQ(chosen->label, "20241104-010000F");
  EXPECT_EQ(chosen->repo, 1);
  job.repo = 2;
  chosen = check_against_repository(two_repositories(), job, healthy(), now);
  ASSERT_TRUE(chosen.ok()) << chosen.error().describe();
  EXPECT_EQ(chosen->label, "20241104-020000F");
  EXPECT_EQ(chosen->repo, 2);
  // repo1 unreadable: the dump goes on from repo2, as pgBackRest would.
  auto broken = two_repositories();
  broken.status_code = 4;
  broken.repos[0] = RepoStatus{1, 99, "[PathOpenError] Permission denied", "", ""};
  job.repo = 0;
  chosen = check_against_repository(broken, job, healthy(), now);
  ASSERT_TRUE(chosen.ok()) << chosen.error().describe();
  EXPECT_EQ(chosen->repo, 2);
  // A target before repo2's set: repo1's older set is not in reach while repo1 cannot be read.
  job.target.instant = SysMicros{std::chrono::seconds{1200}};
  chosen = check_against_repository(broken, job, healthy(), now);
  ASSERT_FALSE(chosen.ok());
  EXPECT_EQ(chosen.error().kind, ErrorKind::target_window);
  EXPECT_NE(chosen.error().hint.find("from 1970-01-01T00:26:41Z"), std::string::npos) << chosen.error().hint;
}

TEST(PreflightRepositories, RepoMustBeConfiguredAndReadable) {
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.target.instant = SysMicros{std::chrono::seconds{2500}};
  const auto now = std::chrono::system_clock::time_point{std::chrono::seconds{5000}};
  job.repo = 3;
  auto chosen = check_against_repository(two_repositories(), job, healthy(), now);
  ASSERT_FALSE(chosen.ok());
  EXPECT_EQ(chosen.error().kind, ErrorKind::usage);
  EXPECT_NE(
      chosen.error().message.find("--repo 3: stanza 'db' has no repo3 (pgbackrest info lists repo1, repo2)"),
      std::string::npos)
      << chosen.error().message;
  auto broken = two_repositories();
  broken.repos[1] = RepoStatus{2, 99, "[HostConnectError] timeout", "", ""};
  job.repo = 2;
  chosen = check_against_repository(broken, job, healthy(), now);
  ASSERT_FALSE(chosen.ok());
  EXPECT_NE(chosen.error().message.find("repo2 cannot be read (status 99: [HostConnectError] timeout)"),
            std::string::npos);
  EXPECT_NE(chosen.error().hint.find("leave --repo out"), std::string::npos);
}
TEST(DatabaseName, AMisspeltNameIsRefusedWithTheSetsNames) {
  const std::vector<BackupDatabase> in_set = {{"api", 16385}, {"postgres", 5}};
  const std::vector<std::string> live = {"api", "postgres"};
  EXPECT_FALSE(check_database_name("api", in_set, live, "20241104-020000F"));
  EXPECT_FALSE(check_database_name("template1", in_set, live, "20241104-020000F"));
  auto refused = check_database_name("apu", in_set, live, "20241104-020000F");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->kind, ErrorKind::usage);
  EXPECT_NE(refused->message.find("'apu' is not in backup set 20241104-020000F (it holds api, postgres)"),
            std::string::npos)
      << refused->message;
  EXPECT_NE(refused->hint.find("choose --database from: api, postgres"), std::string::npos);
  auto cased = check_database_name("API", in_set, live, "20241104-020000F");
  ASSERT_TRUE(cased);
  EXPECT_NE(cased->hint.find("did you mean --database api?"), std::string::npos);
}

TEST(DatabaseName, ADatabaseMadeAfterTheBackupOrAnUnansweringLiveServerGoesOn) {
  const std::vector<BackupDatabase> in_set = {{"api", 16385}, {"postgres", 5}};
  EXPECT_FALSE(check_database_name("reports", in_set, std::vector<std::string>{"api", "postgres", "reports"},
                                   "20241104-020000F"));
  EXPECT_FALSE(check_database_name("reports", in_set, std::nullopt, "20241104-020000F"));
  // Made after the set: offered, and matched regardless of case.
  auto refused = check_database_name(
      "Reports", in_set, std::vector<std::string>{"api", "postgres", "reports"}, "20241104-020000F");
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->hint.find("did you mean --database reports?"), std::string::npos) << refused->hint;
  auto other = check_database_name("nope", in_set, std::vector<std::string>{"api", "postgres", "reports"},
                                   "20241104-020000F");
  ASSERT_TRUE(other);
  EXPECT_NE(
      other->hint.find(
          "choose --database from: api, postgres (or, made after backup set 20241104-020000F, reports)"),
      std::string::npos)
      << other->hint;
}

}  // namespace
}  // namespace agent
