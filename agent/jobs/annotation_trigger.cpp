#include "jobs/annotation_trigger.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/log.hpp"
#include "jobs/annotations.hpp"

namespace agent {

namespace {

// Everything the kubelet's swap does to the directory: a new timestamped directory, the
// `..data_tmp` symlink renamed over `..data`, the old directory removed. IN_CLOSE_WRITE and
// IN_MODIFY cover a plain file edited in place (a hand-made setup, or tests).
constexpr std::uint32_t kWatchMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                                     IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::string interval_text(std::chrono::milliseconds interval) {
  if (interval.count() % 1000 != 0) return std::to_string(interval.count()) + " ms";
  return std::to_string(interval.count() / 1000) + " s";
}

// The value as it appears in logs and in the request's reason: at most kMaxReasonValueBytes
// bytes (not cutting a UTF-8 sequence in two), quotes, backslashes and control characters
// escaped so one annotation stays one log line.
std::string shown(const std::string& value) {
  std::size_t end = std::min(value.size(), AnnotationTrigger::kMaxReasonValueBytes);
  while (end < value.size() && end > 0 && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80) --end;
  std::string out;
  for (std::size_t i = 0; i < end; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (end < value.size()) out += "...";
  return out;
}

// At most this many skipped lines are spelled out in a warning; the rest are counted.
constexpr std::size_t kShownLineProblems = 3;

std::shared_ptr<spdlog::logger> logger() {
  return log::get("annotation");
}

}  // namespace

const char* trigger_state_name(TriggerState state) {
  switch (state) {
    case TriggerState::stopped:
      return "stopped";
    case TriggerState::watching:
      return "watching";
    case TriggerState::waiting_for_file:
      return "waiting_for_file";
    case TriggerState::disabled:
      return "disabled";
  }
  return "unknown";
}

AnnotationTrigger::AnnotationTrigger(boost::asio::io_context& io, std::string annotations_path,
                                     std::string key, BackupType type, HandledValues& handled,
                                     std::function<void(BackupRequest)> enqueue,
                                     std::chrono::milliseconds fallback_interval)
    : io_(io),
      path_(std::move(annotations_path)),
      dir_(std::filesystem::path(path_).parent_path().string()),
      key_(std::move(key)),
      type_(type),
      handled_(handled),
      enqueue_(std::move(enqueue)),
      fallback_interval_(fallback_interval),
      inotify_(io),
      timer_(io) {
  if (dir_.empty()) dir_ = ".";
}

AnnotationTrigger::~AnnotationTrigger() {
  stop();
}

Status AnnotationTrigger::start() {
  if (key_.empty())
    return make_error(ErrorKind::usage, "the annotation key to watch is empty", "set the annotation key");
  if (path_.empty())
    return make_error(ErrorKind::usage, "the annotations file path is empty",
                      "set the path of the downward API annotations file");
  stop();
  alive_ = std::make_shared<int>(0);
  state_ = TriggerState::watching;
  logger()->info("watching annotation {} in {} for {} backups", key_, path_, backup_type_name(type_));
  // Said at once rather than at the first read: the state's problem, or a corrupt file kept aside.
  if (auto problem = state_problem()) note_read_problem(TriggerState::disabled, *problem);
  try_watch();
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) check_now();
  });
  arm_timer();
  return {};
}

void AnnotationTrigger::stop() {
  alive_.reset();
  state_ = TriggerState::stopped;
  timer_.cancel();
  boost::system::error_code ignored;
  inotify_.close(ignored);  // closing the inotify fd also drops its watch
  watch_ = -1;
}

void AnnotationTrigger::try_watch() {
  if (!inotify_.is_open()) {
    const int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0) {
      note_watch_problem("cannot use inotify (" + std::string(std::strerror(errno)) + "); re-reading " +
                         path_ + " every " + interval_text(fallback_interval_) + " instead");
      return;
    }
    inotify_.assign(fd);
    read_events();
  }
  if (watch_ >= 0) return;
  watch_ = inotify_add_watch(inotify_.native_handle(), dir_.c_str(), kWatchMask);
  if (watch_ < 0) {
    note_watch_problem("cannot watch " + dir_ + " (" + std::strerror(errno) + "); trying again every " +
                       interval_text(fallback_interval_));
    return;
  }
  note_watch_problem("");
}

