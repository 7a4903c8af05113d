#include "cloister/service/jcs.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>

namespace cloister::service {
namespace {

std::string jcs(const std::string& text) {
  auto canonical = canonical_json(nlohmann::json::parse(text));
  EXPECT_TRUE(canonical) << canonical.error().message();
  return canonical ? *canonical : std::string();
}

// RFC 8785 §3.2.2 and §3.2.4: the sample input and its canonical form.
TEST(Jcs, Rfc8785SampleObject) {
  const std::string input = R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })";
  EXPECT_EQ(jcs(input),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
            "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

// RFC 8785 §3.2.3: members sorted by UTF-16 code units, which differs from UTF-8 byte order
// for the emoji (a surrogate pair 0xd83d… sorts before U+FB33, though its UTF-8 is larger).
TEST(Jcs, Rfc8785SortingByUtf16CodeUnits) {
  const std::string input = R"({
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\ud83d\ude00": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis"
  })";
  EXPECT_EQ(jcs(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
            "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
            "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
            "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

// RFC 8785 Appendix B: IEEE-754 bit patterns and their ECMAScript serialization.
TEST(Jcs, Rfc8785AppendixBNumbers) {
  const std::pair<std::uint64_t, const char*> cases[] = {
      {0x0000000000000000, "0"},
      {0x8000000000000000, "0"},
      {0x0000000000000001, "5e-324"},
      {0x8000000000000001, "-5e-324"},
      {0x7fefffffffffffff, "1.7976931348623157e+308"},
      {0xffefffffffffffff, "-1.7976931348623157e+308"},
      {0x4340000000000000, "9007199254740992"},
      {0xc340000000000000, "-9007199254740992"},
      {0x4430000000000000, "295147905179352830000"},
      {0x44b52d02c7e14af5, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6, "1e+23"},
      {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4e, "999999999999999700000"},
      {0x444b1ae4d6e2ef4f, "999999999999999900000"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x41b3de4355555553, "333333333.3333332"},
      {0x41b3de4355555554, "333333333.33333325"},
      {0x41b3de4355555555, "333333333.3333333"},
      {0x41b3de4355555556, "333333333.3333334"},
      {0x41b3de4355555557, "333333333.33333343"},
      {0xbecbf647612f3696, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959, "1424953923781206.2"},
  };
  for (const auto& [bits, expected] : cases) {
    const double value = std::bit_cast<double>(bits);
    auto text = ecmascript_number(value);
    ASSERT_TRUE(text) << std::hex << bits;
    EXPECT_EQ(*text, expected) << std::hex << bits;
    EXPECT_EQ(*canonical_json(nlohmann::json(value)), expected) << std::hex << bits;
  }
  EXPECT_FALSE(ecmascript_number(std::bit_cast<double>(std::uint64_t{0x7fffffffffffffff})));
  EXPECT_FALSE(ecmascript_number(std::bit_cast<double>(std::uint64_t{0x7ff0000000000000})));
}

TEST(Jcs, IntegersAndTheirLimit) {
  EXPECT_EQ(jcs("[0, -0, 1, -1, 9007199254740992, -9007199254740992, 100]"),
            "[0,0,1,-1,9007199254740992,-9007199254740992,100]");
  auto too_big = canonical_json(nlohmann::json::parse(R"({"a": [1, 9007199254740993]})"));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().message(),
            "JCS: number at /a/1 (9007199254740993) is beyond ±2^53, not exactly representable "
            "as an IEEE-754 double");
}

TEST(Jcs, ControlCharactersAndNonAsciiStayAsEcmaScriptWritesThem) {
  nlohmann::json s = std::string("\x01\x1f\x7f/\xe2\x80\xa8", 7);
  EXPECT_EQ(*canonical_json(s), "\"\\u0001\\u001f\x7f/\xe2\x80\xa8\"");
}

TEST(Jcs, RefusesWhatIJsonCannotCarry) {
  auto nan = canonical_json(nlohmann::json{{"x", std::nan("")}});
  ASSERT_FALSE(nan);
  EXPECT_EQ(nan.error().message(), "JCS: number at /x: NaN and infinities are not JSON numbers");
  auto bad_utf8 = canonical_json(nlohmann::json{{"k", std::string("\xc0\xaf")}});
  ASSERT_FALSE(bad_utf8);
  EXPECT_EQ(bad_utf8.error().message(), "JCS: string at /k: invalid UTF-8 code point at offset 0");
  auto bad_key = canonical_json(nlohmann::json{{std::string("\xed\xa0\x80"), 1}});
  ASSERT_FALSE(bad_key);
  EXPECT_EQ(bad_key.error().message(),
            "JCS: key at /\xed\xa0\x80: invalid UTF-8 code point at offset 0");
  EXPECT_FALSE(canonical_json(nlohmann::json::binary({1, 2})));
}

TEST(Jcs, EachByteOutsideAWellFormedSequenceBecomesOneReplacementCharacter) {
  const std::string fffd = "\xef\xbf\xbd";
  const std::string valid =
      "Gr\xc3\xbc\xc3\x9f"
      "e \xe2\x82\xac \xf0\x9f\x94\x92 ok";  // "Grüße € 🔒 ok"
  EXPECT_EQ(replace_invalid_utf8(valid), valid);
  EXPECT_EQ(replace_invalid_utf8("a\xff"
                                 "b"),
            "a" + fffd + "b");                                          // a stray byte
  EXPECT_EQ(replace_invalid_utf8("\xe2\x82"), fffd + fffd);             // truncated at the end
  EXPECT_EQ(replace_invalid_utf8("\xe2\x82x"), fffd + fffd + "x");      // cut short by ASCII
  EXPECT_EQ(replace_invalid_utf8("\xc0\xaf"), fffd + fffd);             // overlong '/'
  EXPECT_EQ(replace_invalid_utf8("\xed\xa0\x80"), fffd + fffd + fffd);  // a UTF-16 surrogate
  EXPECT_EQ(replace_invalid_utf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  // What comes out is always canonicalizable.
  EXPECT_TRUE(canonical_json(replace_invalid_utf8("\xc0\xaf\xed\xa0\x80\xff")));
}

}  // namespace
}  // namespace cloister::service
