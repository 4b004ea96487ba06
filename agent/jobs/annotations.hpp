#pragma once
// The pod's annotations as the kubelet writes them into a Downward API volume: one line per
// annotation, `key="value"`, the value quoted the way Go's strconv.Quote does it.
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
  std::map<std::string, std::string> values;
  std::vector<std::string> problems;  // "line N: ...", one per skipped line
};

// Parses the whole file. A malformed line is reported in `problems` and skipped, so one odd
// annotation written by somebody else never hides the one we watch.
AnnotationFile parse_annotations(std::string_view text);

}  // namespace agent
