#include "cloister/vmm/config/config.h"

#include <gtest/gtest.h>

namespace cloister::vmm {
namespace {

using nlohmann::json;

json minimal() {
  return {{"boot", {{"firmware", "/fw.bin"}}}};
}

std::string error_of(const json& doc) {
  auto c = parse_config(doc);
  EXPECT_FALSE(c.ok()) << doc.dump();
  return c.ok() ? "" : c.error().message();
}

TEST(ConfigTest, DefaultsForAMinimalDocument) {
  auto c = parse_config(minimal());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->vcpus, 1u);
  EXPECT_EQ(c->memory_bytes, 128ull << 20);
  EXPECT_EQ(c->tee.kind, TeeKind::kNone);
  EXPECT_EQ(c->hypervisor, HypervisorKind::kAuto);
  EXPECT_EQ(*c->boot.firmware, "/fw.bin");
  EXPECT_EQ(c->console.kind, ConsoleKind::kStdout);
  EXPECT_TRUE(c->seccomp);
  EXPECT_FALSE(c->api_socket.has_value());
}

TEST(ConfigTest, FullDocumentRoundTrips) {
  json doc = {{"vcpus", 4},
              {"memory", "512M"},
              {"tee", "none"},
              {"hypervisor", "emu"},
              {"boot", {{"kernel", "/k"}, {"initrd", "/i"}, {"cmdline", "console=ttyS0"}}},
              {"console", "file:/tmp/console.log"},
              {"disks", {{{"path", "/d.img"}, {"read_only", true}}}},
              {"api_socket", "/run/vm.sock"},
              {"log", {{"format", "json"}, {"level", "debug"}}},
              {"seccomp", false}};
  auto c = parse_config(doc);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->vcpus, 4u);
  EXPECT_EQ(c->memory_bytes, 512ull << 20);
  EXPECT_EQ(c->tee.kind, TeeKind::kNone);
  EXPECT_EQ(c->hypervisor, HypervisorKind::kEmu);
  EXPECT_EQ(to_json(*c)["hypervisor"], "emu");
  EXPECT_EQ(c->console.kind, ConsoleKind::kFile);
  EXPECT_EQ(c->console.path, "/tmp/console.log");
  ASSERT_EQ(c->disks.size(), 1u);
  EXPECT_TRUE(c->disks[0].read_only);
  EXPECT_EQ(c->log.format, LogFormat::kJson);
  auto again = parse_config(to_json(*c));
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(to_json(*again), to_json(*c));
}

TEST(ConfigTest, TeeOptionsRoundTripAndBelongToTheirTee) {
  json doc = {{"vcpus", 4},
              {"tee",
               {{"kind", "sim-snp"},
                {"policy", "0x30000"},
                {"host_data", std::string(64, 'a')},
                {"vcpu_type", "EPYC-Milan"},
                {"sim_state_dir", "/var/lib/cloister/sim"},
                {"sim_platform", {{"tcb", {{"snp", 3}}}}}}},
              {"boot", {{"igvm", "/g.igvm"}}}};
  auto c = parse_config(doc);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->tee.kind, TeeKind::kSimSnp);
  EXPECT_EQ(*c->tee.policy, 0x30000u);
  EXPECT_EQ(c->tee.host_data[31], 0xaa);
  EXPECT_EQ(*c->boot.igvm, "/g.igvm");
  auto again = parse_config(to_json(*c));
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->tee, c->tee);

  auto with = [](json tee) {
    return error_of({{"tee", std::move(tee)}, {"boot", {{"firmware", "/f"}}}});
  };
  EXPECT_EQ(with({{"kind", "tdx"}, {"policy", 1}}),
            "config: tee.policy: only valid with tee snp, sim-snp, not tdx");
  EXPECT_EQ(with({{"kind", "sim-snp"}, {"certificates", "/c"}}),
            "config: tee.certificates: only valid with tee snp, not sim-snp");
  EXPECT_EQ(with({{"kind", "tdx"}, {"sim_state_dir", "/s"}}),
            "config: tee.sim_state_dir: only valid with tee sim-snp, sim-tdx, not tdx");
  EXPECT_NE(with({{"kind", "sim-tdx"}, {"mr_config_id", "00"}})
                .find("tee.mr_config_id: expected 48 bytes"),
            std::string::npos);
  EXPECT_EQ(with({{"kind", "snp"}, {"id_block", "/b"}}),
            "config: tee.id_block and tee.id_auth go together: give both or neither");
  EXPECT_NE(
      with({{"kind", "snp"}, {"policy", "0xzz"}}).find("tee.policy: expected a 64-bit number"),
      std::string::npos);
  EXPECT_EQ(
      error_of({{"tee", "sim-tdx"}, {"boot", {{"kernel", "/k"}}}}),
      "config: boot.kernel: a confidential launch (tee sim-tdx) starts from measured firmware "
      "or an IGVM file, not a bare kernel: give boot.firmware or boot.igvm");
  EXPECT_EQ(error_of({{"tee", "snp"}, {"boot", {{"firmware", "/f"}, {"cmdline", "init=/bin/sh"}}}}),
            "config: boot.cmdline: a snp launch does not measure a command line (measured direct "
            "boot is not implemented), so the guest would get unattested input: leave it out");
}

