// `agent dump --keep-running`: how long the copy stays (--keep-for, its bounds, before anything
// is written), how a person is told to connect, and what ends the wait, on a fake clock.
#include "pipelines/kept_copy.hpp"

#include <gtest/gtest.h>

#include <csignal>

#include "config/config.hpp"
#include "fakes/fake_clock.hpp"
#include "pipelines/dump_job.hpp"

namespace agent {
namespace {

using std::chrono::seconds;
using testing::FakeClock;

TEST(KeepDuration, AWholeNumberWithAUnit) {
  EXPECT_EQ(parse_keep_duration("90s").value(), seconds(90));
  EXPECT_EQ(parse_keep_duration("30m").value(), seconds(1800));
  EXPECT_EQ(parse_keep_duration("2h").value(), seconds(7200));
  EXPECT_EQ(parse_keep_duration("1d").value(), seconds(86400));
  for (const char* bad : {"", "h", "30", "1.5h", "-1h", "2 h", "1h30m", "2H", "99999999999999h", "--stop"}) {
    auto parsed = parse_keep_duration(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().kind, ErrorKind::usage) << bad;
    EXPECT_NE(parsed.error().hint.find("30m"), std::string::npos) << bad;
  }
}

AgentConfig config(const std::string& yaml = "") {
  auto load = load_config_text(yaml, "test.yaml", {});
  EXPECT_TRUE(load.issues.empty());
  return load.config;
}

DumpArguments keep_arguments(std::optional<std::string> keep_for = std::nullopt) {
  DumpArguments a;
  a.target = "2024-11-04 09:40:00-08:00";
  a.output = "/tmp/out.sql";
  a.keep_running = true;
  a.keep_for = std::move(keep_for);
  return a;
}

TEST(KeepDuration, AJobKeepsAnHourUnlessToldAndNeverBeyondTheMaximum) {
  EXPECT_EQ(build_dump_job(config(), keep_arguments()).value().keep_running, seconds(3600));
  EXPECT_EQ(build_dump_job(config(), keep_arguments("15m")).value().keep_running, seconds(900));
  // A maximum below the default hour shortens the default, and refuses a longer --keep-for.
  const auto short_max = config("dump: {keep_running_max_seconds: 600}\n");
  EXPECT_EQ(build_dump_job(short_max, keep_arguments()).value().keep_running, seconds(600));
  auto too_long = build_dump_job(short_max, keep_arguments("11m"));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().kind, ErrorKind::usage);
  EXPECT_NE(too_long.error().message.find("dump.keep_running_max_seconds"), std::string::npos);
  EXPECT_FALSE(build_dump_job(config(), keep_arguments("5s")).ok());
  EXPECT_FALSE(build_dump_job(config(), keep_arguments("9h")).ok());  // default maximum: 8 hours
  // Without --keep-running the copy is stopped at once.
  DumpArguments plain = keep_arguments();
  plain.keep_running = false;
  EXPECT_EQ(build_dump_job(config(), plain).value().keep_running, seconds(0));
}

TEST(KeepDuration, RefusedCombinations) {
  DumpArguments without = keep_arguments("1h");
  without.keep_running = false;
  auto alone = build_dump_job(config(), without);
  ASSERT_FALSE(alone.ok());
  EXPECT_NE(alone.error().message.find("without --keep-running"), std::string::npos);
  DumpArguments to_stdout = keep_arguments();
  to_stdout.output = "-";
  auto piped = build_dump_job(config(), to_stdout);
  ASSERT_FALSE(piped.ok());
  EXPECT_EQ(piped.error().kind, ErrorKind::usage);
  EXPECT_NE(piped.error().message.find("standard output"), std::string::npos);
}

TEST(KeptCopyCommands, ValuesAreShellWords) {
  EXPECT_EQ(kept_copy_psql("/pgdata/restore/run", 5533, "postgres", "api"),
            "psql -h /pgdata/restore/run -p 5533 -U postgres -d api");
  EXPECT_EQ(kept_copy_psql("/tmp/my scratch/run", 5533, "postgres", "it's"),
            "psql -h '/tmp/my scratch/run' -p 5533 -U postgres -d 'it'\\''s'");
  EXPECT_EQ(shell_word("$(rm -rf /)"), "'$(rm -rf /)'");
  EXPECT_EQ(shell_word(""), "''");
  EXPECT_EQ(kept_copy_oc_exec("db-instance1-abcd-0", "psql -d api"),
            "oc exec -it db-instance1-abcd-0 -c agent -- psql -d api");
}

TEST(KeptCopyWait, TheDeadlineEndsItAtItsTime) {
  FakeClock clock;
  CancelToken cancel;
  const auto start = clock.steady_now();
  EXPECT_EQ(wait_while_kept(clock, cancel, seconds(3600), KeepWatch{}), "its deadline");
  EXPECT_EQ(clock.steady_now() - start, seconds(3600));
}

TEST(KeptCopyWait, AStopRequestEndsItBeforeTheDeadline) {
  FakeClock clock;
  CancelToken cancel, stop;
  clock.on_sleep = [&] {
    if (clock.sleeps == 40) stop.cancel();  // ten seconds in
  };
  const auto start = clock.steady_now();
  EXPECT_EQ(wait_while_kept(clock, cancel, seconds(3600), KeepWatch{&stop, {}, {}}), "agent dump --stop");
  EXPECT_EQ(clock.steady_now() - start, seconds(10));
  EXPECT_FALSE(cancel.cancelled());
}

TEST(KeptCopyWait, ASignalTheWatchdogOrTheServersEndEndIt) {
  {
    FakeClock clock;
    CancelToken cancel;
    clock.on_sleep = [&] { cancel.cancel(SIGTERM); };
    EXPECT_EQ(wait_while_kept(clock, cancel, seconds(3600), KeepWatch{}), "a signal");
  }
  {
    FakeClock clock;
    CancelToken cancel;
    bool tripped = false;
    clock.on_sleep = [&] {
      tripped = true;
      cancel.cancel();
    };
    EXPECT_EQ(wait_while_kept(clock, cancel, seconds(3600), KeepWatch{nullptr, {}, [&] { return tripped; }}),
              "free space below the reserve");
  }
  {
    FakeClock clock;
    CancelToken cancel;
    auto exited = [&]() -> std::optional<std::string> {
      if (clock.sleeps < 3) return std::nullopt;
      return std::string("terminated by signal 9");
    };
    EXPECT_EQ(wait_while_kept(clock, cancel, seconds(3600), KeepWatch{nullptr, exited, {}}),
              "the server ended by itself (terminated by signal 9)");
    EXPECT_EQ(clock.sleeps, 3);
  }
}

}  // namespace
}  // namespace agent