void AnnotationTrigger::read_events() {
  inotify_.async_read_some(
      boost::asio::buffer(events_),
      [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec, std::size_t size) {
        if (alive.expired()) return;
        if (ec) {
          note_watch_problem("cannot read inotify events (" + ec.message() + "); re-reading " + path_ +
                             " every " + interval_text(fallback_interval_));
          boost::system::error_code ignored;
          inotify_.close(ignored);
          watch_ = -1;
          return;
        }
        // Only IN_IGNORED matters individually: the directory is gone and with it the watch,
        // which the fallback timer adds again. Any event at all means "read the file again".
        for (std::size_t offset = 0; offset + sizeof(inotify_event) <= size;) {
          inotify_event event{};
          std::memcpy(&event, events_ + offset, sizeof event);
          if ((event.mask & IN_IGNORED) != 0) watch_ = -1;
          offset += sizeof(inotify_event) + event.len;
        }
        check_now();
        if (!alive.expired()) read_events();  // enqueue may have stopped us
      });
}

void AnnotationTrigger::arm_timer() {
  timer_.expires_after(fallback_interval_);
  timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
    if (alive.expired() || ec) return;
    try_watch();  // first, so a change right after this read is not missed
    check_now();
    if (!alive.expired()) arm_timer();
  });
}

std::optional<std::string> AnnotationTrigger::state_problem() {
  if (!handled_.usable() && !handled_.retry())
    return "annotation trigger disabled: " + handled_.problem()->describe();
  if (handled_.recovery() && !recovery_reported_) {
    logger()->warn("{}", handled_.recovery()->describe(handled_.path()));
    ++warnings_;
    recovery_reported_ = true;
  }
  return std::nullopt;
}

std::string AnnotationTrigger::file_problem_text(const FileRead& file) const {
  const std::string not_read =
      "; not reading it, so annotation " + key_ + " requests no backup until it can be read";
  const std::string remedy =
      "mount the pod's annotations there (a downwardAPI volume item with fieldRef metadata.annotations), "
      "or set manual.annotations_file to \"\" to turn the annotation trigger off";
  switch (file.outcome) {
    case FileRead::Outcome::ok:
      return "";
    case FileRead::Outcome::missing:
      return path_ + " does not exist (yet); waiting for it (looking again on every change in " + dir_ +
             " and every " + interval_text(fallback_interval_) + "), and annotation " + key_ +
             " requests no backup until then. If it never comes: " + remedy;
    case FileRead::Outcome::not_regular:
      return file.problem + not_read + ". To fix: " + remedy;
    case FileRead::Outcome::too_large:
      return path_ + " is larger than " + std::to_string(kMaxFileBytes / 1024) +
             " KiB, more than the API server allows for all of a pod's annotations, so it is not "
             "the kubelet's annotations file" +
             not_read + ". To fix: " + remedy;
    case FileRead::Outcome::failed:
      return file.problem + "; annotation " + key_ +
             " requests no backup until it can be read. To fix: make it readable by the agent's user, or " +
             remedy;
  }
  return file.problem;
}

void AnnotationTrigger::check_now() {
  ++reads_;
  // One verdict per read, so a problem that persists is not cleared and raised again within it.
  const auto [state, problem] = read_and_act();
  note_read_problem(state, problem);
}

