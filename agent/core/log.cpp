#include "core/log.hpp"

#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

namespace agent::log {

class JobContext {
 public:
  std::mutex mutex;
  std::string job_type;
  std::string job_id;
  std::string step;
};

namespace {

thread_local std::shared_ptr<JobContext> t_context;
// The fields of the record being logged on this thread (set by write(), read by the formatter,
// which spdlog runs on the logging thread: the sink is synchronous).
thread_local const Fields* t_fields = nullptr;

std::string_view view(spdlog::string_view_t text) {
  return {text.data(), text.size()};
}

// The record's job and step: the fields' own, else the thread's context.
struct Where {
  std::string job_type;
  std::string job_id;
  std::string step;
};

Where where(const Fields* fields) {
  Where w;
  if (t_context) {
    std::lock_guard lock(t_context->mutex);
    w.job_type = t_context->job_type;
    w.job_id = t_context->job_id;
    w.step = t_context->step;
  }
  if (fields != nullptr && !fields->job_type.empty()) w.job_type = fields->job_type;
  if (fields != nullptr && !fields->job_id.empty()) w.job_id = fields->job_id;
  if (fields != nullptr && !fields->step.empty()) w.step = fields->step;
  return w;
}

std::string format_record(Format format, const Record& record, std::size_t* level_begin,
                          std::size_t* level_end) {
  return format == Format::json ? format_json(record) : format_text(record, level_begin, level_end);
}

class RecordFormatter final : public spdlog::formatter {
 public:
  explicit RecordFormatter(Format format) : format_(format), pid_(static_cast<int>(::getpid())) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const Where w = where(t_fields);
    const Record record{
        msg.time, msg.level, view(msg.logger_name), view(msg.payload), w.job_type, w.job_id, w.step,
        t_fields, pid_};
    std::size_t begin = 0, end = 0;
    const std::string text = format_record(format_, record, &begin, &end);
    // The colour sink paints this range of the first line (the level) on a terminal.
    msg.color_range_start = begin;
    msg.color_range_end = end;
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<RecordFormatter>(format_);
  }

 private:
  Format format_;
  int pid_;
};

std::mutex g_mutex;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;
std::atomic<Format> g_format{Format::text};

spdlog::sink_ptr sink() {
  if (!g_sink) {
    g_sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
    g_sink->set_formatter(std::make_unique<RecordFormatter>(Format::text));
  }
  return g_sink;
}

void append_escaped_line(std::string& out, std::string_view line) {
  for (const char c : line) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
}

// Each line of `text` after `prefix`, a newline between lines.
void append_lines(std::string& out, const std::string& prefix, std::string_view lead, std::string_view text) {
  std::size_t start = 0;
  for (;;) {
    const std::size_t newline = text.find('\n', start);
    if (!out.empty()) out.push_back('\n');
    out += prefix;
    if (start == 0) out += lead;
    append_escaped_line(out,
                        text.substr(start, newline == std::string_view::npos ? newline : newline - start));
    if (newline == std::string_view::npos) return;
    start = newline + 1;
  }
}

}  // namespace

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

std::string format_time(std::chrono::system_clock::time_point time, bool iso) {
  using namespace std::chrono;
  const auto since_epoch = time.time_since_epoch();
  const auto secs = floor<seconds>(since_epoch);
  const auto micros = duration_cast<microseconds>(since_epoch - secs).count();
  const std::time_t t = secs.count();
  std::tm tm{};
  localtime_r(&t, &tm);
  const char sign = tm.tm_gmtoff < 0 ? '-' : '+';
  const int offset = static_cast<int>(std::labs(tm.tm_gmtoff) / 60 % (24 * 60));  // minutes
  char stamp[128];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02d%c%02d:%02d:%02d.%0*d%c%02d:%02d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, iso ? 'T' : ' ', tm.tm_hour, tm.tm_min, tm.tm_sec, iso ? 6 : 3,
                static_cast<int>(iso ? micros : micros / 1000), sign, offset / 60, offset % 60);
  return stamp;
}

