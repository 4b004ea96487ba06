#include "jobs/annotation_trigger.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <spdlog/sinks/base_sink.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <atomic>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/log.hpp"

namespace agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace std::string_literals;

constexpr const char* kKey = "postgres-operator.crunchydata.com/pgbackrest-backup";

std::string line(const std::string& value) {
  return std::string(kKey) + "=\"" + value + "\"\n";
}
const std::string kOther = "kubectl.kubernetes.io/default-container=\"database\"\n";

// The annotation logger's lines, to count warnings.
class CapturingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> at(spdlog::level::level_enum level) {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [l, text] : lines_)
      if (l == level) out.push_back(text);
    return out;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.level, std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::vector<std::pair<spdlog::level::level_enum, std::string>> lines_;
};

// A Downward API volume updated the way the kubelet does it: the visible `annotations` is a
// symlink to `..data/annotations`, `..data` a symlink to a timestamped directory, swapped by
// renaming a fresh `..data_tmp` symlink over it.
class AnnotationTriggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/annotation-trigger-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    volume_ = root_ / "podinfo";
    fs::create_directories(root_ / "state");
    state_path_ = (root_ / "state" / "handled-annotations.json").string();
    log::get("annotation")->sinks().push_back(sink_);
  }
  void TearDown() override {
    trigger_.reset();
    auto& sinks = log::get("annotation")->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    fs::remove_all(root_);
  }

  void create_volume(const std::string& content) {
    fs::create_directory(volume_);
    current_ = write_timestamped(content);
    fs::create_directory_symlink(current_, volume_ / "..data");
    fs::create_symlink("..data/annotations", volume_ / "annotations");
  }

  void kubelet_update(const std::string& content) {
    const std::string next = write_timestamped(content);
    fs::create_directory_symlink(next, volume_ / "..data_tmp");
    fs::rename(volume_ / "..data_tmp", volume_ / "..data");
    fs::remove_all(volume_ / current_);
    current_ = next;
  }

  std::string write_timestamped(const std::string& content) {
    return make_timestamped([&](const fs::path& file) { std::ofstream(file, std::ios::binary) << content; });
  }
  std::string make_timestamped(const std::function<void(const fs::path&)>& make) {
    char name[64];
    std::snprintf(name, sizeof name, "..2026_11_23_10_00_00.%09d", ++generation_);
    fs::create_directory(volume_ / name);
    make(volume_ / name / "annotations");
    return name;
  }
  // The same swap, with `make` putting something other than a file of annotations in place.
  void kubelet_update_with(const std::function<void(const fs::path&)>& make) {
    const std::string next = make_timestamped(make);
    fs::create_directory_symlink(next, volume_ / "..data_tmp");
    fs::rename(volume_ / "..data_tmp", volume_ / "..data");
    fs::remove_all(volume_ / current_);
    current_ = next;
  }

  // Runs the io_context on another thread for `duration`, as the daemon's loop runs, with a
  // heartbeat timer standing in for /healthz and the control socket. A trigger that blocks the
  // loop (an open of a FIFO without O_NONBLOCK waits for a writer forever) fails the test
  // after 5 s instead of hanging it: the FIFO's write end is then opened, which releases it.
  // Returns the heartbeats counted.
  // A timer that beats every 5 ms while the loop runs. It lives on the heap, owned by its own
  // pending handler: a beat that has already expired when run_for stops runs on a later run,
  // and must then find the heartbeat alive and stopped, not a dead stack frame.
  struct Heartbeat : std::enable_shared_from_this<Heartbeat> {
    explicit Heartbeat(boost::asio::io_context& io) : timer(io) {}
    void arm() {
      timer.expires_after(5ms);
      timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (ec || self->stopped) return;
        ++self->beats;
        self->arm();
      });
    }
    boost::asio::steady_timer timer;
    std::atomic<int> beats{0};
    std::atomic<bool> stopped{false};
  };

  int run_loop_for(std::chrono::milliseconds duration) {
    auto heartbeat = std::make_shared<Heartbeat>(io_);
    heartbeat->arm();
    io_.restart();
    auto ran = std::async(std::launch::async, [&] { io_.run_for(duration); });
    if (ran.wait_for(duration + 5s) == std::future_status::timeout) {
      const std::string visible = (volume_ / "annotations").string();
      const int writer = open(visible.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (writer >= 0) close(writer);
      ADD_FAILURE() << "the event loop was blocked for 5 s";
    }
    ran.get();
    // Its handler runs (stopped) on a later run; nothing more runs here, on the test's thread,
    // where a blocking read would hang the test.
    heartbeat->stopped = true;
    heartbeat->timer.cancel();
    io_.restart();
    return heartbeat->beats;
  }

  // Runs the loop (as run_loop_for) in short slices until `done` holds, for at most 5 s.
  bool run_loop_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      run_loop_for(10ms);
    }
    return true;
  }

  std::vector<std::string> warnings() { return sink_->at(spdlog::level::warn); }
  std::vector<std::string> infos() { return sink_->at(spdlog::level::info); }

  // A state as a previous run of the agent leaves it, so the first read is not a baseline.
  void previous_run_state() {
    auto state = HandledValues::load(state_path_);
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(state->save().ok());
  }

  void start_trigger(std::chrono::milliseconds fallback = 60s) {
    trigger_.reset();
    handled_.emplace(HandledValues::open(state_path_));
    ASSERT_TRUE(handled_->usable()) << handled_->problem()->describe();
    trigger_ = std::make_unique<AnnotationTrigger>(
        io_, (volume_ / "annotations").string(), kKey, BackupType::full, *handled_,
        [this](BackupRequest request) { requests_.push_back(std::move(request)); }, fallback);
    ASSERT_TRUE(trigger_->start().ok());
    wait_for_read();
  }

  // Runs the io_context until the trigger has read the file once more. The test changes the
  // volume before it runs the io_context, so that read sees the change; no sleeping.
  void wait_for_read() {
    const auto before = trigger_->status().reads;
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    while (trigger_->status().reads == before && std::chrono::steady_clock::now() < deadline)
      io_.run_one_for(10ms);
    ASSERT_GT(trigger_->status().reads, before) << "the trigger did not read the file";
    io_.poll();  // whatever else is ready, e.g. the rest of the kubelet's events
  }

  boost::asio::io_context io_;
  fs::path root_;
  fs::path volume_;
  std::string state_path_;
  std::string current_;
  int generation_ = 0;
  std::optional<HandledValues> handled_;
  std::unique_ptr<AnnotationTrigger> trigger_;
  std::vector<BackupRequest> requests_;
  std::shared_ptr<CapturingSink> sink_ = std::make_shared<CapturingSink>();
};