TEST(ConfigTest, RejectsUnknownKeysByName) {
  json doc = minimal();
  doc["vcpu"] = 2;
  EXPECT_NE(error_of(doc).find("unknown key \"vcpu\""), std::string::npos);
  doc = minimal();
  doc["boot"]["kernal"] = "/k";
  EXPECT_NE(error_of(doc).find("unknown key \"boot.kernal\""), std::string::npos);
  doc = minimal();
  doc["log"] = {{"colour", true}};
  EXPECT_NE(error_of(doc).find("unknown key \"log.colour\""), std::string::npos);
  doc = minimal();
  doc["disks"] = {{{"path", "/d"}, {"cache", "none"}}};
  EXPECT_NE(error_of(doc).find("unknown key \"disks[0].cache\""), std::string::npos);
}

TEST(ConfigTest, RejectsImpossibleValuesNamingExpectedAndFound) {
  json doc = minimal();
  doc["vcpus"] = 0;
  EXPECT_EQ(error_of(doc), "config: vcpus: expected an integer 1..254, found 0");
  doc["vcpus"] = 255;
  EXPECT_EQ(error_of(doc), "config: vcpus: expected an integer 1..254, found 255");
  doc["vcpus"] = "two";
  EXPECT_EQ(error_of(doc), "config: vcpus: expected an integer 1..254, found \"two\"");
  doc = minimal();
  doc["memory"] = "1M";
  EXPECT_NE(error_of(doc).find("expected 4 MiB..1024 GiB"), std::string::npos);
  doc["memory"] = "4097K";
  EXPECT_NE(error_of(doc).find("multiples of 4 KiB"), std::string::npos);
  doc["memory"] = "2T";
  EXPECT_NE(error_of(doc).find("unknown size suffix \"T\""), std::string::npos);
  doc["memory"] = "9999999999999999999G";
  EXPECT_NE(error_of(doc).find("overflows"), std::string::npos);
  doc = minimal();
  doc["hugepages"] = true;
  doc["memory"] = "5M";
  EXPECT_NE(error_of(doc).find("multiples of 2 MiB"), std::string::npos);
  doc = minimal();
  doc["tee"] = "sev";
  EXPECT_NE(error_of(doc).find("one of none, sim-snp, sim-tdx, snp, tdx"), std::string::npos);
  doc = minimal();
  doc["hypervisor"] = "tcg";
  EXPECT_EQ(error_of(doc), "config: hypervisor: expected one of auto, kvm, emu, found \"tcg\"");
  doc = minimal();
  doc["console"] = "serial";
  EXPECT_NE(error_of(doc).find("stdout, none, file:PATH or socket:PATH"), std::string::npos);
  doc = minimal();
  doc["api_socket"] = std::string(200, 'a');
  EXPECT_NE(error_of(doc).find("shorter than 108 bytes"), std::string::npos);
  doc = minimal();
  doc["disks"] = json::array();
  for (int i = 0; i < 9; ++i) doc["disks"].push_back({{"path", "/d"}});
  EXPECT_NE(error_of(doc).find("at most 8 disks"), std::string::npos);
}

