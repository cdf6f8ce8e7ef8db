#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <random>

#include "bus/envelope.h"

using mps::bus::Decode;
using mps::bus::DecodeError;
using mps::bus::Encode;
using mps::bus::Envelope;
using mps::bus::ErrorCode;

namespace {

Envelope Full() {
  Envelope e;
  e.type = "multipass.launch";
  e.correlation_id = 0xFFFFFFFFFFFFull;
  e.sender = "plugin@vm-1";
  e.deadline_ms = 1'700'000'000'123;
  e.idempotency_key = "scale-42/launch-3";
  e.seq = 77;
  e.stream = "abcdef0123456789";
  e.time_ms = 1'700'000'000'000;
  e.payload = {{"name", "web-x1"},
               {"cpus", 2},
               {"neg", -5},
               {"ratio", 0.5},
               {"ok", true},
               {"none", nullptr},
               {"list", {1, "two", 3.0}},
               {"nested", {{"a", {{"b", "c"}}}}},
               {"blob", nlohmann::json::binary({0, 1, 2, 255})}};
  return e;
}

// Packs an arbitrary map with msgpack-c, to build frames our encoder never would.
template <class F>
std::string PackMap(std::uint32_t n, F body) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(n);
  body(pk);
  return std::string(buf.data(), buf.size());
}

void ExpectRejected(const std::string& frame, ErrorCode code, const std::string& mentions) {
  try {
    Decode(frame);
    FAIL() << "decoded a frame that should be rejected (" << mentions << ")";
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(EnvelopeCodec, RoundTripsEveryField) {
  Envelope in = Full();
  Envelope out = Decode(Encode(in));
  EXPECT_EQ(out.version, in.version);
  EXPECT_EQ(out.type, in.type);
  EXPECT_EQ(out.correlation_id, in.correlation_id);
  EXPECT_EQ(out.sender, in.sender);
  EXPECT_EQ(out.deadline_ms, in.deadline_ms);
  EXPECT_EQ(out.idempotency_key, in.idempotency_key);
  EXPECT_EQ(out.seq, in.seq);
  EXPECT_EQ(out.stream, in.stream);
  EXPECT_EQ(out.time_ms, in.time_ms);
  EXPECT_EQ(out.payload, in.payload);
}

TEST(EnvelopeCodec, OptionalFieldsAbsentStayEmpty) {
  Envelope in;
  in.type = "x";
  Envelope out = Decode(Encode(in));
  EXPECT_TRUE(out.idempotency_key.empty());
  EXPECT_EQ(out.seq, 0u);
  EXPECT_TRUE(out.payload.is_object());
  EXPECT_TRUE(out.payload.empty());
}

TEST(EnvelopeCodec, RejectsWrongVersionAndKeepsCorrelationId) {
  Envelope in = Full();
  in.version = 2;
  try {
    Decode(Encode(in));
    FAIL();
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadVersion);
    EXPECT_EQ(e.correlation_id(), in.correlation_id);
  }
}

TEST(EnvelopeCodec, RejectsMissingFieldsNamingThem) {
  const std::string full = Encode(Full());
  struct Case {
    const char* drop;
    const char* mentions;
  } cases[] = {{"v", "'v'"},       {"t", "'t'"},   {"id", "'id'"},
               {"from", "'from'"}, {"dl", "'dl'"}, {"p", "'p'"}};
  for (const auto& c : cases) {
    auto obj = msgpack::unpack(full.data(), full.size());
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    const auto& m = obj.get().via.map;
    pk.pack_map(m.size - 1);
    for (std::uint32_t i = 0; i < m.size; ++i) {
      if (m.ptr[i].key.as<std::string>() == c.drop) continue;
      pk.pack(m.ptr[i].key);
      pk.pack(m.ptr[i].val);
    }
    ExpectRejected(std::string(buf.data(), buf.size()), ErrorCode::kBadFrame, c.mentions);
  }
}

TEST(EnvelopeCodec, RejectsMistypedFieldsNamingThem) {
  auto base = [](msgpack::packer<msgpack::sbuffer>& pk, const char* bad_key) {
    auto field = [&](const char* k, auto good, auto bad) {
      pk.pack(std::string(k));
      if (std::string(k) == bad_key)
        pk.pack(bad);
      else
        pk.pack(good);
    };
    field("v", 1u, std::string("1"));
    field("t", std::string("a.b"), 5);
    field("id", 1u, -1);
    field("from", std::string("me"), 3.5);
    field("dl", 0, std::string("soon"));
    pk.pack(std::string("p"));
    if (std::string("p") == bad_key)
      pk.pack(std::vector<int>{1});
    else
      pk.pack_map(0);
  };
  for (const char* key : {"v", "t", "id", "from", "dl", "p"}) {
    std::string frame = PackMap(6, [&](auto& pk) { base(pk, key); });
    ExpectRejected(frame, ErrorCode::kBadFrame, std::string("'") + key + "'");
  }
}

TEST(EnvelopeCodec, RejectsNonMapsTrailingBytesAndOversize) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::vector<int>{1, 2});
  ExpectRejected(std::string(buf.data(), buf.size()), ErrorCode::kBadFrame, "must be a map");
  ExpectRejected(Encode(Full()) + "x", ErrorCode::kBadFrame, "trailing");
  mps::bus::DecodeLimits small;
  small.max_frame_bytes = 16;
  try {
    Decode(Encode(Full()), small);
    FAIL();
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTooLarge);
  }
}

TEST(EnvelopeCodec, HostileLengthPrefixesDoNotAllocate) {
  // A map header claiming 4 billion entries: must fail fast, not allocate ~96 GiB.
  ExpectRejected(std::string("\xdf\xff\xff\xff\xff\x01", 6), ErrorCode::kTooLarge, "limit");
  ExpectRejected(std::string("\xdd\xff\xff\xff\xff\x01", 6), ErrorCode::kTooLarge, "limit");
  // Deep nesting past the depth limit.
  std::string deep(100, '\x91');
  deep += '\xc0';
  EXPECT_THROW(Decode(deep), DecodeError);
}

TEST(EnvelopeCodec, RejectsNonStringPayloadKeys) {
  std::string frame = PackMap(6, [](auto& pk) {
    pk.pack(std::string("v"));
    pk.pack(1u);
    pk.pack(std::string("t"));
    pk.pack(std::string("a"));
    pk.pack(std::string("id"));
    pk.pack(1u);
    pk.pack(std::string("from"));
    pk.pack(std::string("x"));
    pk.pack(std::string("dl"));
    pk.pack(0);
    pk.pack(std::string("p"));
    pk.pack_map(1);
    pk.pack(7);
    pk.pack(8);
  });
  ExpectRejected(frame, ErrorCode::kBadFrame, "keys must be strings");
}

TEST(EnvelopeCodec, RandomAndTruncatedInputNeverCrashes) {
  std::mt19937 rng(12345);
  const std::string good = Encode(Full());
  int rejected = 0;
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_THROW(Decode(good.substr(0, cut)), DecodeError) << "cut at " << cut;
  }
  for (int i = 0; i < 20000; ++i) {
    std::string frame = good;
    // Flip a few bytes, or make pure noise.
    if (i % 2) {
      for (int k = 0; k < 3; ++k) frame[rng() % frame.size()] = static_cast<char>(rng());
    } else {
      frame.resize(rng() % 64);
      for (auto& ch : frame) ch = static_cast<char>(rng());
    }
    try {
      Decode(frame);
    } catch (const DecodeError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 10000);
}
