#pragma once
// The pod's annotations as the kubelet writes them into a Downward API volume: one line per
// annotation, `key="value"`, the value quoted the way Go's strconv.Quote does it.
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace agent {

// Undoes Go's strconv.Quote. `quoted` includes the surrounding double quotes. Accepts every
// escape Go accepts in a double-quoted string: \a \b \f \n \r \t \v \\ \" , \xNN and octal \NNN
// (raw bytes), \uNNNN and \UNNNNNNNN (a code point, written as UTF-8). Anything else, a raw
// newline or a missing closing quote is an ErrorKind::usage error.
Result<std::string> unquote_go_string(std::string_view quoted);

struct AnnotationFile {
  // At most this many problems are kept; `skipped` counts them all.
  static constexpr std::size_t kMaxProblems = 20;
  std::map<std::string, std::string> values;
  std::vector<std::string> problems;  // "line N: ...", one per skipped line (the first kMaxProblems)
  std::size_t skipped = 0;            // lines skipped in all
};

// Parses the whole file. A malformed line is reported in `problems` and skipped, so one odd
// annotation written by somebody else never hides the one we watch. Any bytes are safe: binary
// garbage, NUL bytes and invalid UTF-8 only make lines malformed (a problem never quotes the
// line's bytes, only a key made of key characters), or pass through a value unchanged.
AnnotationFile parse_annotations(std::string_view text);

}  // namespace agent
