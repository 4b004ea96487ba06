#include "harness.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "exec/process.hpp"

namespace agent::testing {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

std::string agent_binary() {
  return AGENT_BINARY;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
}

std::map<std::string, std::string> copy_blocks(const std::string& dump) {
  std::map<std::string, std::string> blocks;
  std::size_t at = 0;
  while ((at = dump.find("\nCOPY ", at)) != std::string::npos) {
    const auto line_end = dump.find('\n', at + 1);
    const auto end = dump.find("\n\\.\n", line_end);
    if (line_end == std::string::npos || end == std::string::npos) break;
    blocks[dump.substr(at + 1, line_end - at - 1)] = dump.substr(line_end + 1, end - line_end);
    at = end;
  }
  return blocks;
}

void write_like_kubelet(const std::string& dir, const std::string& file, const std::string& content) {
  static int generation = 0;
  const std::string name =
      "..2026_11_23_10_00_00." + std::to_string(getpid()) + "_" + std::to_string(++generation);
  fs::create_directories(dir + "/" + name);
  write_file(dir + "/" + name + "/" + file, content);
  std::error_code ec;
  const auto old_target = fs::read_symlink(dir + "/..data", ec);
  fs::remove(dir + "/..data_tmp", ec);
  fs::create_directory_symlink(name, dir + "/..data_tmp");
  fs::rename(dir + "/..data_tmp", dir + "/..data");
  if (!fs::exists(fs::symlink_status(dir + "/" + file)))
    fs::create_symlink("..data/" + file, dir + "/" + file);
  if (!old_target.empty()) fs::remove_all(dir + "/" + old_target.string(), ec);
}

void write_annotations_like_kubelet(const std::string& dir, const std::string& content) {
  write_like_kubelet(dir, "annotations", content);
}

bool eventually(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return condition();
}

ProcessResult run_or_fail(const std::vector<std::string>& argv) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = argv;
  spec.tag = fs::path(argv[0]).filename().string();
  auto result = runner->run(spec, CancelToken::never());
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().describe());
  return result.ok() ? *result : ProcessResult{};
}

TestCluster TestCluster::create(int bulk_mb, bool repo2) {
  return create_with(bulk_mb, repo2 ? std::vector<std::string>{"--repo2"} : std::vector<std::string>{});
}

TestCluster TestCluster::create_with(int bulk_mb, const std::vector<std::string>& options) {
  TestCluster cluster;
  if (geteuid() == 0) {
    ADD_FAILURE() << "integration tests run PostgreSQL, which refuses root: run them through "
                     "tests/run-all.sh, which drops to an unprivileged user";
    return cluster;
  }
  char pattern[] = "/tmp/agent-it-XXXXXX";
  const char* dir = mkdtemp(pattern);
  if (dir == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return cluster;
  }
  std::vector<std::string> argv{AGENT_SOURCE_DIR "/tests/support/make-cluster.sh", "--dir", dir};
  if (bulk_mb > 0) argv.insert(argv.end(), {"--bulk-mb", std::to_string(bulk_mb)});
  argv.insert(argv.end(), options.begin(), options.end());
  const auto result = run_or_fail(argv);
  if (!result.succeeded()) {
    ADD_FAILURE() << "make-cluster.sh " << result.describe() << ": " << result.error_excerpt(10);
    return cluster;
  }
  std::ifstream env(std::string(dir) + "/cluster.env");
  std::string line;
  while (std::getline(env, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) cluster.env_[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return cluster;
}

void TestCluster::destroy() {
  if (env_.count("DIR") == 0) return;
  run_or_fail({AGENT_SOURCE_DIR "/tests/support/stop-cluster.sh", "--dir", dir(), "--remove"});
  env_.clear();
}

std::string TestCluster::get(const std::string& key) const {
  const auto it = env_.find(key);
  return it == env_.end() ? std::string() : it->second;
}

void TestCluster::sql(const std::string& database, const std::string& statement) const {
  const auto result =
      run_or_fail({get("BINDIR") + "/psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", get("SOCKET_DIR"), "-p",
                   get("PORT"), "-U", "postgres", "-d", database, "-c", statement});
  EXPECT_TRUE(result.succeeded()) << statement << ": " << result.error_excerpt(5);
}

std::string TestCluster::query(const std::string& database, const std::string& statement) const {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {get("BINDIR") + "/psql",
               "-X",
               "-A",
               "-t",
               "-v",
               "ON_ERROR_STOP=1",
               "-h",
               get("SOCKET_DIR"),
               "-p",
               get("PORT"),
               "-U",
               "postgres",
               "-d",
               database,
               "-c",
               statement};
  spec.tag = "psql";
  spec.stdout_mode = StdoutMode::capture;
  auto result = runner->run(spec, CancelToken::never());
  EXPECT_TRUE(result.ok() && result->succeeded()) << statement;
  std::string text = result.ok() ? result->stdout_text : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::vector<BackupRecord> TestCluster::backups() const {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"pgbackrest", "--config=" + get("PGBACKREST_CONFIG"), "--stanza=db", "--output=json", "info"};
  spec.tag = "pgbackrest-info";
  spec.stdout_mode = StdoutMode::capture;
  auto result = runner->run(spec, CancelToken::never());
  if (!result || !result->succeeded()) {
    ADD_FAILURE() << "pgbackrest info failed";
    return {};
  }
  auto stanzas = parse_info_json(result->stdout_text);
  if (!stanzas || stanzas->empty()) {
    ADD_FAILURE() << "pgbackrest info output unreadable";
    return {};
  }
  return stanzas->front().backups;
}

std::set<std::string> TestCluster::archive_files() const {
  std::set<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir() + "/repo/archive", ec), end; !ec && it != end;
       it.increment(ec))
    files.insert(it->path().string());
  return files;
}

