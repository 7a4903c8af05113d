// Runs VMM commands repeatedly and measures, per run, from just before fork() to the guest's
// first serial byte on the child's stdout and to the child's exit, plus its peak RSS
// (wait4 rusage). The commands take turns (one run of each, then the next round), so load from
// elsewhere on the machine hits all of them alike. Prints one machine-readable line per label.
//   vmm-bench-harness RUNS EXPECT LABEL COMMAND ARGS... [:: LABEL COMMAND ARGS...]...
// EXPECT is text the guest's output must contain, or the run counts as failed.
#include <fcntl.h>
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
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
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

struct Program {
  std::string label;
  std::vector<char*> argv;  // null-terminated
  std::vector<double> first, exit;
  std::vector<long> rss;
};

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: %s RUNS EXPECT LABEL COMMAND ARGS... [:: LABEL COMMAND ARGS...]...\n",
                 argv[0]);
    return 2;
  }
  const int runs = std::atoi(argv[1]);
  const std::string expect = argv[2];
  std::vector<Program> programs;
  for (int i = 3; i < argc;) {
    Program p;
    p.label = argv[i++];
    while (i < argc && std::string(argv[i]) != "::") p.argv.push_back(argv[i++]);
    ++i;
    if (p.argv.empty()) {
      std::fprintf(stderr, "harness: %s has no command\n", p.label.c_str());
      return 2;
    }
    p.argv.push_back(nullptr);
    programs.push_back(std::move(p));
  }
  for (auto& p : programs) {
    Sample warmup{};
    if (!run_once(p.argv.data(), expect, warmup)) return 1;
  }
  for (int i = 0; i < runs; ++i) {
    for (auto& p : programs) {
      Sample s{};
      if (!run_once(p.argv.data(), expect, s)) return 1;
      p.first.push_back(s.first_byte_ms);
      p.exit.push_back(s.exit_ms);
      p.rss.push_back(s.max_rss_kib);
    }
  }
  for (const auto& p : programs)
    std::printf(
        "%s runs=%d first_byte_ms=%.2f first_byte_min=%.2f first_byte_max=%.2f exit_ms=%.2f "
        "exit_min=%.2f exit_max=%.2f max_rss_kib=%ld\n",
        p.label.c_str(), runs, median(p.first), *std::min_element(p.first.begin(), p.first.end()),
        *std::max_element(p.first.begin(), p.first.end()), median(p.exit),
        *std::min_element(p.exit.begin(), p.exit.end()),
        *std::max_element(p.exit.begin(), p.exit.end()), median(p.rss));
  return 0;
}
