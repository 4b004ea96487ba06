#include "daemon/control_api.hpp"

#include <limits>
#include <optional>
#include <set>

namespace agent {

namespace {

// At most `limit` bytes of `text` for a message, never cutting a UTF-8 character in half.
std::string shortened(const std::string& text, std::size_t limit = 64) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + "...";
}

Error refusal(const std::string& message) {
  return make_error(ErrorKind::usage, message,
                    "send one JSON object per line: {\"command\": \"status\" | \"backup\" | \"dump\", ...} "
                    "(`agent status`, `agent backup` and `agent dump` do)");
}

// Reads the fields of one command, each at most once and of one type; remembers which keys
// were read so that anything else in the object is refused as unknown.
class FieldReader {
 public:
  explicit FieldReader(const nlohmann::json& object) : object_(object) {}

  Result<std::optional<std::string>> text(const char* key) {
    seen_.insert(key);
    const auto it = object_.find(key);
    if (it == object_.end()) return std::optional<std::string>();
    if (!it->is_string()) return refusal(std::string("field \"") + key + "\" must be a string");
    const auto& value = it->get_ref<const std::string&>();
    if (value.size() > kControlMaxFieldBytes)
      return refusal(std::string("field \"") + key + "\" is longer than " +
                     std::to_string(kControlMaxFieldBytes) + " bytes");
    if (value.find('\0') != std::string::npos)
      return refusal(std::string("field \"") + key + "\" contains a NUL character");
    return std::optional<std::string>(value);
  }

  Result<std::optional<bool>> flag(const char* key) {
    seen_.insert(key);
    const auto it = object_.find(key);
    if (it == object_.end()) return std::optional<bool>();
    if (!it->is_boolean()) return refusal(std::string("field \"") + key + "\" must be true or false");
    return std::optional<bool>(it->get<bool>());
  }

  // An integer in [low, high]; JSON numbers with a fraction or out of range are refused, never
  // narrowed (2^32+5000 is not 5000).
  Result<std::optional<std::int64_t>> integer(const char* key, std::int64_t low, std::int64_t high) {
    seen_.insert(key);
    const auto it = object_.find(key);
    if (it == object_.end()) return std::optional<std::int64_t>();
    const std::string range = "[" + std::to_string(low) + ", " + std::to_string(high) + "]";
    if (it->is_number_unsigned()) {
      const auto value = it->get<std::uint64_t>();
      if (value > static_cast<std::uint64_t>(high) || static_cast<std::int64_t>(value) < low)
        return refusal(std::string("field \"") + key + "\" must be an integer in " + range);
      return std::optional<std::int64_t>(static_cast<std::int64_t>(value));
    }
    if (it->is_number_integer()) {
      const auto value = it->get<std::int64_t>();
      if (value < low || value > high)
        return refusal(std::string("field \"") + key + "\" must be an integer in " + range);
      return std::optional<std::int64_t>(value);
    }
    return refusal(std::string("field \"") + key + "\" must be an integer in " + range);
  }

  Status no_unknown_keys(const std::string& command) const {
    for (const auto& [key, value] : object_.items()) {
      if (!seen_.contains(key))
        return refusal("unknown field \"" + shortened(key) + "\" in a " + command + " request");
    }
    return {};
  }

 private:
  const nlohmann::json& object_;
  std::set<std::string, std::less<>> seen_;
};

Result<ControlRequest> parse_backup(FieldReader& fields) {
  BackupCommand command;
  auto type = fields.text("type");
  if (!type) return type.error();
  if (*type) {
    const auto parsed = parse_backup_type(**type);
    if (!parsed) return refusal("field \"type\" must be full, diff or incr");
    command.type = *parsed;
  }
  auto wait = fields.flag("wait");
  if (!wait) return wait.error();
  command.wait = wait->value_or(false);
  return ControlRequest(command);
}

Result<ControlRequest> parse_dump(FieldReader& fields) {
  DumpCommand command;
  auto& a = command.arguments;
  auto target = fields.text("target");
  if (!target) return target.error();
  if (!*target) return refusal("a dump request needs \"target\"");
  a.target = **target;
  for (auto [key, field] : {std::pair{"database", &a.database}, std::pair{"output", &a.output},
                            std::pair{"scratch", &a.scratch}, std::pair{"set", &a.backup_set}}) {
    auto value = fields.text(key);
    if (!value) return value.error();
    *field = *value;
  }
  auto port = fields.integer("port", 1, 65535);
  if (!port) return port.error();
  if (*port) a.port = static_cast<int>(**port);
  auto overwrite = fields.flag("overwrite");
  if (!overwrite) return overwrite.error();
  a.overwrite = overwrite->value_or(false);
  return ControlRequest(command);
}

}  // namespace

Result<ControlRequest> parse_control_request(std::string_view line) {
  if (line.size() > kControlMaxRequestBytes)
    return refusal("request longer than " + std::to_string(kControlMaxRequestBytes) + " bytes");
  const auto request = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return refusal("malformed request: not JSON");
  if (!request.is_object()) return refusal("malformed request: not a JSON object");
  FieldReader fields(request);
  auto command = fields.text("command");
  if (!command) return command.error();
  if (!*command) return refusal("malformed request: no \"command\"");
  Result<ControlRequest> parsed = refusal("unknown command \"" + shortened(command->value()) + "\"");
  if (**command == "status")
    parsed = ControlRequest(StatusCommand{});
  else if (**command == "backup")
    parsed = parse_backup(fields);
  else if (**command == "dump")
    parsed = parse_dump(fields);
  else
    return parsed;
  if (!parsed) return parsed;
  if (auto s = fields.no_unknown_keys(**command); !s) return s.error();
  return parsed;
}

nlohmann::json control_request_json(const ControlRequest& request) {
  if (std::holds_alternative<StatusCommand>(request)) return {{"command", "status"}};
  if (const auto* backup = std::get_if<BackupCommand>(&request))
    return {{"command", "backup"}, {"type", backup_type_name(backup->type)}, {"wait", backup->wait}};
  const auto& a = std::get<DumpCommand>(request).arguments;
  nlohmann::json json = {{"command", "dump"}, {"target", a.target}, {"overwrite", a.overwrite}};
  if (a.database) json["database"] = *a.database;
  if (a.output) json["output"] = *a.output;
  if (a.scratch) json["scratch"] = *a.scratch;
  if (a.port) json["port"] = *a.port;
  if (a.backup_set) json["set"] = *a.backup_set;
  return json;
}

}  // namespace agent
