#include "jobs/request_journal.hpp"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/files.hpp"

namespace agent {

namespace {

constexpr int kFormatVersion = 1;

std::optional<Trigger> parse_trigger(const std::string& text) {
  for (auto trigger : {Trigger::schedule, Trigger::annotation, Trigger::manual})
    if (text == trigger_name(trigger)) return trigger;
  return std::nullopt;
}

// The entries of a journal file, or a reason why it is not one.
Result<std::pair<std::uint64_t, std::vector<JournaledRequest>>> parse(const std::string& text) {
  const auto bad = [](const std::string& why) { return make_error(ErrorKind::environment, why); };
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return bad("it is not a JSON object");
  const auto version = json.find("version");
  if (version == json.end() || !version->is_number_integer() ||
      version->get<std::int64_t>() != kFormatVersion)
    return bad("unknown format version");
  const auto next = json.find("next_id");
  const auto list = json.find("requests");
  if (next == json.end() || !next->is_number_unsigned() || list == json.end() || !list->is_array())
    return bad("next_id or requests is missing");
  std::vector<JournaledRequest> requests;
  for (const auto& item : *list) {
    if (!item.is_object()) return bad("a request is not an object");
    const auto id = item.find("id");
    const auto type = item.find("type");
    const auto trigger = item.find("trigger");
    const auto reason = item.find("reason");
    const auto at = item.find("requested_at_us");
    const auto attempts = item.find("attempts");
    if (id == item.end() || !id->is_number_unsigned() || type == item.end() || !type->is_string() ||
        trigger == item.end() || !trigger->is_string() || reason == item.end() || !reason->is_string() ||
        at == item.end() || !at->is_number_integer() || attempts == item.end() ||
        !attempts->is_number_integer())
      return bad("a request lacks a field or has one of the wrong type");
    const auto parsed_type = parse_backup_type(type->get<std::string>());
    const auto parsed_trigger = parse_trigger(trigger->get<std::string>());
    if (!parsed_type || !parsed_trigger) return bad("a request has an unknown type or trigger");
    // "repo" is optional: a journal written before backups named their repository has none.
    int repo = 0;
    if (const auto found = item.find("repo"); found != item.end()) {
      if (!found->is_number_integer() || found->get<std::int64_t>() < 0 || found->get<std::int64_t>() > 256)
        return bad("a request has a repo that is not 0..256");
      repo = static_cast<int>(found->get<std::int64_t>());
    }
    JournaledRequest entry;
    entry.id = id->get<std::uint64_t>();
    entry.request = BackupRequest{
        *parsed_type, *parsed_trigger, reason->get<std::string>(),
        std::chrono::system_clock::time_point(std::chrono::microseconds(at->get<std::int64_t>())), repo};
    entry.attempts = static_cast<int>(std::clamp<std::int64_t>(attempts->get<std::int64_t>(), 0, 1000));
    requests.push_back(std::move(entry));
  }
  return std::pair{next->get<std::uint64_t>(), std::move(requests)};
}

}  // namespace

Result<RequestJournal> RequestJournal::open(std::string path) {
  RequestJournal journal(std::move(path));
  auto text = read_state_file(journal.path_, "request journal");
  if (!text) return text.error();
  if (!*text) return journal;
  Result<std::pair<std::uint64_t, std::vector<JournaledRequest>>> parsed =
      make_error(ErrorKind::environment, "it cannot be read");
  try {
    parsed = parse(**text);
  } catch (const std::exception& e) {  // a shape the checks above did not foresee
    parsed = make_error(ErrorKind::environment, e.what());
  }
  if (parsed) {
    journal.next_id_ = parsed->first;
    journal.requests_ = std::move(parsed->second);
    for (const auto& entry : journal.requests_) journal.next_id_ = std::max(journal.next_id_, entry.id + 1);
    return journal;
  }
  auto aside = move_corrupt_state_file_aside(journal.path_, "request journal", parsed.error().message);
  if (!aside) return aside.error();
  journal.recovered_from_ = "the request journal was corrupt (" + parsed.error().message + "); kept as " +
                            *aside + ", requests it held are lost";
  return journal;
}

Result<std::uint64_t> RequestJournal::record(const BackupRequest& request) {
  if (requests_.size() >= kMaxRequests)
    return make_error(ErrorKind::environment, "the request journal is full",
                      "too many backups are waiting; see `agent status`");
  const std::uint64_t id = next_id_++;
  requests_.push_back(JournaledRequest{id, request, 0});
  if (auto s = save(); !s) {
    requests_.pop_back();
    return s.error();
  }
  return id;
}

Status RequestJournal::started(std::uint64_t id) {
  for (auto& entry : requests_)
    if (entry.id == id) ++entry.attempts;
  return save();
}

Status RequestJournal::finished(std::uint64_t id) {
  const auto before = requests_.size();
  std::erase_if(requests_, [id](const JournaledRequest& entry) { return entry.id == id; });
  if (requests_.size() == before) return {};
  return save();
}

Result<RequestJournal::Leftovers> RequestJournal::take_leftovers() {
  Leftovers leftovers;
  for (auto& entry : requests_)
    (entry.attempts >= kMaxAttempts ? leftovers.abandoned : leftovers.rerun).push_back(entry);
  if (leftovers.abandoned.empty()) return leftovers;
  std::erase_if(requests_, [](const JournaledRequest& entry) { return entry.attempts >= kMaxAttempts; });
  // Reported either way; a failed save only means the file still lists them until the next one.
  if (auto s = save(); !s) leftovers.save_problem = s.error().message;
  return leftovers;
}

Status RequestJournal::save() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& entry : requests_) {
    list.push_back({{"id", entry.id},
                    {"type", backup_type_name(entry.request.type)},
                    {"trigger", trigger_name(entry.request.trigger)},
                    {"reason", entry.request.reason},
                    {"requested_at_us", std::chrono::duration_cast<std::chrono::microseconds>(
                                            entry.request.requested_at.time_since_epoch())
                                            .count()},
                    {"attempts", entry.attempts},
                    {"repo", entry.request.repo}});
  }
  const nlohmann::json json = {{"version", kFormatVersion}, {"next_id", next_id_}, {"requests", list}};
  // Reasons carry annotation values, which may be any bytes: never throw on invalid UTF-8.
  return write_file_atomically(path_,
                               json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace agent
