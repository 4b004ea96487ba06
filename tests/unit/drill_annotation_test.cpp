// A drill's result onto its backup set: which drills are recorded, with which keys, and what a
// failing `pgbackrest annotate` (a backup holding the lock) turns into.
#include "pipelines/drill_annotation.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes/fake_process_runner.hpp"

namespace agent::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

AgentConfig drill_config() {
  AgentConfig config;
  config.stanza = "db";
  config.pgbackrest.bin = "pgbackrest";
  config.pgbackrest.config = "/etc/pgbackrest/pgbackrest.conf";
  return config;
}

DrillReport finished_drill(const std::string& result) {
  DrillReport report;
  report.id = "20261201T100000Z";
  report.result = result;
  report.mode = "latest";
  report.copy.backup_label = "20261201-020000F_20261201-094500I";
  report.copy.backup_repo = 2;
  report.copy.gap_seconds = 1.25;
  report.total_seconds = 42.04;
  report.finished_epoch = 1796119242;  // 2026-12-01T10:00:42Z
  return report;
}

TEST(DrillAnnotation, APassedDrillIsRecordedOnItsSetInItsRepository) {
  const auto annotation = drill_annotation(drill_config(), finished_drill("passed"));
  ASSERT_TRUE(annotation.has_value());
  EXPECT_EQ(annotation->label, "20261201-020000F_20261201-094500I");
  EXPECT_EQ(annotation->target.repo, 2);
  EXPECT_THAT(
      annotation->annotations,
      ElementsAre(Pair("agent-drill-result", "passed"), Pair("agent-drill-id", "20261201T100000Z"),
                  Pair("agent-drill-finished", "2026-12-01T10:00:42Z"), Pair("agent-drill-mode", "latest"),
                  Pair("agent-drill-rto-seconds", "42.0"), Pair("agent-drill-rpo-seconds", "1.250")));
  // pgBackRest's config options as for every other command (the include path only where
  // /etc/pgbackrest/conf.d exists on this machine).
  ASSERT_FALSE(annotation->target.config_args.empty());
  EXPECT_EQ(annotation->target.config_args.front(), "--config=/etc/pgbackrest/pgbackrest.conf");
  std::vector<std::string> expected{"pgbackrest"};
  expected.insert(expected.end(), annotation->target.config_args.begin(),
                  annotation->target.config_args.end());
  expected.insert(expected.end(), {"--stanza=db", "--repo=2", "--set=20261201-020000F_20261201-094500I",
                                   "--annotation=agent-drill-result=passed", "annotate"});
  EXPECT_EQ(
      pgbackrest_annotate_argv(annotation->target, annotation->label, {{"agent-drill-result", "passed"}}),
      expected);
}

TEST(DrillAnnotation, ADrillAtAChosenTargetHasNoRpo) {
  auto at_target = finished_drill("passed");
  at_target.mode = "target";  // the gap is to a time the caller chose, not the measured RPO
  const auto annotation = drill_annotation(drill_config(), at_target);
  ASSERT_TRUE(annotation.has_value());
  for (const auto& [key, value] : annotation->annotations) EXPECT_NE(key, "agent-drill-rpo-seconds") << value;
}

TEST(DrillAnnotation, AFailedDrillIsRecordedToo) {
  const auto annotation = drill_annotation(drill_config(), finished_drill("failed"));
  ASSERT_TRUE(annotation.has_value());
  EXPECT_THAT(annotation->annotations.front(), Pair("agent-drill-result", "failed"));
}

TEST(DrillAnnotation, NothingIsRecordedWhenOffOrWhenTheDrillProvesNothing) {
  auto off = drill_config();
  off.drill.annotate = false;
  EXPECT_FALSE(drill_annotation(off, finished_drill("passed")).has_value());
  // It could not run (disk full, interrupted): that says nothing about the set.
  EXPECT_FALSE(drill_annotation(drill_config(), finished_drill("error")).has_value());
  auto no_set = finished_drill("passed");
  no_set.copy.backup_label.clear();
  EXPECT_FALSE(drill_annotation(drill_config(), no_set).has_value());
  // The caller narrowed it (--database, --assert): an ad-hoc answer, not the set's drill.
  auto narrowed = finished_drill("failed");
  narrowed.narrowed_by_caller = true;
  EXPECT_FALSE(drill_annotation(drill_config(), narrowed).has_value());
  auto odd_label = finished_drill("passed");
  odd_label.copy.backup_label = "--set=x";
  EXPECT_FALSE(drill_annotation(drill_config(), odd_label).has_value());
}

TEST(DrillAnnotation, RunsPgBackRestAnnotate) {
  const auto annotation = drill_annotation(drill_config(), finished_drill("passed"));
  ASSERT_TRUE(annotation.has_value());
  FakeProcessRunner runner;
  runner.expect(pgbackrest_annotate_argv(annotation->target, annotation->label, annotation->annotations),
                exited(0));
  EXPECT_TRUE(annotate_backup_set(runner, *annotation, 60, CancelToken::never()).ok());
}

TEST(DrillAnnotation, ABackupHoldingTheLockIsNamedWithWhatToDo) {
  const auto annotation = drill_annotation(drill_config(), finished_drill("passed"));
  ASSERT_TRUE(annotation.has_value());
  FakeProcessRunner runner;
  runner.expect(pgbackrest_annotate_argv(annotation->target, annotation->label, annotation->annotations),
                exited(50, "",
                       {"ERROR: [050]: unable to acquire lock on file '/tmp/pgbackrest/db-backup.lock': "
                        "Resource temporarily unavailable"}));
  const auto status = annotate_backup_set(runner, *annotation, 60, CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::external_tool);
  EXPECT_THAT(status.error().message,
              HasSubstr("pgbackrest annotate of backup set 20261201-020000F_20261201-094500I"));
  EXPECT_THAT(status.error().message, HasSubstr("unable to acquire lock"));
  EXPECT_THAT(status.error().hint, HasSubstr("a backup holds the stanza's lock"));
}

}  // namespace
}  // namespace agent::testing
