#include "core/error.hpp"

namespace agent {

Error Error::with_context(const std::string& context) const {
  Error copy = *this;
  copy.message = context + ": " + message;
  return copy;
}

std::string Error::describe() const {
  if (hint.empty()) return message;
  return message + "\nHINT: " + hint;
}

Error make_error(ErrorKind kind, std::string message, std::string hint) {
  return Error{kind, std::move(message), std::move(hint)};
}

int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::internal:
      return 1;
    case ErrorKind::usage:
      return 2;
    case ErrorKind::target_window:
      return 3;
    case ErrorKind::verification:
      return 4;
    case ErrorKind::environment:
      return 5;
    case ErrorKind::external_tool:
      return 6;
    case ErrorKind::interrupted:
      return 7;
  }
  return 1;
}

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::internal:
      return "internal";
    case ErrorKind::usage:
      return "usage";
    case ErrorKind::target_window:
      return "target-window";
    case ErrorKind::verification:
      return "verification";
    case ErrorKind::environment:
      return "environment";
    case ErrorKind::external_tool:
      return "external-tool";
    case ErrorKind::interrupted:
      return "interrupted";
  }
  return "internal";
}

}  // namespace agent
