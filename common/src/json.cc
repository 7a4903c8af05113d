#include "cloister/common/json.h"

#include <set>
#include <vector>

#include "cloister/common/hex.h"

namespace cloister {
namespace {

using nlohmann::json;

// "~" and "/" escaped as RFC 6901 §3 says.
std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// Where the parser is: one frame per open object or array, with the member or element it is in.
class JsonPosition {
 public:
  void open(bool array) { frames_.push_back({array, 0, {}, {}}); }
  void close() {
    frames_.pop_back();
    next_element();
  }
  void next_element() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }
  // Enters member `key` of the innermost object; false when the object already has one.
  bool enter_member(const std::string& key) {
    Frame& object = frames_.back();
    object.key = key;
    return object.keys.insert(key).second;
  }
  std::string pointer() const {
    std::string out;
    for (const Frame& f : frames_)
      out += "/" + (f.array ? std::to_string(f.index) : printable(pointer_token(f.key)));
    return out;
  }

 private:
  struct Frame {
    bool array;
    std::size_t index;
    std::string key;
    std::set<std::string> keys;
  };
  std::vector<Frame> frames_;
};

}  // namespace

Result<json> parse_json_strict(std::string_view text, const std::string& what) {
  JsonPosition position;
  std::string problem;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (depth >= kMaxJsonDepth) {
          if (problem.empty())
            problem = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels at " +
                      position.pointer();
          return false;
        }
        position.open(event == E::array_start);
        break;
      case E::object_end:
      case E::array_end:
        position.close();
        break;
      case E::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!position.enter_member(key) && problem.empty())
          problem = "duplicate key " + json(key).dump() + " at " + position.pointer();
        break;
      }
      case E::value:
        position.next_element();
        break;
    }
    return true;
  };
  try {
    json doc = json::parse(text, callback);
    if (!problem.empty()) return Error(what + ": " + problem);
    return doc;
  } catch (const json::exception& e) {
    if (!problem.empty()) return Error(what + ": " + problem);  // found before the syntax error
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 9: …".
    std::string_view reason = e.what();
    if (const auto end = reason.find("] "); reason.starts_with("[json.") && end != reason.npos)
      reason.remove_prefix(end + 2);
    // nlohmann quotes the input it last read as it is: its bytes need not be UTF-8.
    return Error(what + ": not valid JSON (" + printable(reason) + ")");
  }
}

std::string dump_json(const nlohmann::json& value, int indent) {
  const std::string dumped =
      value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
  // The dump is well-formed UTF-8 whose C0 controls are escaped; DEL (0x7f) and the C1
  // controls (0xc2 0x80..0x9f) can only be inside strings, and are escaped as \u00XX too.
  std::string out;
  out.reserve(dumped.size());
  for (std::size_t i = 0; i < dumped.size(); ++i) {
    const auto b = static_cast<std::uint8_t>(dumped[i]);
    const auto next = i + 1 < dumped.size() ? static_cast<std::uint8_t>(dumped[i + 1]) : 0;
    if (b == 0x7f || (b == 0xc2 && next >= 0x80 && next <= 0x9f)) {
      const std::uint8_t cp = b == 0x7f ? b : next;
      out += "\\u00" + to_hex(ByteView(&cp, 1));
      i += b == 0x7f ? 0 : 1;
    } else {
      out += dumped[i];
    }
  }
  return out;
}

}  // namespace cloister
