#include "jobs/annotation_trigger.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

namespace agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kKey = "postgres-operator.crunchydata.com/pgbackrest-backup";

std::string line(const std::string& value) {
  return std::string(kKey) + "=\"" + value + "\"\n";
}
const std::string kOther = "kubectl.kubernetes.io/default-container=\"database\"\n";

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
  }
  void TearDown() override {
    trigger_.reset();
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
    char name[64];
    std::snprintf(name, sizeof name, "..2026_11_23_10_00_00.%09d", ++generation_);
    fs::create_directory(volume_ / name);
    std::ofstream(volume_ / name / "annotations", std::ios::binary) << content;
    return name;
  }

  // A state as a previous run of the agent leaves it, so the first read is not a baseline.
  void previous_run_state() {
    auto state = HandledValues::load(state_path_);
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(state->save().ok());
  }

  void start_trigger(std::chrono::milliseconds fallback = 60s) {
    trigger_.reset();
    auto state = HandledValues::load(state_path_);
    ASSERT_TRUE(state.ok()) << state.error().describe();
    handled_.emplace(std::move(*state));
    trigger_ = std::make_unique<AnnotationTrigger>(
        io_, (volume_ / "annotations").string(), kKey, BackupType::full, *handled_,
        [this](BackupRequest request) { requests_.push_back(std::move(request)); }, fallback);
    ASSERT_TRUE(trigger_->start().ok());
    wait_for_read();
  }

  // Runs the io_context until the trigger has read the file once more. The test changes the
  // volume before it runs the io_context, so that read sees the change; no sleeping.
  void wait_for_read() {
    const auto before = trigger_->reads();
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    while (trigger_->reads() == before && std::chrono::steady_clock::now() < deadline) io_.run_one_for(10ms);
    ASSERT_GT(trigger_->reads(), before) << "the trigger did not read the file";
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

TEST_F(AnnotationTriggerTest, StopEndsWatching) {
  previous_run_state();
  create_volume(kOther);
  start_trigger();
  trigger_->stop();
  kubelet_update(line("v1"));
  io_.run_for(30ms);
  EXPECT_TRUE(requests_.empty());
}

}  // namespace
}  // namespace agent
