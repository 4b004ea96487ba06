#include "exec/process_group.hpp"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace agent {
namespace {

struct StatFields {
  char state = '?';
  pid_t group = 0;
};

// /proc/PID/stat is "PID (COMM) STATE PPID PGRP ..."; COMM may hold spaces and parentheses,
// so the fields are read after its last ')'.
bool read_stat(const std::string& pid_text, StatFields& fields) {
  std::ifstream file("/proc/" + pid_text + "/stat");
  std::string line;
  if (!std::getline(file, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  long parent = 0;
  long group = 0;
  if (!(rest >> fields.state >> parent >> group)) return false;
  fields.group = static_cast<pid_t>(group);
  return true;
}

bool all_digits(const char* text) {
  if (*text == '\0') return false;
  for (; *text != '\0'; ++text)
    if (*text < '0' || *text > '9') return false;
  return true;
}

}  // namespace

std::vector<pid_t> running_group_members(pid_t group, pid_t leader) {
  std::vector<pid_t> members;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return members;
  while (const dirent* entry = readdir(proc)) {
    if (!all_digits(entry->d_name)) continue;
    const auto pid = static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10));
    if (pid == leader) continue;
    StatFields fields;
    if (!read_stat(entry->d_name, fields)) continue;  // gone meanwhile
    if (fields.group == group && fields.state != 'Z' && fields.state != 'X') members.push_back(pid);
  }
  closedir(proc);
  return members;
}

std::vector<pid_t> wait_for_group_to_stop(pid_t group, pid_t leader, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto members = running_group_members(group, leader);
    if (members.empty() || std::chrono::steady_clock::now() >= deadline) return members;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace agent