TEST(ConfigTest, Vsock) {
  json doc = minimal();
  doc["vsock"] = {{"uds_path", "/run/vm.vsock"}};
  auto c = parse_config(doc);
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(c->vsock.has_value());
  EXPECT_EQ(c->vsock->guest_cid, 3u);
  EXPECT_EQ(c->vsock->uds_path, "/run/vm.vsock");
  EXPECT_EQ(c->vsock->handshake_timeout_ms, 5000u);
  EXPECT_EQ(c->vsock->host_send_timeout_ms, 10000u);
  doc["vsock"]["handshake_timeout_ms"] = 250;
  doc["vsock"]["host_send_timeout_ms"] = 600000;
  c = parse_config(doc);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->vsock->handshake_timeout_ms, 250u);
  EXPECT_EQ(c->vsock->host_send_timeout_ms, 600000u);
  EXPECT_EQ(to_json(*c)["vsock"]["handshake_timeout_ms"], 250);
  doc["vsock"]["handshake_timeout_ms"] = 99;
  EXPECT_EQ(error_of(doc),
            "config: vsock.handshake_timeout_ms: expected milliseconds, an integer 100..600000, "
            "found 99");
  doc["vsock"]["handshake_timeout_ms"] = 100;
  doc["vsock"]["host_send_timeout_ms"] = "10s";
  EXPECT_NE(error_of(doc).find("vsock.host_send_timeout_ms: expected milliseconds"),
            std::string::npos);
  doc["vsock"].erase("host_send_timeout_ms");
  doc["vsock"]["guest_cid"] = 2;
  EXPECT_NE(error_of(doc).find("vsock.guest_cid: expected an integer 3..4294967295"),
            std::string::npos);
  doc["vsock"] = {{"guest_cid", 5}};
  EXPECT_EQ(error_of(doc), "config: vsock.uds_path: missing");
  doc["vsock"] = {{"uds_path", "/x"}, {"port", 1}};
  EXPECT_NE(error_of(doc).find("unknown key \"vsock.port\""), std::string::npos);
  doc = minimal();
  doc["vsock"] = {{"uds_path", "/x"}};
  doc["disks"] = json::array();
  for (int i = 0; i < 8; ++i) doc["disks"].push_back({{"path", "/d"}});
  EXPECT_NE(error_of(doc).find("at most 8 virtio devices, found 9"), std::string::npos);
}

TEST(ConfigTest, BootNeedsExactlyOneImage) {
  EXPECT_EQ(error_of({{"vcpus", 1}}),
            "config: boot: missing (give boot.firmware, boot.kernel or boot.igvm)");
  EXPECT_NE(error_of({{"boot", json::object()}}).find("found none"), std::string::npos);
  EXPECT_NE(error_of({{"boot", {{"firmware", "/f"}, {"kernel", "/k"}}}}).find("found 2"),
            std::string::npos);
  EXPECT_NE(error_of({{"boot", {{"igvm", "/g"}}}})
                .find("boot.igvm: IGVM files describe confidential launches"),
            std::string::npos);
  EXPECT_NE(error_of({{"boot", {{"firmware", "/f"}, {"initrd", "/i"}}}})
                .find("only valid with boot.kernel"),
            std::string::npos);
  EXPECT_NE(error_of({{"boot", {{"kernel", ""}}}}).find("non-empty path"), std::string::npos);
}

TEST(ConfigTest, HardwareTeesNeedKvm) {
  EXPECT_EQ(error_of({{"tee", "snp"}, {"hypervisor", "emu"}, {"boot", {{"firmware", "/f"}}}}),
            "config: hypervisor: emu cannot launch tee snp (SEV-SNP and TDX need KVM on capable "
            "hardware): give hypervisor kvm or auto, or tee sim-snp / sim-tdx");
  EXPECT_NE(error_of({{"tee", "tdx"}, {"hypervisor", "emu"}, {"boot", {{"igvm", "/g"}}}})
                .find("emu cannot launch tee tdx"),
            std::string::npos);
  for (const char* tee : {"sim-snp", "sim-tdx"}) {
    auto ok = parse_config({{"tee", tee}, {"hypervisor", "emu"}, {"boot", {{"firmware", "/f"}}}});
    EXPECT_TRUE(ok.ok()) << tee << ": " << ok.error().message();
  }
}

TEST(ConfigTest, RejectsNonJsonText) {
  auto c = parse_config_text("{\"boot\": ");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(),
            "config: not valid JSON (parse error at line 1, column 10: syntax error while parsing "
            "value - unexpected end of input; expected '[', '{', or a literal)");
  auto twice = parse_config_text(R"({"boot": {"firmware": "/a", "firmware": "/b"}})");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message(), "config: duplicate key \"firmware\" at /boot/firmware");
  EXPECT_FALSE(parse_config_text("[1, 2]").ok());
}

}  // namespace
}  // namespace cloister::vmm