AgentRun run_agent(const std::vector<std::string>& args) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {agent_binary()};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.tag = "agent-under-test";
  spec.stdout_mode = StdoutMode::capture;
  spec.capture_limit = std::size_t{1} << 30;  // a dump to standard output
  AgentRun run;
  spec.on_line = [&run](std::string_view line) {
    run.stderr_text.append(line);
    run.stderr_text.push_back('\n');
  };
  spec.timeout = std::chrono::minutes(5);
  auto result = runner->run(spec, CancelToken::never());
  if (!result.ok()) {
    ADD_FAILURE() << result.error().describe();
    return run;
  }
  run.exit_code = result->exit_code;
  run.stdout_text = result->stdout_text;
  return run;
}

Result<std::unique_ptr<RunningProcess>> start_agent(const std::vector<std::string>& args,
                                                    std::function<void(std::string_view)> on_stderr_line,
                                                    const std::vector<std::string>& wrapper) {
  static auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = wrapper;
  spec.argv.push_back(agent_binary());
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.tag = "agent-under-test";
  spec.on_line = std::move(on_stderr_line);
  return runner->start(spec);
}

namespace {
bool write_proc_file(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}
}  // namespace

AgentRun run_agent_on_small_disk(const std::vector<std::string>& args, const std::string& small_dir,
                                 int size_kib) {
  AgentRun run;
  char out_template[] = "/tmp/agent-small-disk-out-XXXXXX";
  char err_template[] = "/tmp/agent-small-disk-err-XXXXXX";
  const int out_fd = mkstemp(out_template);
  const int err_fd = mkstemp(err_template);
  std::vector<std::string> argv_strings{agent_binary()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string uid_map = std::to_string(getuid()) + " " + std::to_string(getuid()) + " 1";
  const std::string gid_map = std::to_string(getgid()) + " " + std::to_string(getgid()) + " 1";
  const std::string options = "size=" + std::to_string(size_kib) + "k";

  const pid_t pid = fork();
  if (pid == 0) {
    // Map our own ids only, so the agent still runs as this unprivileged user.
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) _exit(90);
    if (!write_proc_file("/proc/self/setgroups", "deny") || !write_proc_file("/proc/self/uid_map", uid_map) ||
        !write_proc_file("/proc/self/gid_map", gid_map))
      _exit(91);
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(92);
    if (mount("tmpfs", small_dir.c_str(), "tmpfs", 0, options.c_str()) != 0) _exit(93);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(94);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.stdout_text = read_file(out_template);
  run.stderr_text = read_file(err_template);
  for (int fd : {out_fd, err_fd}) close(fd);
  unlink(out_template);
  unlink(err_template);
  EXPECT_LT(run.exit_code, 90) << "could not set up the small disk (step " << run.exit_code << ")";
  return run;
}

std::vector<pid_t> processes_matching(const std::string& needle) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == getpid()) continue;
    std::string cmdline = read_file(it->path().string() + "/cmdline");
    for (auto& c : cmdline)
      if (c == '\0') c = ' ';
    if (cmdline.find(needle) == std::string::npos) continue;
    const std::string stat = read_file(it->path().string() + "/stat");
    const auto close_paren = stat.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < stat.size() && stat[close_paren + 2] == 'Z')
      continue;
    found.push_back(pid);
  }
  return found;
}

