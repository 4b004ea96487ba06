#include "daemon/control_api.hpp"

#include <optional>

#include "daemon/json_fields.hpp"

namespace agent {

namespace {

Error refusal(const std::string& message) {
  return make_error(ErrorKind::usage, message,
                    "send one JSON object per line: {\"command\": \"status\" | \"backup\" | \"dump\" | "
                    "\"dump-stop\" | \"drill\", ...} "
                    "(`agent status`, `agent backup`, `agent dump` and `agent drill` do)");
}

JsonFields request_fields(const nlohmann::json& object) {
  return JsonFields(object, kControlMaxFieldBytes,
                    [](const std::string& message) { return refusal(message); });
}

// An integer field in [low, high] into `field`, which stays unset when the field is absent.
Status read_small_integer(JsonFields& fields, const char* key, int low, int high, std::optional<int>& field) {
  auto value = fields.integer(key, low, high);
  if (!value) return value.error();
  if (*value) field = static_cast<int>(**value);
  return {};
}

Result<ControlRequest> parse_backup(JsonFields& fields) {
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
  std::optional<int> repo;
  if (auto s = read_small_integer(fields, "repo", 1, 256, repo); !s) return s.error();
  command.repo = repo.value_or(0);
  return ControlRequest(command);
}

Result<ControlRequest> parse_dump(JsonFields& fields) {
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
  if (auto s = read_small_integer(fields, "port", 1, 65535, a.port); !s) return s.error();
  if (auto s = read_small_integer(fields, "repo", 1, 256, a.repo); !s) return s.error();
  auto overwrite = fields.flag("overwrite");
  if (!overwrite) return overwrite.error();
  a.overwrite = overwrite->value_or(false);
  for (auto [key, field] : {std::pair{"format", &a.format}, std::pair{"compress", &a.compress}}) {
    auto value = fields.text(key);
    if (!value) return value.error();
    *field = *value;
  }
  if (auto s = read_small_integer(fields, "jobs", 1, 32, a.jobs); !s) return s.error();
  for (auto [key, field] : {std::pair{"data_only", &a.data_only}, std::pair{"schema_only", &a.schema_only},
                            std::pair{"globals", &a.globals}}) {
    auto value = fields.flag(key);
    if (!value) return value.error();
    *field = value->value_or(false);
  }
  auto keep_running = fields.flag("keep_running");
  if (!keep_running) return keep_running.error();
  a.keep_running = keep_running->value_or(false);
  auto keep_for = fields.text("keep_for");
  if (!keep_for) return keep_for.error();
  a.keep_for = *keep_for;
  for (auto [key, field] :
       {std::pair{"tables", &a.tables}, std::pair{"exclude_tables", &a.exclude_tables},
        std::pair{"schemas", &a.schemas}, std::pair{"exclude_schemas", &a.exclude_schemas}}) {
    auto value = fields.texts(key);
    if (!value) return value.error();
    *field = *value;
  }
  return ControlRequest(command);
}

Result<ControlRequest> parse_drill(JsonFields& fields) {
  DrillCommand command;
  auto& a = command.arguments;
  for (auto [key, field] :
       {std::pair{"target", &a.target}, std::pair{"set", &a.backup_set}, std::pair{"scratch", &a.scratch}}) {
    auto value = fields.text(key);
    if (!value) return value.error();
    *field = *value;
  }
  auto latest = fields.flag("latest");
  if (!latest) return latest.error();
  a.latest = latest->value_or(false);
  if (auto s = read_small_integer(fields, "port", 1, 65535, a.port); !s) return s.error();
  if (auto s = read_small_integer(fields, "repo", 1, 256, a.repo); !s) return s.error();
  for (auto [key, field] : {std::pair{"databases", &a.databases}, std::pair{"assertions", &a.assertions}}) {
    auto value = fields.texts(key);
    if (!value) return value.error();
    *field = *value;
  }
  return ControlRequest(command);
}

}  // namespace

Result<ControlRequest> parse_control_request(std::string_view line) {
  if (line.size() > kControlMaxRequestBytes)
    return refusal("request longer than " + std::to_string(kControlMaxRequestBytes) + " bytes");
  const auto request = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return refusal("malformed request: not JSON");
  if (!request.is_object()) return refusal("malformed request: not a JSON object");
  JsonFields fields = request_fields(request);
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
  else if (**command == "dump-stop")
    parsed = ControlRequest(DumpStopCommand{});
  else if (**command == "drill")
    parsed = parse_drill(fields);
  else
    return parsed;
  if (!parsed) return parsed;
  if (auto s = fields.no_unknown_keys("a " + **command + " request"); !s) return s.error();
  return parsed;
}

nlohmann::json control_request_json(const ControlRequest& request) {
  if (std::holds_alternative<StatusCommand>(request)) return {{"command", "status"}};
  if (const auto* backup = std::get_if<BackupCommand>(&request)) {
    nlohmann::json json = {
        {"command", "backup"}, {"type", backup_type_name(backup->type)}, {"wait", backup->wait}};
    if (backup->repo > 0) json["repo"] = backup->repo;
    return json;
  }
  if (std::holds_alternative<DumpStopCommand>(request)) return {{"command", "dump-stop"}};
  if (const auto* drill = std::get_if<DrillCommand>(&request)) {
    const auto& a = drill->arguments;
    nlohmann::json json = {{"command", "drill"}, {"latest", a.latest}};
    if (a.target) json["target"] = *a.target;
    if (a.backup_set) json["set"] = *a.backup_set;
    if (a.scratch) json["scratch"] = *a.scratch;
    if (a.port) json["port"] = *a.port;
    if (a.repo) json["repo"] = *a.repo;
    if (!a.databases.empty()) json["databases"] = a.databases;
    if (!a.assertions.empty()) json["assertions"] = a.assertions;
    return json;
  }
  const auto& a = std::get<DumpCommand>(request).arguments;
  nlohmann::json json = {{"command", "dump"}, {"target", a.target}, {"overwrite", a.overwrite}};
  if (a.database) json["database"] = *a.database;
  if (a.output) json["output"] = *a.output;
  if (a.scratch) json["scratch"] = *a.scratch;
  if (a.port) json["port"] = *a.port;
  if (a.repo) json["repo"] = *a.repo;
  if (a.backup_set) json["set"] = *a.backup_set;
  if (a.format) json["format"] = *a.format;
  if (a.compress) json["compress"] = *a.compress;
  if (a.jobs) json["jobs"] = *a.jobs;
  if (a.data_only) json["data_only"] = true;
  if (a.schema_only) json["schema_only"] = true;
  if (a.globals) json["globals"] = true;
  if (a.keep_running) json["keep_running"] = true;
  if (a.keep_for) json["keep_for"] = *a.keep_for;
  for (auto [key, list] :
       {std::pair{"tables", &a.tables}, std::pair{"exclude_tables", &a.exclude_tables},
        std::pair{"schemas", &a.schemas}, std::pair{"exclude_schemas", &a.exclude_schemas}})
    if (!list->empty()) json[key] = *list;
  return json;
}

}  // namespace agent
