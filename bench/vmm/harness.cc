// Runs a VMM command repeatedly and measures, per run, from just before fork() to the guest's
// first serial byte on the child's stdout and to the child's exit, plus its peak RSS
// (wait4 rusage). Prints one machine-readable line: label, runs, medians/min/max.
//   vmm-bench-harness LABEL RUNS EXPECT -- COMMAND ARGS...
// EXPECT is text the guest's output must contain, or the run counts as failed.
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Sample {
  double first_byte_ms;
  double exit_ms;
  long max_rss_kib;
};

bool run_once(char** argv, const std::string& expect, Sample& out) {
  int pipefd[2];
  if (pipe(pipefd) < 0) return false;
  const double start = now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(pipefd[1]);
  std::string output;
  double first = -1;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) {
    if (first < 0) first = now_ms();
    output.append(buf, static_cast<std::size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  out.exit_ms = now_ms() - start;
  out.first_byte_ms = first < 0 ? -1 : first - start;
  out.max_rss_kib = usage.ru_maxrss;
  if (output.find(expect) == std::string::npos) {
    std::fprintf(stderr, "harness: output lacks \"%s\":\n%s\n", expect.c_str(), output.c_str());
    return false;
  }
  return true;
}

template <typename T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6 || std::string(argv[4]) != "--") {
    std::fprintf(stderr, "usage: %s LABEL RUNS EXPECT -- COMMAND ARGS...\n", argv[0]);
    return 2;
  }
  const std::string label = argv[1];
  const int runs = std::atoi(argv[2]);
  const std::string expect = argv[3];
  char** command = argv + 5;
  Sample warmup{};
  if (!run_once(command, expect, warmup)) return 1;
  std::vector<double> first, exit;
  std::vector<long> rss;
  for (int i = 0; i < runs; ++i) {
    Sample s{};
    if (!run_once(command, expect, s)) return 1;
    first.push_back(s.first_byte_ms);
    exit.push_back(s.exit_ms);
    rss.push_back(s.max_rss_kib);
  }
  std::printf(
      "%s runs=%d first_byte_ms=%.2f first_byte_min=%.2f first_byte_max=%.2f exit_ms=%.2f "
      "exit_min=%.2f exit_max=%.2f max_rss_kib=%ld\n",
      label.c_str(), runs, median(first), *std::min_element(first.begin(), first.end()),
      *std::max_element(first.begin(), first.end()), median(exit),
      *std::min_element(exit.begin(), exit.end()), *std::max_element(exit.begin(), exit.end()),
      median(rss));
  return 0;
}
