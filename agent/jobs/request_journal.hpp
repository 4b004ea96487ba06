#pragma once
// Requested backups survive the agent: an annotation or a client's request is written to
// state_dir/requests.json before it joins the queue, marked when its job starts, and removed
// when the job has ended. Whatever is still in the file when the agent starts again was cut
// short by a restart (SIGTERM with work queued, a kill, an OOM): it runs again, once, or, when
// it was already started twice, is reported as abandoned with its reason (log, `agent status`,
// the skipped-backups counter). Scheduled backups are not journaled: their schedule fires again.
//
// The file is JSON, written atomically:
//   {"version": 1, "next_id": 8,
//    "requests": [{"id": 7, "type": "full", "trigger": "annotation", "reason": "...",
//                  "requested_at_us": 1795428000000000, "attempts": 1, "repo": 2}]}
// ("repo": the repository, 0 for the default one; absent in files of earlier versions)
//
// One window stays open: an annotation value is remembered as handled a moment before its
// request is journaled; a kill between the two writes loses that request.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "jobs/backup_request.hpp"

namespace agent {

struct JournaledRequest {
  std::uint64_t id = 0;
  BackupRequest request;
  int attempts = 0;  // how many times its job was started
};

class RequestJournal {
 public:
  // A request whose job was started this often and never ended is not tried again.
  static constexpr int kMaxAttempts = 2;
  static constexpr std::size_t kMaxRequests = 200;

  // A missing file is an empty journal. A corrupt one is kept aside (renamed to
  // NAME.corrupt-<time>) and the journal starts empty; `recovered_from` says so.
  static Result<RequestJournal> open(std::string path);

  // Before the request joins the queue.
  Result<std::uint64_t> record(const BackupRequest& request);
  // When its job starts (counts an attempt) and when it has ended.
  Status started(std::uint64_t id);
  Status finished(std::uint64_t id);

  struct Leftovers {
    std::vector<JournaledRequest> rerun;      // to be queued again
    std::vector<JournaledRequest> abandoned;  // started kMaxAttempts times; removed from the file
    std::string save_problem;                 // set when removing them from the file failed
  };
  // What a previous run left; call once, at start, before anything is recorded.
  Result<Leftovers> take_leftovers();

  const std::vector<JournaledRequest>& requests() const { return requests_; }
  const std::string& recovered_from() const { return recovered_from_; }
  const std::string& path() const { return path_; }

 private:
  explicit RequestJournal(std::string path) : path_(std::move(path)) {}
  Status save() const;

  std::string path_;
  std::uint64_t next_id_ = 1;
  std::vector<JournaledRequest> requests_;
  std::string recovered_from_;
};

}  // namespace agent
