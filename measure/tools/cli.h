// The cloister-measure command line, as a function so tests can run it in-process: options
// become fw::LaunchInputs, fw::plan_launch() checks them and builds the plan (the same call
// cloister-vmm makes), and `measure` folds the plan.
//
//   cloister-measure snp [--mode snp|snp:ovmf-hash|snp:svsm] --ovmf PATH ... (sev-snp-measure's
//                        options, same names and meanings; --vmm-type also takes cloister)
//   cloister-measure snp --igvm PATH [--vcpus N]
//   cloister-measure tdx (--ovmf PATH | --igvm PATH) [--page-order single-pass|two-pass]
//                        [--memory SIZE] [--vcpus N]
//   cloister-measure --mode snp ... (no subcommand: sev-snp-measure drop-in, means "snp")
// Common: --output-format hex|base64, --json, --policy-out FILE, -v/--verbose.
//
// Exit status: 0 with the measurement on `out`; 2 with one line on `err` naming what is wrong
// and how to fix it, for every bad input (usage, unreadable files, malformed firmware, ...).
#pragma once

#include <ostream>
#include <span>
#include <string>

namespace cloister::measure {

inline constexpr int kExitOk = 0;
inline constexpr int kExitBadInput = 2;

// `args` are the arguments after the program name.
int run_cli(std::span<const std::string> args, std::ostream& out, std::ostream& err);

}  // namespace cloister::measure