TEST_F(AnnotationTriggerTest, NewValueTriggersExactlyOnce) {
  previous_run_state();
  create_volume(kOther);
  start_trigger();
  EXPECT_TRUE(requests_.empty());

  kubelet_update(kOther + line("Mon Nov 23 10:00:00 UTC 2026"));
  wait_for_read();
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0].type, BackupType::full);
  EXPECT_EQ(requests_[0].trigger, Trigger::annotation);
  EXPECT_EQ(requests_[0].reason, std::string("annotation ") + kKey + "=\"Mon Nov 23 10:00:00 UTC 2026\"");
  EXPECT_GT(requests_[0].requested_at.time_since_epoch().count(), 0);

  // The same value written again, alone or next to another change: nothing.
  kubelet_update(kOther + line("Mon Nov 23 10:00:00 UTC 2026"));
  wait_for_read();
  kubelet_update(line("Mon Nov 23 10:00:00 UTC 2026") + "other=\"changed\"\n");
  wait_for_read();
  EXPECT_EQ(requests_.size(), 1u);

  kubelet_update(line("Tue Nov 24 10:00:00 UTC 2026"));
  wait_for_read();
  EXPECT_EQ(requests_.size(), 2u);
}

TEST_F(AnnotationTriggerTest, RestartDoesNotTriggerAgainForTheSameValue) {
  previous_run_state();
  create_volume(kOther);
  start_trigger();
  kubelet_update(line("v1"));
  wait_for_read();
  ASSERT_EQ(requests_.size(), 1u);

  start_trigger();  // a new trigger and a state loaded from the file, as after a restart
  EXPECT_EQ(requests_.size(), 1u);
  kubelet_update(line("v1"));
  wait_for_read();
  EXPECT_EQ(requests_.size(), 1u);
}

TEST_F(AnnotationTriggerTest, GarbageTriggersNothingAndBreaksNothing) {
  previous_run_state();
  create_volume(kOther);
  start_trigger();
  kubelet_update(std::string("\x01\xff\xfe binary\n") + kKey + "=unquoted\n" + kKey +
                 "=\"bad \\q escape\"\n" + kKey + "=\"unterminated\n");
  wait_for_read();
  kubelet_update(std::string(kKey) + "=\"\"\n");  // an empty value is not a request either
  wait_for_read();
  EXPECT_TRUE(requests_.empty());

  kubelet_update("garbage\n" + line("v1"));
  wait_for_read();
  EXPECT_EQ(requests_.size(), 1u);
}

