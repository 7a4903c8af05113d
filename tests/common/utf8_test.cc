#include "cloister/common/utf8.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

// Terminal control sequences in outside text are shown, not obeyed: C0 controls but the
// newline, DEL and C1 controls (as UTF-8) become \xNN; other UTF-8 stays.
TEST(Utf8, TextForATerminalHasNoControls) {
  EXPECT_EQ(without_controls("ok\n\x1b[31mred\x07\x7f"), "ok\n\\x1b[31mred\\x07\\x7f");
  EXPECT_EQ(without_controls("\xc2\x9b"
                             "2J caf\xc3\xa9 \xc2\xa0"),
            "\\xc2\\x9b2J caf\xc3\xa9 \xc2\xa0");
  EXPECT_EQ(without_controls("tab\there\r"), "tab\\x09here\\x0d");
  EXPECT_EQ(without_controls("\xc2"), "\xc2");  // a lone lead byte is no control
}

}  // namespace
}  // namespace cloister
