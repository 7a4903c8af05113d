#include "cloister/common/utf8.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

// Terminal control sequences in outside text are shown, not obeyed: C0 controls (line breaks
// too, unless kept), DEL, C1 controls and ill-formed UTF-8 become \xNN; other UTF-8 stays.
TEST(Utf8, TextForATerminalHasNoControls) {
  EXPECT_EQ(without_controls("ok\n\x1b[31mred\x07\x7f"), "ok\\x0a\\x1b[31mred\\x07\\x7f");
  EXPECT_EQ(without_controls("ok\r\n\x1b", /*keep_line_breaks=*/true), "ok\r\n\\x1b");
  EXPECT_EQ(without_controls("\xc2\x9b"
                             "2J caf\xc3\xa9 \xc2\xa0"),
            "\\xc2\\x9b2J caf\xc3\xa9 \xc2\xa0");
  EXPECT_EQ(without_controls("tab\there\r"), "tab\\x09here\\x0d");
  // A lone 8-bit CSI, an overlong one and a truncated sequence are ill-formed: escaped.
  EXPECT_EQ(without_controls("\x9b"
                             "2J"),
            "\\x9b2J");
  EXPECT_EQ(without_controls("\xc0\x9b"), "\\xc0\\x9b");
  EXPECT_EQ(without_controls("\xe2\x82"), "\\xe2\\x82");
  EXPECT_EQ(without_controls("\xe2\x82\xac"), "\xe2\x82\xac");
}

}  // namespace
}  // namespace cloister