TEST_F(AnnotationTriggerTest, OversizedFileIsIgnored) {
  previous_run_state();
  create_volume(kOther);
  start_trigger();
  kubelet_update(line("v1") + "big=\"" + std::string(AnnotationTrigger::kMaxFileBytes, 'x') + "\"\n");
  wait_for_read();
  EXPECT_TRUE(requests_.empty());
}

TEST_F(AnnotationTriggerTest, FirstStartWithAnExistingValueOnlyRecordsIt) {
  create_volume(kOther + line("set long ago"));
  start_trigger();
  EXPECT_TRUE(requests_.empty());
  EXPECT_TRUE(handled_->contains("set long ago"));
  EXPECT_TRUE(fs::exists(state_path_));

  kubelet_update(kOther + line("set now"));
  wait_for_read();
  EXPECT_EQ(requests_.size(), 1u);
}

TEST_F(AnnotationTriggerTest, FirstStartWithoutValueThenAValueSetWhileDownTriggers) {
  create_volume(kOther);
  start_trigger();
  EXPECT_TRUE(fs::exists(state_path_));  // the first start left its mark
  trigger_.reset();

  kubelet_update(kOther + line("set while the agent was down"));
  start_trigger();
  EXPECT_EQ(requests_.size(), 1u);
}

TEST_F(AnnotationTriggerTest, MissingVolumeAtStartIsRetriedOnTheFallbackTimer) {
  previous_run_state();
  start_trigger(20ms);  // no volume yet: a warning, not an error
  EXPECT_TRUE(requests_.empty());

  create_volume(line("v1"));
  wait_for_read();
  EXPECT_EQ(requests_.size(), 1u);
}

TEST_F(AnnotationTriggerTest, NoRequestWhenTheValueCannotBeRecorded) {
  previous_run_state();
  create_volume(kOther);
  start_trigger();
  fs::remove_all(root_ / "state");  // the state directory vanished: saving fails

  kubelet_update(line("v1"));
  wait_for_read();
  EXPECT_TRUE(requests_.empty());

  fs::create_directory(root_ / "state");
  kubelet_update(line("v1"));
  wait_for_read();
  EXPECT_EQ(requests_.size(), 1u);
}

