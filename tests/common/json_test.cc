#include "cloister/common/json.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

std::string error_of(std::string_view text) {
  auto doc = parse_json_strict(text, "doc");
  return doc ? "<parsed>" : doc.error().message();
}

TEST(StrictJson, ParsesWhatNlohmannParses) {
  auto doc = parse_json_strict(R"({"a": [1, {"b": 2}, {"b": 3}], "c": {"b": 4}})", "doc");
  ASSERT_TRUE(doc) << doc.error().message();
  EXPECT_EQ((*doc)["a"][2]["b"], 3);
  EXPECT_EQ((*doc)["c"]["b"], 4);
  EXPECT_EQ(*parse_json_strict("[]", "doc"), nlohmann::json::array());
  EXPECT_EQ(*parse_json_strict("7", "doc"), 7);
}

// The same key in different objects is no duplicate; in one object it is, at any depth, named by
// its JSON Pointer (RFC 6901, "~" and "/" escaped).
TEST(StrictJson, DuplicateKeysAreRefusedWithTheirPointer) {
  EXPECT_EQ(error_of(R"({"snp": {}, "snp": {}})"), "doc: duplicate key \"snp\" at /snp");
  EXPECT_EQ(error_of(R"({"a": [1, [], {"x": 1, "y": 2, "x": 3}]})"),
            "doc: duplicate key \"x\" at /a/2/x");
  EXPECT_EQ(error_of(R"([{"k": 1}, {"k": 1}, {"a/b": {"~": 1, "~": 2}}])"),
            "doc: duplicate key \"~\" at /2/a~1b/~0");
  EXPECT_EQ(error_of(R"({"a": {"b": 1}, "a": {"b": 1, "b": 2}})"),
            "doc: duplicate key \"a\" at /a");
  EXPECT_EQ(error_of("{\"\\u0041\": 1, \"A\": 2}"), "doc: duplicate key \"A\" at /A");
}

TEST(StrictJson, InvalidJsonSaysWhereAndWhy) {
  EXPECT_EQ(error_of("{\"a\": }"),
            "doc: not valid JSON (parse error at line 1, column 7: syntax error while parsing "
            "value - unexpected '}'; expected '[', '{', or a literal)");
  EXPECT_EQ(error_of("1e400"), "doc: not valid JSON (number overflow parsing '1e400')");
  EXPECT_EQ(error_of(""),
            "doc: not valid JSON (parse error at line 1, column 1: syntax error while parsing "
            "value - unexpected end of input; expected '[', '{', or a literal)");
}

// The parser's message quotes the input it last read; bytes that are not UTF-8 (an evidence
// file's, a client's) come out as \xNN, so whoever writes the message into JSON can.
TEST(StrictJson, BytesQuotedInTheReasonArePrintable) {
  const std::string reason = error_of("{\"a\": \"\xff\x01\"}");
  EXPECT_EQ(reason,
            "doc: not valid JSON (parse error at line 1, column 8: syntax error while parsing "
            "value - invalid string: ill-formed UTF-8 byte; last read: '\"\\xff')");
  EXPECT_NO_THROW((void)nlohmann::json(reason).dump());
}

// Values that outsiders shaped serialize whatever bytes they hold: U+FFFD stands in for each
// byte that is not UTF-8, where nlohmann's dump() would throw.
TEST(StrictJson, DumpJsonReplacesBytesThatAreNotUtf8) {
  const nlohmann::json value = {{"detail", "guest said \xff\xfe"}};
  EXPECT_THROW((void)value.dump(), nlohmann::json::type_error);
  EXPECT_EQ(dump_json(value), "{\"detail\":\"guest said \xef\xbf\xbd\xef\xbf\xbd\"}");
  EXPECT_EQ(dump_json(nlohmann::json::array({1}), 1), "[\n 1\n]");
  // No control character reaches a terminal showing the document: DEL and C1 are escaped as C0.
  EXPECT_EQ(dump_json(nlohmann::json{{"d", "\x1b\x7f\xc2\x9b\xc2\xa0"}}),
            "{\"d\":\"\\u001b\\u007f\\u009b\xc2\xa0\"}");
  EXPECT_EQ(nlohmann::json::parse(dump_json(nlohmann::json{{"d", "\x7f\xc2\x85"}}))["d"],
            "\x7f\xc2\x85");
}

// 64 levels parse; the 65th is refused where it opens, whether an array or an object, so a
// megabyte of '[' costs neither memory nor stack.
TEST(StrictJson, NestingIsCappedAtKMaxJsonDepth) {
  EXPECT_EQ(error_of(std::string(64, '[') + std::string(64, ']')), "<parsed>");
  const std::string pointer = [] {
    std::string p;
    for (int i = 0; i < 64; ++i) p += "/0";
    return p;
  }();
  EXPECT_EQ(error_of(std::string(65, '[') + std::string(65, ']')),
            "doc: nesting deeper than 64 levels at " + pointer);
  EXPECT_EQ(
      error_of(R"({"a": )" + std::string(63, '[') + R"({"b": 1})" + std::string(63, ']') + "}"),
      "doc: nesting deeper than 64 levels at /a" + pointer.substr(0, 63 * 2));
  EXPECT_EQ(error_of(std::string(1 << 20, '[')).rfind("doc: nesting deeper than 64 levels", 0), 0u);
}

}  // namespace
}  // namespace cloister
