// The Intel QGS client (attestation/tdx/qgs.h) against a fake QGS: the request bytes
// qgs_msg_lib defines, the quote taken from the response, and every failure named.
#include <gtest/gtest.h>
#include <linux/vm_sockets.h>

#include "cloister/attestation/tdx/qgs.h"
#include "support/fake_qgs.h"

namespace cloister::attestation::tdx {
namespace {

using namespace std::chrono_literals;
using cloister::testing::FakeQgs;
using cloister::testing::qgs_framed;
using cloister::testing::qgs_response;

Bytes be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

Result<Bytes> quote_from(const FakeQgs& qgs, ByteView report) {
  auto client = QgsClient::create(qgs.address());
  if (!client) return client.error();
  return client->get_quote(report, 5s);
}

TEST(QgsClient, SpeaksTheQgsProtocol) {
  const Bytes quote(600, 0x51);
  FakeQgs qgs([&](const Bytes&) { return qgs_framed(qgs_response(quote, 0, 1, Bytes(16, 0x1d))); });
  auto got = quote_from(qgs, Bytes(1024, 0x7e));
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(*got, quote);
  // qgs_msg_get_quote_req: {major 1, minor 1, type 0, size, error 0}, report_size, id_list_size.
  const Bytes& req = qgs.request();
  ASSERT_EQ(req.size(), 16u + 8u + 1024u);
  EXPECT_EQ(load_le16(req, 0), 1u);
  EXPECT_EQ(load_le16(req, 2), 1u);
  EXPECT_EQ(load_le32(req, 4), 0u);
  EXPECT_EQ(load_le32(req, 8), req.size());
  EXPECT_EQ(load_le32(req, 12), 0u);
  EXPECT_EQ(load_le32(req, 16), 1024u);
  EXPECT_EQ(load_le32(req, 20), 0u);
  EXPECT_EQ(req[24], 0x7e);
}

TEST(QgsClient, FailuresAreNamed) {
  const Bytes report(1024, 1);
  {
    FakeQgs qgs([](const Bytes&) { return qgs_framed(qgs_response(Bytes(8, 1), 0x12)); });
    EXPECT_EQ(quote_from(qgs, report).error().message(),
              "QGS at " + qgs.address() +
                  ": QGS response: error code 0x12 (the service could not produce a quote; see "
                  "its log)");
  }
  {
    FakeQgs qgs([](const Bytes&) { return qgs_framed(qgs_response(Bytes(8, 1), 0, 3)); });
    EXPECT_EQ(
        quote_from(qgs, report).error().message(),
        "QGS at " + qgs.address() + ": QGS response: message type 3, expected 1 (GET_QUOTE_RESP)");
  }
  {
    FakeQgs qgs([](const Bytes&) { return be32(100); });  // promises 100 bytes, closes
    EXPECT_EQ(quote_from(qgs, report).error().message(),
              "QGS at " + qgs.address() +
                  ": response: the service closed the connection after 0 of 100 bytes");
  }
  {
    FakeQgs qgs([](const Bytes&) { return be32(64u << 20); });
    EXPECT_EQ(
        quote_from(qgs, report).error().message(),
        "QGS at " + qgs.address() + ": response of 67108864 bytes exceeds the limit of 4194304");
  }
  auto missing = QgsClient::create("unix:/nonexistent/qgs.sock")->get_quote(report, 1s);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message().rfind("QGS at unix:/nonexistent/qgs.sock: connect: ", 0), 0u)
      << missing.error().message();
}

TEST(QgsClient, AddressesAreParsedOnce) {
  EXPECT_EQ(QgsClient::create("qgs.sock").error().message(),
            "quote generation socket 'qgs.sock': expected unix:PATH, vsock:CID:PORT or HOST:PORT");
  EXPECT_EQ(QgsClient::create("vsock:2").error().message(),
            "quote generation socket 'vsock:2': expected vsock:CID:PORT");
  EXPECT_EQ(QgsClient::create("vsock:x:4050").error().message(),
            "quote generation socket 'vsock:x:4050': 'x' is not a number");
  EXPECT_EQ(QgsClient::create("unix:").error().message(),
            "quote generation socket 'unix:': expected unix:PATH with a path shorter than 108 "
            "bytes");
  auto guest = QgsClient::create(kQgsGuestAddress);
  ASSERT_TRUE(guest.ok());
  EXPECT_EQ(guest->socket_family(), AF_VSOCK);
  auto tcp = QgsClient::create("127.0.0.1:4050");
  ASSERT_TRUE(tcp.ok());
  EXPECT_EQ(tcp->socket_family(), AF_INET);
}

TEST(QgsClient, ResponseParserChecksEveryLength) {
  EXPECT_EQ(*parse_qgs_response(qgs_response(Bytes(5, 9))), Bytes(5, 9));
  Bytes r = qgs_response(Bytes(5, 9));
  r[20] = 6;  // quote_size beyond the message
  EXPECT_EQ(parse_qgs_response(r).error().message(),
            "QGS response: selected_id_size 0 + quote_size 6 do not fill the 5 bytes after the "
            "header");
  EXPECT_EQ(parse_qgs_response(Bytes(10, 0)).error().message(),
            "QGS response: 10 bytes, expected at least 24");
  Bytes wrong_size = qgs_response(Bytes(5, 9));
  wrong_size[8] = 99;
  EXPECT_EQ(parse_qgs_response(wrong_size).error().message(),
            "QGS response: header size 99 but 29 bytes were framed");
}

}  // namespace
}  // namespace cloister::attestation::tdx
