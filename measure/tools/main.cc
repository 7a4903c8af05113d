// cloister-measure: the expected SEV-SNP launch measurement or TDX MRTD of a guest.
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return cloister::measure::run_cli(args, std::cout, std::cerr);
}
