#include "daemon/json_fields.hpp"

namespace agent {

std::string shortened(const std::string& text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + "...";
}

JsonFields::JsonFields(const nlohmann::json& object, std::size_t max_text_bytes,
                       std::function<Error(const std::string& message)> refuse)
    : object_(object), max_text_bytes_(max_text_bytes), refuse_(std::move(refuse)) {}

Result<std::optional<std::string>> JsonFields::text(const char* key) {
  seen_.insert(key);
  const auto it = object_.find(key);
  if (it == object_.end()) return std::optional<std::string>();
  if (!it->is_string()) return refuse_(std::string("field \"") + key + "\" must be a string");
  const auto& value = it->get_ref<const std::string&>();
  if (value.size() > max_text_bytes_)
    return refuse_(std::string("field \"") + key + "\" is longer than " + std::to_string(max_text_bytes_) +
                   " bytes");
  if (value.find('\0') != std::string::npos)
    return refuse_(std::string("field \"") + key + "\" contains a NUL character");
  return std::optional<std::string>(value);
}

Result<std::vector<std::string>> JsonFields::texts(const char* key) {
  seen_.insert(key);
  std::vector<std::string> values;
  const auto it = object_.find(key);
  if (it == object_.end()) return values;
  if (!it->is_array() || it->size() > 64)
    return refuse_(std::string("field \"") + key + "\" must be an array of at most 64 strings");
  for (const auto& item : *it) {
    if (!item.is_string()) return refuse_(std::string("field \"") + key + "\" must hold strings only");
    const auto& value = item.get_ref<const std::string&>();
    if (value.size() > max_text_bytes_ || value.find('\0') != std::string::npos)
      return refuse_(std::string("field \"") + key + "\" holds a string too long or with a NUL character");
    values.push_back(value);
  }
  return values;
}

Result<std::optional<bool>> JsonFields::flag(const char* key) {
  seen_.insert(key);
  const auto it = object_.find(key);
  if (it == object_.end()) return std::optional<bool>();
  if (!it->is_boolean()) return refuse_(std::string("field \"") + key + "\" must be true or false");
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<std::int64_t>> JsonFields::integer(const char* key, std::int64_t low,
                                                        std::int64_t high) {
  seen_.insert(key);
  const auto it = object_.find(key);
  if (it == object_.end()) return std::optional<std::int64_t>();
  const std::string range = "[" + std::to_string(low) + ", " + std::to_string(high) + "]";
  if (it->is_number_unsigned()) {
    const auto value = it->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(high) || static_cast<std::int64_t>(value) < low)
      return refuse_(std::string("field \"") + key + "\" must be an integer in " + range);
    return std::optional<std::int64_t>(static_cast<std::int64_t>(value));
  }
  if (it->is_number_integer()) {
    const auto value = it->get<std::int64_t>();
    if (value < low || value > high)
      return refuse_(std::string("field \"") + key + "\" must be an integer in " + range);
    return std::optional<std::int64_t>(value);
  }
  return refuse_(std::string("field \"") + key + "\" must be an integer in " + range);
}

Result<std::optional<double>> JsonFields::number(const char* key) {
  seen_.insert(key);
  const auto it = object_.find(key);
  if (it == object_.end()) return std::optional<double>();
  if (!it->is_number()) return refuse_(std::string("field \"") + key + "\" must be a number");
  return std::optional<double>(it->get<double>());
}

Result<std::optional<nlohmann::json>> JsonFields::object(const char* key) {
  seen_.insert(key);
  const auto it = object_.find(key);
  if (it == object_.end()) return std::optional<nlohmann::json>();
  if (!it->is_object()) return refuse_(std::string("field \"") + key + "\" must be an object");
  return std::optional<nlohmann::json>(*it);
}

Status JsonFields::no_unknown_keys(const std::string& what) const {
  for (const auto& [key, value] : object_.items())
    if (!seen_.contains(key)) return refuse_("unknown field \"" + shortened(key) + "\" in " + what);
  return {};
}

Error JsonFields::missing(const char* key) const {
  return refuse_(std::string("no field \"") + key + "\"");
}

Result<std::string> JsonFields::required_text(const char* key) {
  auto value = text(key);
  if (!value) return value.error();
  if (!*value) return missing(key);
  return **value;
}

Result<std::int64_t> JsonFields::required_integer(const char* key, std::int64_t low, std::int64_t high) {
  auto value = integer(key, low, high);
  if (!value) return value.error();
  if (!*value) return missing(key);
  return **value;
}

Result<double> JsonFields::required_number(const char* key) {
  auto value = number(key);
  if (!value) return value.error();
  if (!*value) return missing(key);
  return **value;
}

}  // namespace agent