std::pair<TriggerState, std::string> AnnotationTrigger::read_and_act() {
  if (auto problem = state_problem()) return {TriggerState::disabled, *problem};
  const FileRead file = read_regular_file_nonblocking(path_, kMaxFileBytes);
  if (!file.ok()) return {TriggerState::waiting_for_file, file_problem_text(file)};

  const AnnotationFile parsed = parse_annotations(file.content);
  std::string skipped;
  if (!parsed.problems.empty()) {
    std::string lines;
    for (std::size_t i = 0; i < parsed.problems.size() && i < kShownLineProblems; ++i)
      lines += (i == 0 ? "" : "; ") + parsed.problems[i];
    if (parsed.skipped > kShownLineProblems)
      lines += "; and " + std::to_string(parsed.skipped - kShownLineProblems) + " more";
    skipped =
        path_ + ": skipped " + std::to_string(parsed.skipped) + (parsed.skipped == 1 ? " line" : " lines") +
        " that are not key=\"value\" (" + lines + "); annotation " + key_ +
        " is read from the other lines. The kubelet writes no such lines: check what else writes this file";
  }

  const auto found = parsed.values.find(key_);
  const std::string* value = found == parsed.values.end() || found->second.empty() ? nullptr : &found->second;

  // Crunchy's contract is "setting the annotation to a NEW value triggers". With no state file
  // (a first start, or a corrupt one kept aside) the agent does not know this pod's earlier
  // values, so a value already there is old news: this read only records it as handled. Later
  // values, including ones set while the agent is down, trigger. Saving even with no value
  // leaves the state file behind, so after a restart a value set meanwhile is seen as new.
  if (!handled_.persisted()) {
    if (auto saved = value ? handled_.remember(*value) : handled_.save(); !saved)
      return {TriggerState::disabled,
              "cannot record the first reading of annotation " + key_ +
                  ", so none of its values requests a backup yet: " + saved.error().describe()};
    if (value)
      logger()->info(
          "first start: annotation {}=\"{}\" was already set; recorded it as handled without a backup, "
          "a new value will trigger one",
          key_, shown(*value));
    else
      logger()->info("first start: annotation {} is not set; setting it to a new value will trigger a backup",
                     key_);
    return {TriggerState::watching, skipped};
  }

  if (!value || handled_.contains(*value)) return {TriggerState::watching, skipped};
  // Remember first, enqueue second: if the state cannot be saved, the backup is not asked for
  // at all, because a backup run twice for one value is the promise we will not break.
  if (auto saved = handled_.remember(*value); !saved)
    return {TriggerState::disabled, "annotation " + key_ + "=\"" + shown(*value) +
                                        "\" is new but cannot be recorded, so no backup is requested (it is, "
                                        "once it can be recorded): " +
                                        saved.error().describe()};
  const std::string reason = "annotation " + key_ + "=\"" + shown(*value) + "\"";
  logger()->info("{}: requesting a {} backup", reason, backup_type_name(type_));
  enqueue_(BackupRequest{type_, Trigger::annotation, reason, std::chrono::system_clock::now()});
  return {TriggerState::watching, skipped};
}

AnnotationTriggerStatus AnnotationTrigger::status() const {
  AnnotationTriggerStatus out;
  out.state = state_;
  out.problem = last_read_problem_;
  out.watch_problem = last_watch_problem_;
  if (handled_.recovery()) out.notice = handled_.recovery()->describe(handled_.path());
  out.reads = reads_;
  out.warnings = warnings_;
  return out;
}

void AnnotationTrigger::note_watch_problem(const std::string& problem) {
  if (problem == last_watch_problem_) return;
  if (problem.empty()) {
    logger()->info("watching {} again", dir_);
  } else {
    logger()->warn("{}", problem);
    ++warnings_;
  }
  last_watch_problem_ = problem;
}

void AnnotationTrigger::note_read_problem(TriggerState state, const std::string& problem) {
  const TriggerState before = state_;
  state_ = state;
  if (problem == last_read_problem_) return;
  if (problem.empty()) {
    if (before == TriggerState::disabled)
      logger()->info("the handled values in {} are usable again; annotation {} requests backups again",
                     handled_.path(), key_);
    else
      logger()->info("{} reads cleanly again; watching annotation {}", path_, key_);
  } else {
    logger()->warn("{}", problem);
    ++warnings_;
  }
  last_read_problem_ = problem;
}

}  // namespace agent
