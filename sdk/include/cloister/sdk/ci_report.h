// A verdict in the formats CI systems read natively, so a failed attestation shows in the
// pipeline's own UI (research/service.md §g): JUnit XML (one test case per check), SARIF 2.1.0
// (one result per failed check, rule ids = check names; GitHub code scanning's subset) and
// GitHub Actions workflow commands (one annotation per failed check).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cloister/sdk/verifier.h"

namespace cloister::sdk {

// Where the verdict came from: results point at these files.
struct ReportContext {
  std::string evidence;               // the evidence file as the user named it
  std::optional<std::string> policy;  // the policy file, when one was given
};

// <testsuites> with one <testsuite> for the evidence and one <testcase name="<check>"
// classname="<tee>.<first name component>"> per check: a failed check carries
// <failure message="expected …, found …">detail</failure>, a skipped one <skipped message>.
// The suite's <properties> hold the verdict, the TEE and the trust anchor.
std::string to_junit_xml(const Verdict& verdict, const ReportContext& context);

// A SARIF 2.1.0 log with one run of tool "verify-report": a rule per failed check (id = the
// check's name) and a result per failed check (level "error", the message with expected, found
// and detail, located at the evidence file, or the policy file for "policy.*" checks, line 1).
nlohmann::json to_sarif(const Verdict& verdict, const ReportContext& context);

// GitHub Actions workflow commands: "::error file=…,title=<check>::expected …, found … — detail"
// per failed check, "::notice" per skipped check and a closing "::notice" or "::error" with
// the verdict; values escaped as the runner requires (%, CR, LF; also ':' and ',' in
// properties).
std::string to_github_annotations(const Verdict& verdict, const ReportContext& context);

}  // namespace cloister::sdk
