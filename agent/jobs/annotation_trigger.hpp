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
#include <sys/inotify.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "jobs/backup_request.hpp"
#include "jobs/handled_values.hpp"

namespace agent {

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

  // How many times the file has been read and judged: for status and for tests.
  std::uint64_t reads() const { return reads_; }

 private:
  void try_watch();
  void read_events();
  void arm_timer();
  void check_now();
  // Warn when a problem appears or changes, say so once when it clears: the fallback timer
  // must not repeat the same warning every minute.
  void note_watch_problem(const std::string& problem);
  void note_read_problem(const std::string& problem);

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
  bool baseline_pending_ = false;
  std::uint64_t reads_ = 0;
  std::string last_watch_problem_;
  std::string last_read_problem_;
};

}  // namespace agent