// The scenario: the annotations path becomes a FIFO, a directory, a 100 MB file and
// binary garbage in turn, re-read every 20 ms and on every swap. The loop keeps going, each
// problem is warned about once, naming the path and what is there, and a valid file afterwards
// works as before.
TEST_F(AnnotationTriggerTest, FifoDirectoryHugeFileAndGarbageNeverStopTheLoop) {
  previous_run_state();
  create_volume(kOther + line("v0"));
  start_trigger(20ms);
  ASSERT_EQ(requests_.size(), 1u);  // v0 is new to the previous run's state
  EXPECT_EQ(trigger_->status().state, TriggerState::watching);
  const std::string path = (volume_ / "annotations").string();
  ASSERT_TRUE(warnings().empty());

  // Each phase: the change is seen (a warning), then the loop runs on with more reads of the
  // same problem (and heartbeats: the loop is not blocked), and no second warning comes.
  const auto more_reads_of_the_same = [&] {
    const auto reads = trigger_->status().reads;
    EXPECT_GT(run_loop_for(150ms), 3) << "heartbeats: the loop must keep running";
    EXPECT_GE(trigger_->status().reads, reads + 2);
  };
  kubelet_update_with([](const fs::path& file) { ASSERT_EQ(mkfifo(file.c_str(), 0644), 0); });
  EXPECT_TRUE(run_loop_until([&] { return warnings().size() == 1; }));
  more_reads_of_the_same();
  auto status = trigger_->status();
  EXPECT_EQ(status.state, TriggerState::waiting_for_file);
  EXPECT_STREQ(trigger_state_name(status.state), "waiting_for_file");
  EXPECT_NE(status.problem.find(path + " is a FIFO (named pipe), not a regular file; not reading it"),
            std::string::npos)
      << status.problem;
  EXPECT_NE(status.problem.find("manual.annotations_file"), std::string::npos) << "says what to do";
  ASSERT_EQ(warnings().size(), 1u);
  EXPECT_EQ(warnings().back(), status.problem);

  kubelet_update_with([](const fs::path& file) { fs::create_directory(file); });
  EXPECT_TRUE(run_loop_until([&] { return warnings().size() == 2; }));
  more_reads_of_the_same();
  ASSERT_EQ(warnings().size(), 2u);
  EXPECT_NE(warnings().back().find(path + " is a directory, not a regular file"), std::string::npos);
  EXPECT_EQ(trigger_->status().state, TriggerState::waiting_for_file);

  kubelet_update_with([](const fs::path& file) {
    const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 100LL * 1024 * 1024), 0);  // sparse: 100 MB that cost no disk
    close(fd);
  });
  EXPECT_TRUE(run_loop_until([&] { return warnings().size() == 3; }));
  more_reads_of_the_same();
  ASSERT_EQ(warnings().size(), 3u);
  EXPECT_NE(warnings().back().find(path + " is larger than 256 KiB"), std::string::npos) << warnings().back();
  EXPECT_EQ(trigger_->status().state, TriggerState::waiting_for_file);

  std::string garbage = std::string(
                            "\x7f"
                            "ELF\x02\x01\x01\0\0\0\xff\xfe\n",
                            13) +
                        "caf\xe9 \xc3\x28\n";
  for (int i = 0; i < 64; ++i) garbage += static_cast<char>((i * 37) & 0xff);
  garbage += "\n" + std::string(kKey) + "=\"\xff\xfe\0\n"s;  // never closed
  kubelet_update(garbage);
  EXPECT_TRUE(run_loop_until([&] { return warnings().size() == 4; }));
  more_reads_of_the_same();
  ASSERT_EQ(warnings().size(), 4u);
  EXPECT_NE(warnings().back().find(path + ": skipped "), std::string::npos) << warnings().back();
  EXPECT_EQ(trigger_->status().state, TriggerState::watching);
  EXPECT_EQ(requests_.size(), 1u);

  kubelet_update(kOther + line("v1"));
  EXPECT_TRUE(run_loop_until([&] { return requests_.size() == 2; }));
  more_reads_of_the_same();
  ASSERT_EQ(requests_.size(), 2u);
  EXPECT_EQ(requests_.back().reason, std::string("annotation ") + kKey + "=\"v1\"");
  status = trigger_->status();
  EXPECT_EQ(status.state, TriggerState::watching);
  EXPECT_EQ(status.problem, "");
  EXPECT_EQ(status.warnings, 4u);
  EXPECT_EQ(warnings().size(), 4u) << "each problem is warned about once";
  const auto said = infos();
  EXPECT_EQ(std::count(said.begin(), said.end(), path + " reads cleanly again; watching annotation " + kKey),
            1);
}

TEST_F(AnnotationTriggerTest, FifoAtStartDoesNotBlockTheFirstRead) {
  previous_run_state();
  fs::create_directory(volume_);
  ASSERT_EQ(mkfifo((volume_ / "annotations").c_str(), 0644), 0);
  handled_.emplace(HandledValues::open(state_path_));
  trigger_ = std::make_unique<AnnotationTrigger>(
      io_, (volume_ / "annotations").string(), kKey, BackupType::full, *handled_,
      [this](BackupRequest request) { requests_.push_back(std::move(request)); }, 20ms);
  ASSERT_TRUE(trigger_->start().ok());
  EXPECT_TRUE(run_loop_until([&] { return trigger_->status().reads >= 3; }));
  EXPECT_EQ(trigger_->status().state, TriggerState::waiting_for_file);
  EXPECT_EQ(warnings().size(), 1u);
}

TEST_F(AnnotationTriggerTest, MissingFileSaysWhatToDoOnce) {
  previous_run_state();
  start_trigger(20ms);
  const auto reads = trigger_->status().reads;
  EXPECT_TRUE(run_loop_until([&] { return trigger_->status().reads >= reads + 3; }));
  const auto status = trigger_->status();
  EXPECT_EQ(status.state, TriggerState::waiting_for_file);
  EXPECT_NE(status.problem.find((volume_ / "annotations").string() + " does not exist (yet)"),
            std::string::npos)
      << status.problem;
  EXPECT_NE(status.problem.find("downwardAPI"), std::string::npos);
  EXPECT_EQ(warnings().size(), 2u) << "the file, and the directory that cannot be watched yet";
  EXPECT_FALSE(status.watch_problem.empty());
}

