#pragma once
// The annotation trigger: setting a pod annotation to a new value asks for one backup, the
// contract of Crunchy's operator (`oc annotate pod X <key>="$(date)" --overwrite`).
//
// The annotations reach us through a Downward API volume. The kubelet replaces the file by
// swapping a `..data` symlink inside the volume's directory, so the file itself is never
// modified in place: we watch the directory with inotify and re-read the file through its
// symlinks on any event. A fallback timer re-reads it too, in case an event is missed or the
// volume was not there yet. The value is only compared and logged; it never reaches a command
// line.
//
// Reading the file never stalls the event loop (the loop also answers /healthz and the control
// socket): it is opened non-blocking, anything but a regular file is refused (a FIFO, a
// directory, a socket, a device), and at most kMaxFileBytes + 1 bytes are read. Lines that are
// not `key="value"` (binary garbage, NUL bytes, bad quoting) are skipped and reported; bytes
// that are not UTF-8 are only compared. Each problem is logged once when it appears or changes,
// with the path, what is there and what to do, and once at info when it clears; status() says
// where the trigger stands, for `agent status`, a metric and /healthz's body. None of this ever
// stops the agent: the trigger only stops requesting backups while it cannot read the file
// (waiting_for_file) or cannot record what it handled (disabled, see HandledValues).
#include <sys/inotify.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "core/files.hpp"
#include "jobs/backup_request.hpp"
#include "jobs/handled_values.hpp"

namespace agent {

enum class TriggerState {
  stopped,           // not started, or stopped
  watching,          // the file was read and judged; skipped lines, if any, are in `problem`
  waiting_for_file,  // the file is missing, not a regular file, too large or unreadable
  disabled,          // the handled values cannot be read or saved: no backup is requested
};
// "stopped", "watching", "waiting_for_file", "disabled": for status, JSON and metric labels.
const char* trigger_state_name(TriggerState state);

struct AnnotationTriggerStatus {
  TriggerState state = TriggerState::stopped;
  // The current problem as logged (what, where, what to do); empty when there is none.
  std::string problem;
  // Inotify cannot be used or the directory cannot be watched: the fallback timer does the
  // work, so a change is seen within the fallback interval instead of at once. Empty when fine.
  std::string watch_problem;
  // Something the operator should know that is not a current problem: the handled values
  // file was corrupt and was kept aside (HandledValues::Recovery::describe). Empty otherwise.
  std::string notice;
  std::uint64_t reads = 0;     // reads of the file so far
  std::uint64_t warnings = 0;  // warnings logged: one per appearance or change of a problem
};

class AnnotationTrigger {
 public:
  static constexpr std::size_t kMaxFileBytes = 256 * 1024;  // the API server's limit for all annotations
  static constexpr std::size_t kMaxReasonValueBytes = 200;

  // `handled` and `io` must outlive the trigger. `enqueue` runs on the io_context's thread.
  AnnotationTrigger(boost::asio::io_context& io, std::string annotations_path, std::string key,
                    BackupType type, HandledValues& handled, std::function<void(BackupRequest)> enqueue,
                    std::chrono::milliseconds fallback_interval = std::chrono::seconds(60));
  ~AnnotationTrigger();
  AnnotationTrigger(const AnnotationTrigger&) = delete;
  AnnotationTrigger& operator=(const AnnotationTrigger&) = delete;

  // Starts watching and schedules a first read. A missing file or directory is only a warning
  // (the pod may start before its volume is filled); inotify failing is a warning too, and the
  // fallback timer then does all the work.
  Status start();
  // Cancels everything; pending handlers become no-ops. start() may be called again.
  void stop();

  // Where the trigger stands; call on the io_context's thread.
  AnnotationTriggerStatus status() const;

 private:
  void try_watch();
  void read_events();
  void arm_timer();
  void check_now();
  // Warn when a problem appears or changes, say so once when it clears: the fallback timer
  // must not repeat the same warning every minute.
  void note_watch_problem(const std::string& problem);
  // `problem` empty: the state is `state` and all is well; otherwise `state` because of it.
  void note_read_problem(TriggerState state, const std::string& problem);
  // Why the handled values are unusable (looking again first), or nothing when they are fine.
  std::optional<std::string> state_problem();
  // Reads the file and acts on it; the state and the problem this read ends in.
  std::pair<TriggerState, std::string> read_and_act();
  std::string file_problem_text(const FileRead& file) const;

  boost::asio::io_context& io_;
  std::string path_;
  std::string dir_;
  std::string key_;
  BackupType type_;
  HandledValues& handled_;
  std::function<void(BackupRequest)> enqueue_;
  std::chrono::milliseconds fallback_interval_;

  boost::asio::posix::stream_descriptor inotify_;
  boost::asio::steady_timer timer_;
  int watch_ = -1;
  // Storage for inotify events, aligned for the struct the kernel writes.
  alignas(inotify_event) char events_[4096 + sizeof(inotify_event)];
  // Handlers hold a weak_ptr to this: once stop() or the destructor resets it they do nothing,
  // even when their completion was already queued.
  std::shared_ptr<int> alive_;
  std::uint64_t reads_ = 0;
  std::uint64_t warnings_ = 0;
  TriggerState state_ = TriggerState::stopped;
  std::string last_watch_problem_;
  std::string last_read_problem_;
  bool recovery_reported_ = false;
};

}  // namespace agent