DumpRows events_in_dump(const std::string& dump_text) {
  DumpRows rows;
  std::istringstream in(dump_text);
  std::string line;
  bool in_copy = false;
  while (std::getline(in, line)) {
    if (!in_copy) {
      in_copy = line.rfind("COPY public.events ", 0) == 0;
      continue;
    }
    if (line == "\\.") break;
    const auto tab1 = line.find('\t');
    const auto tab2 = line.find('\t', tab1 + 1);
    if (tab1 == std::string::npos || tab2 == std::string::npos) continue;
    rows.ids.insert(std::stoi(line.substr(0, tab1)));
    rows.phases.insert(line.substr(tab1 + 1, tab2 - tab1 - 1));
  }
  return rows;
}

void expect_promtool_accepts(const std::string& scrape, const std::string& file) {
  write_file(file, scrape);
  auto runner = make_posix_process_runner();
  ProcessSpec lint;
  lint.argv = {"promtool", "check", "metrics"};
  lint.stdin_path = file;
  lint.tag = "promtool";
  auto linted = runner->run(lint, CancelToken::never());
  ASSERT_TRUE(linted.ok());
  EXPECT_EQ(linted->exit_code, 0) << linted->error_excerpt(10);
}

void expect_rows_at_target(const std::string& dump_text) {
  const auto rows = events_in_dump(dump_text);
  std::set<int> expected;
  for (int id = 1; id <= 100; ++id) expected.insert(id);  // written before the target; 101..200 after
  EXPECT_EQ(rows.ids, expected);
  EXPECT_EQ(rows.phases, (std::set<std::string>{"before"}));
}

HttpReply http_get(int port, const std::string& target) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                  static_cast<unsigned short>(port)));
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "127.0.0.1");
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return {static_cast<int>(response.result_int()), response.body()};
  } catch (const std::exception&) {
    return {};
  }
}

int free_port() {
  return PortHolder().port();
}

RunningAgent::RunningAgent(const std::string& config_path, const std::vector<std::string>& wrapper) {
  auto started = start_agent(
      {"run", "--config", config_path},
      [this](std::string_view line) {
        std::lock_guard lock(mutex_);
        log_.append(line).push_back('\n');
      },
      wrapper);
  EXPECT_TRUE(started.ok());
  if (started) process_ = std::move(started.value());
  EXPECT_TRUE(eventually([this] { return log_contains("listening on"); }, std::chrono::seconds(20))) << log();
}

RunningAgent::~RunningAgent() {
  if (process_ && !process_->poll()) process_->stop(SIGTERM, std::chrono::seconds(30));
}

std::string RunningAgent::log() {
  std::lock_guard lock(mutex_);
  return log_;
}

bool RunningAgent::log_contains(const std::string& text) {
  return log().find(text) != std::string::npos;
}

PortHolder::PortHolder() {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(fd_, 1) != 0) {
    ADD_FAILURE() << "cannot open a listener";
    return;
  }
  socklen_t length = sizeof address;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
}

PortHolder::~PortHolder() {
  if (fd_ >= 0) close(fd_);
}

std::string built_pgbackrest_256() {
  auto runner = make_posix_process_runner();
  ProcessSpec build;
  build.argv = {"bash", AGENT_SOURCE_DIR "/tests/support/build-pgbackrest.sh"};
  build.stdout_mode = StdoutMode::capture;
  build.timeout = std::chrono::minutes(30);
  auto built = runner->run(build, CancelToken::never());
  if (!built.ok() || !built->succeeded()) return {};
  std::string path = built->stdout_text;
  while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
  return path;
}

}  // namespace agent::testing
