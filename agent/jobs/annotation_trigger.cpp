#include "jobs/annotation_trigger.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

Error read_error(const std::string& what, const std::string& path) {
  return make_error(ErrorKind::environment, "cannot " + what + " " + path + ": " + std::strerror(errno));
}

// Reads the file through its symlinks, refusing anything larger than `limit`: the value is
// only compared, and a huge file is not something the kubelet writes.
Result<std::string> read_limited(const std::string& path, std::size_t limit) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return read_error("open", path);
  struct stat info {};
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    close(fd);
    return make_error(ErrorKind::environment, path + " is not a regular file");
  }
  std::string text;
  char buffer[16384];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto error = read_error("read", path);
      close(fd);
      return error;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > limit) {
      close(fd);
      return make_error(ErrorKind::environment,
                        path + " is larger than " + std::to_string(limit / 1024) + " KiB; ignoring it");
    }
  }
  close(fd);
  return text;
}

std::shared_ptr<spdlog::logger> logger() {
  return log::get("annotation");
}

}  // namespace

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
  // Crunchy's contract is "setting the annotation to a NEW value triggers". With no state
  // file the agent has never seen this pod's annotations, so a value already there is old
  // news (a fresh deployment of a cluster annotated long ago): the first successful read only
  // records it as handled. Later values, including ones set while the agent is down, trigger.
  baseline_pending_ = !handled_.persisted();
  logger()->info("watching annotation {} in {} for {} backups", key_, path_, backup_type_name(type_));
  try_watch();
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired()) check_now();
  });
  arm_timer();
  return {};
}

void AnnotationTrigger::stop() {
  alive_.reset();
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

void AnnotationTrigger::check_now() {
  ++reads_;
  auto text = read_limited(path_, kMaxFileBytes);
  if (!text) {
    note_read_problem(text.error().message);
    return;
  }
  const AnnotationFile file = parse_annotations(*text);
  std::string problems;
  for (const auto& problem : file.problems) problems += (problems.empty() ? "" : "; ") + problem;
  note_read_problem(problems.empty() ? "" : path_ + ": skipped lines: " + problems);

  const auto found = file.values.find(key_);
  const std::string* value = found == file.values.end() || found->second.empty() ? nullptr : &found->second;

  if (baseline_pending_) {
    // Saving even with no value leaves the state file behind, so after a restart a value set
    // in the meantime is recognised as new.
    if (auto saved = value ? handled_.remember(*value) : handled_.save(); !saved) {
      logger()->error("cannot record the first reading of annotation {}: {}", key_, saved.error().describe());
      return;
    }
    baseline_pending_ = false;
    if (value)
      logger()->info(
          "first start: annotation {}=\"{}\" was already set; recorded it as handled without a backup, "
          "a new value will trigger one",
          key_, shown(*value));
    else
      logger()->info("first start: annotation {} is not set; setting it to a new value will trigger a backup",
                     key_);
    return;
  }

  if (!value || handled_.contains(*value)) return;
  // Remember first, enqueue second: if the state cannot be saved, the backup is not asked for
  // at all, because a backup run twice for one value is the promise we will not break.
  if (auto saved = handled_.remember(*value); !saved) {
    logger()->error("annotation {}=\"{}\" is new but cannot be recorded, so no backup is requested: {}", key_,
                    shown(*value), saved.error().describe());
    return;
  }
  const std::string reason = "annotation " + key_ + "=\"" + shown(*value) + "\"";
  logger()->info("{}: requesting a {} backup", reason, backup_type_name(type_));
  enqueue_(BackupRequest{type_, Trigger::annotation, reason, std::chrono::system_clock::now()});
}

void AnnotationTrigger::note_watch_problem(const std::string& problem) {
  if (problem == last_watch_problem_) return;
  if (problem.empty())
    logger()->info("watching {} again", dir_);
  else
    logger()->warn("{}", problem);
  last_watch_problem_ = problem;
}

void AnnotationTrigger::note_read_problem(const std::string& problem) {
  if (problem == last_read_problem_) return;
  if (problem.empty())
    logger()->info("{} reads cleanly again", path_);
  else
    logger()->warn("{}", problem);
  last_read_problem_ = problem;
}

}  // namespace agent