// A corrupt handled-values file: kept aside, and the value already set is recorded as on a
// first start: no backup runs again for it. A later value triggers as usual.
TEST_F(AnnotationTriggerTest, CorruptStateStartsFreshWithoutRunningTheCurrentValueAgain) {
  previous_run_state();
  create_volume(kOther + line("already backed up"));
  start_trigger();
  ASSERT_EQ(requests_.size(), 1u);
  trigger_.reset();
  std::ofstream(state_path_, std::ios::trunc) << "{\"version\": 1, \"values\": [\"already backed";  // torn

  handled_.emplace(HandledValues::open(state_path_));
  ASSERT_TRUE(handled_->recovery().has_value());
  trigger_ = std::make_unique<AnnotationTrigger>(
      io_, (volume_ / "annotations").string(), kKey, BackupType::full, *handled_,
      [this](BackupRequest request) { requests_.push_back(std::move(request)); });
  ASSERT_TRUE(trigger_->start().ok());
  wait_for_read();
  EXPECT_EQ(requests_.size(), 1u) << "the current value must not be backed up twice";
  EXPECT_TRUE(handled_->contains("already backed up"));
  const auto status = trigger_->status();
  EXPECT_EQ(status.state, TriggerState::watching);
  EXPECT_NE(status.notice.find("was corrupt"), std::string::npos) << status.notice;
  ASSERT_EQ(warnings().size(), 1u);
  EXPECT_EQ(warnings()[0], status.notice);

  kubelet_update(kOther + line("new"));
  wait_for_read();
  EXPECT_EQ(requests_.size(), 2u);
}

// An unusable state (here: its directory is gone) disables the trigger, says so, and heals
// without a restart once fixed, treating the value then present as a baseline.
TEST_F(AnnotationTriggerTest, UnusableStateDisablesTheTriggerUntilFixed) {
  fs::remove_all(root_ / "state");
  create_volume(kOther + line("v1"));
  handled_.emplace(HandledValues::open(state_path_));
  ASSERT_FALSE(handled_->usable());
  trigger_ = std::make_unique<AnnotationTrigger>(
      io_, (volume_ / "annotations").string(), kKey, BackupType::full, *handled_,
      [this](BackupRequest request) { requests_.push_back(std::move(request)); }, 20ms);
  ASSERT_TRUE(trigger_->start().ok());
  EXPECT_EQ(trigger_->status().state, TriggerState::disabled) << "known at once, before the first read";
  EXPECT_GT(run_loop_for(100ms), 2);
  auto status = trigger_->status();
  EXPECT_EQ(status.state, TriggerState::disabled);
  EXPECT_STREQ(trigger_state_name(status.state), "disabled");
  EXPECT_NE(status.problem.find("annotation trigger disabled: the state directory"), std::string::npos)
      << status.problem;
  EXPECT_EQ(warnings().size(), 1u);
  kubelet_update(kOther + line("v2"));
  EXPECT_GT(run_loop_for(60ms), 1);
  EXPECT_TRUE(requests_.empty());

  fs::create_directory(root_ / "state");
  EXPECT_TRUE(run_loop_until([&] { return trigger_->status().state == TriggerState::watching; }));
  status = trigger_->status();
  EXPECT_EQ(status.problem, "");
  EXPECT_TRUE(requests_.empty()) << "v2 is the baseline: the state could not know earlier values";
  EXPECT_TRUE(handled_->contains("v2"));
  kubelet_update(kOther + line("v3"));
  EXPECT_TRUE(run_loop_until([&] { return requests_.size() == 1; }));
  EXPECT_EQ(warnings().size(), 1u);
}

TEST_F(AnnotationTriggerTest, FailingToRecordIsWarnedOnceNotOnEveryRead) {
  previous_run_state();
  create_volume(kOther);
  start_trigger(20ms);
  fs::remove_all(root_ / "state");
  kubelet_update(line("v1"));
  EXPECT_TRUE(run_loop_until([&] { return trigger_->status().state == TriggerState::disabled; }));
  const auto reads = trigger_->status().reads;
  EXPECT_TRUE(run_loop_until([&] { return trigger_->status().reads >= reads + 3; }));
  EXPECT_TRUE(requests_.empty());
  EXPECT_EQ(trigger_->status().state, TriggerState::disabled);
  EXPECT_EQ(warnings().size(), 1u);
  fs::create_directory(root_ / "state");
  EXPECT_TRUE(run_loop_until([&] { return requests_.size() == 1; }));
  EXPECT_EQ(trigger_->status().state, TriggerState::watching);
}

TEST_F(AnnotationTriggerTest, StopEndsWatching) {
  previous_run_state();
  create_volume(kOther);
  start_trigger();
  trigger_->stop();
  EXPECT_EQ(trigger_->status().state, TriggerState::stopped);
  kubelet_update(line("v1"));
  io_.run_for(30ms);
  EXPECT_TRUE(requests_.empty());
}

}  // namespace
}  // namespace agent