std::string format_json(const Record& record) {
  nlohmann::ordered_json line;
  // ECS logging puts these three first, for a person reading the raw line.
  line["@timestamp"] = format_time(record.time, true);
  line["log.level"] = std::string(level_name(record.level));
  line["message"] = std::string(record.message);
  line["log.logger"] = std::string(record.logger);
  if (!record.job_type.empty()) line["job.type"] = std::string(record.job_type);
  if (!record.job_id.empty()) line["job.id"] = std::string(record.job_id);
  if (!record.step.empty()) line["job.step"] = std::string(record.step);
  if (const Fields* f = record.fields) {
    if (f->duration) line["event.duration"] = f->duration->count();
    if (!f->error_type.empty()) line["error.type"] = f->error_type;
    if (!f->error_message.empty()) line["error.message"] = f->error_message;
    if (!f->hint.empty()) line["error.hint"] = f->hint;
    if (f->exit_code) line["process.exit_code"] = *f->exit_code;
  }
  line["process.pid"] = record.pid;
  line["ecs.version"] = std::string(kEcsVersion);
  // replace: bytes that are not UTF-8 (a child's output in another encoding) become U+FFFD
  // instead of an exception; control characters are escaped by the serializer.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string format_text(const Record& record, std::size_t* level_begin, std::size_t* level_end) {
  std::string level(level_name(record.level));
  if (level.size() < 5) level.resize(5, ' ');
  const std::string time = format_time(record.time, false);
  std::string prefix = time + ' ' + level + " [";
  append_escaped_line(prefix, record.logger);
  prefix += "] ";
  if (level_begin != nullptr) *level_begin = time.size() + 1;
  if (level_end != nullptr) *level_end = time.size() + 1 + level_name(record.level).size();
  std::string out;
  append_lines(out, prefix, {}, record.message);
  if (const Fields* f = record.fields) {
    if (!f->hint.empty()) append_lines(out, prefix, "HINT: ", f->hint);
    if (f->exit_code) {
      std::string said = "exit code " + std::to_string(*f->exit_code);
      if (!f->error_type.empty()) said += " (" + f->error_type + ")";
      append_lines(out, prefix, {}, said);
    }
  }
  return out;
}

Format choose_format(Format configured, bool format_flag_given, bool interactive, bool stderr_is_terminal) {
  if (format_flag_given || !interactive || !stderr_is_terminal) return configured;
  return Format::text;
}

void setup(Format format, spdlog::level::level_enum level) {
  std::lock_guard lock(g_mutex);
  auto s = sink();
  s->set_formatter(std::make_unique<RecordFormatter>(format));
  g_format = format;
  g_level = level;
  spdlog::apply_all([level](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level); });
}

Format current_format() {
  return g_format;
}

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = std::make_shared<spdlog::logger>(component, sink());
  logger->set_level(g_level);
  logger->flush_on(spdlog::level::trace);
  spdlog::register_logger(logger);
  return logger;
}

void write(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view message,
           const Fields& fields) {
  if (!logger.should_log(level)) return;
  struct Restore {
    const Fields* previous = t_fields;
    ~Restore() { t_fields = previous; }
  } restore;
  t_fields = &fields;
  logger.log(level, spdlog::string_view_t(message.data(), message.size()));
}

void error(spdlog::logger& logger, const Error& error, std::string_view context,
           spdlog::level::level_enum level, Fields fields) {
  if (!logger.should_log(level)) return;
  if (fields.error_type.empty()) fields.error_type = error_kind_name(error.kind);
  fields.error_message = error.message;
  fields.hint = error.hint;
  const std::string message = context.empty() ? error.message : std::string(context) + ": " + error.message;
  write(logger, level, message, fields);
}

void write_unlocked(std::string_view component, spdlog::level::level_enum level, std::string_view message,
                    const Fields& fields) {
  const Where w = where(&fields);
  const Record record{
      std::chrono::system_clock::now(), level, component, message, w.job_type, w.job_id, w.step, &fields,
      static_cast<int>(::getpid())};
  std::string text = format_record(g_format, record, nullptr, nullptr);
  text.push_back('\n');
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(STDERR_FILENO, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    written += static_cast<std::size_t>(n);
  }
}

std::shared_ptr<JobContext> current_context() {
  return t_context;
}

ScopedContext::ScopedContext(std::shared_ptr<JobContext> context) : previous_(std::move(t_context)) {
  t_context = std::move(context);
}

ScopedContext::~ScopedContext() {
  t_context = std::move(previous_);
}

ScopedJob::ScopedJob(std::string type, std::string id)
    : scope_([&type, &id] {
        auto context = std::make_shared<JobContext>();
        context->job_type = std::move(type);
        context->job_id = std::move(id);
        return context;
      }()) {}

ScopedStep::ScopedStep(std::string step) : context_(current_context()) {
  if (!context_) {
    context_ = std::make_shared<JobContext>();
    installed_.emplace(context_);
  }
  std::lock_guard lock(context_->mutex);
  previous_ = std::exchange(context_->step, std::move(step));
}

ScopedStep::~ScopedStep() {
  std::lock_guard lock(context_->mutex);
  context_->step = std::move(previous_);
}

}  // namespace agent::log
