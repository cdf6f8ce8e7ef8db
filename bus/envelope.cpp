#include "bus/envelope.h"

#include <chrono>
#include <msgpack.hpp>

namespace mps::bus {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadFrame:
      return "bad_frame";
    case ErrorCode::kBadVersion:
      return "bad_version";
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kUnknownType:
      return "unknown_type";
    case ErrorCode::kDeadlineExpired:
      return "deadline_expired";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kUnreachable:
      return "unreachable";
    case ErrorCode::kRefused:
      return "refused";
    case ErrorCode::kBadPayload:
      return "bad_payload";
    case ErrorCode::kHandlerFailed:
      return "handler_failed";
    case ErrorCode::kShuttingDown:
      return "shutting_down";
  }
  return "handler_failed";
}

ErrorCode ErrorCodeFromName(std::string_view name) {
  for (auto c : {ErrorCode::kBadFrame, ErrorCode::kBadVersion, ErrorCode::kTooLarge,
                 ErrorCode::kUnknownType, ErrorCode::kDeadlineExpired, ErrorCode::kTimeout,
                 ErrorCode::kUnreachable, ErrorCode::kRefused, ErrorCode::kBadPayload,
                 ErrorCode::kHandlerFailed, ErrorCode::kShuttingDown}) {
    if (ErrorCodeName(c) == name) return c;
  }
  return ErrorCode::kHandlerFailed;
}

std::int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void PackJson(Packer& pk, const nlohmann::json& j) {
  using T = nlohmann::json::value_t;
  switch (j.type()) {
    case T::null:
    case T::discarded:
      pk.pack_nil();
      break;
    case T::boolean:
      j.get<bool>() ? pk.pack_true() : pk.pack_false();
      break;
    case T::number_integer:
      pk.pack_int64(j.get<std::int64_t>());
      break;
    case T::number_unsigned:
      pk.pack_uint64(j.get<std::uint64_t>());
      break;
    case T::number_float:
      pk.pack_double(j.get<double>());
      break;
    case T::string: {
      const auto& s = j.get_ref<const std::string&>();
      pk.pack_str(static_cast<std::uint32_t>(s.size()));
      pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
      break;
    }
    case T::binary: {
      const auto& b = j.get_binary();
      pk.pack_bin(static_cast<std::uint32_t>(b.size()));
      pk.pack_bin_body(reinterpret_cast<const char*>(b.data()),
                       static_cast<std::uint32_t>(b.size()));
      break;
    }
    case T::array:
      pk.pack_array(static_cast<std::uint32_t>(j.size()));
      for (const auto& e : j) PackJson(pk, e);
      break;
    case T::object:
      pk.pack_map(static_cast<std::uint32_t>(j.size()));
      for (const auto& [k, v] : j.items()) {
        pk.pack_str(static_cast<std::uint32_t>(k.size()));
        pk.pack_str_body(k.data(), static_cast<std::uint32_t>(k.size()));
        PackJson(pk, v);
      }
      break;
  }
}

void PackKey(Packer& pk, std::string_view key) {
  pk.pack_str(static_cast<std::uint32_t>(key.size()));
  pk.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
}

nlohmann::json ToJson(const msgpack::object& o, std::string_view where) {
  switch (o.type) {
    case msgpack::type::NIL:
      return nullptr;
    case msgpack::type::BOOLEAN:
      return o.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
      return o.via.u64;
    case msgpack::type::NEGATIVE_INTEGER:
      return o.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return o.via.f64;
    case msgpack::type::STR:
      return std::string(o.via.str.ptr, o.via.str.size);
    case msgpack::type::BIN: {
      auto p = reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr);
      return nlohmann::json::binary(std::vector<std::uint8_t>(p, p + o.via.bin.size));
    }
    case msgpack::type::ARRAY: {
      auto a = nlohmann::json::array();
      for (std::uint32_t i = 0; i < o.via.array.size; ++i)
        a.push_back(ToJson(o.via.array.ptr[i], where));
      return a;
    }
    case msgpack::type::MAP: {
      auto m = nlohmann::json::object();
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR)
          throw DecodeError(ErrorCode::kBadFrame, std::string(where) + ": map keys must be strings",
                            0);
        m[std::string(kv.key.via.str.ptr, kv.key.via.str.size)] = ToJson(kv.val, where);
      }
      return m;
    }
    case msgpack::type::EXT:
      break;
  }
  throw DecodeError(ErrorCode::kBadFrame, std::string(where) + ": msgpack ext types are not used",
                    0);
}

const char* TypeName(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "bool";
    case msgpack::type::POSITIVE_INTEGER:
      return "unsigned integer";
    case msgpack::type::NEGATIVE_INTEGER:
      return "negative integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "string";
    case msgpack::type::BIN:
      return "binary";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "unknown";
}

}  // namespace

std::string Encode(const Envelope& e) {
  msgpack::sbuffer buf(256 + e.type.size() + e.sender.size());
  Packer pk(buf);
  std::uint32_t n = 6 + (e.idempotency_key.empty() ? 0 : 1) + (e.seq ? 1 : 0) +
                    (e.stream.empty() ? 0 : 1) + (e.time_ms ? 1 : 0);
  pk.pack_map(n);
  PackKey(pk, "v");
  pk.pack_uint32(e.version);
  PackKey(pk, "t");
  pk.pack(e.type);
  PackKey(pk, "id");
  pk.pack_uint64(e.correlation_id);
  PackKey(pk, "from");
  pk.pack(e.sender);
  PackKey(pk, "dl");
  pk.pack_int64(e.deadline_ms);
  if (!e.idempotency_key.empty()) {
    PackKey(pk, "idem");
    pk.pack(e.idempotency_key);
  }
  if (e.seq) {
    PackKey(pk, "seq");
    pk.pack_uint64(e.seq);
  }
  if (!e.stream.empty()) {
    PackKey(pk, "stream");
    pk.pack(e.stream);
  }
  if (e.time_ms) {
    PackKey(pk, "ts");
    pk.pack_int64(e.time_ms);
  }
  PackKey(pk, "p");
  if (e.payload.is_object()) {
    PackJson(pk, e.payload);
  } else {
    pk.pack_map(0);  // a payload is always a map; anything else is a caller bug
  }
  return std::string(buf.data(), buf.size());
}

Envelope Decode(std::string_view frame, const DecodeLimits& limits) {
  if (frame.size() > limits.max_frame_bytes) {
    throw DecodeError(ErrorCode::kTooLarge,
                      "frame of " + std::to_string(frame.size()) + " bytes exceeds the limit of " +
                          std::to_string(limits.max_frame_bytes),
                      0);
  }
  msgpack::object_handle oh;
  std::size_t off = 0;
  try {
    msgpack::unpack_limit lim(limits.max_items, limits.max_items, limits.max_bytes,
                              limits.max_bytes, limits.max_bytes, limits.max_depth);
    oh = msgpack::unpack(frame.data(), frame.size(), off, nullptr, nullptr, lim);
  } catch (const msgpack::size_overflow& ex) {
    throw DecodeError(ErrorCode::kTooLarge,
                      std::string("frame exceeds a decode limit: ") + ex.what(), 0);
  } catch (const std::exception& ex) {
    throw DecodeError(ErrorCode::kBadFrame, std::string("malformed msgpack: ") + ex.what(), 0);
  }
  if (off != frame.size()) {
    throw DecodeError(ErrorCode::kBadFrame,
                      std::to_string(frame.size() - off) + " trailing bytes after the envelope", 0);
  }
  const msgpack::object& root = oh.get();
  if (root.type != msgpack::type::MAP) {
    throw DecodeError(ErrorCode::kBadFrame,
                      std::string("envelope must be a map, got ") + TypeName(root), 0);
  }

  Envelope e;
  bool have_v = false, have_t = false, have_id = false, have_from = false, have_dl = false,
       have_p = false;
  std::uint64_t corr = 0;
  auto fail = [&](std::string msg) -> DecodeError {
    return DecodeError(ErrorCode::kBadFrame, std::move(msg), corr);
  };
  auto want_uint = [&](const msgpack::object& o, const char* key) {
    if (o.type != msgpack::type::POSITIVE_INTEGER)
      throw fail(std::string("field '") + key + "' must be an unsigned integer, got " +
                 TypeName(o));
    return o.via.u64;
  };
  auto want_int = [&](const msgpack::object& o, const char* key) -> std::int64_t {
    if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= INT64_MAX)
      return static_cast<std::int64_t>(o.via.u64);
    if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
    throw fail(std::string("field '") + key + "' must be an integer, got " + TypeName(o));
  };
  auto want_str = [&](const msgpack::object& o, const char* key) {
    if (o.type != msgpack::type::STR)
      throw fail(std::string("field '") + key + "' must be a string, got " + TypeName(o));
    return std::string(o.via.str.ptr, o.via.str.size);
  };

  // First pass for the correlation id, so every later error can carry it.
  for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
    const auto& kv = root.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == "id" &&
        kv.val.type == msgpack::type::POSITIVE_INTEGER)
      corr = kv.val.via.u64;
  }
  for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
    const auto& kv = root.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) throw fail("envelope keys must be strings");
    std::string_view k(kv.key.via.str.ptr, kv.key.via.str.size);
    const auto& v = kv.val;
    if (k == "v") {
      auto ver = want_uint(v, "v");
      if (ver > UINT32_MAX) throw fail("field 'v' out of range");
      e.version = static_cast<std::uint32_t>(ver);
      have_v = true;
    } else if (k == "t") {
      e.type = want_str(v, "t");
      have_t = true;
    } else if (k == "id") {
      e.correlation_id = want_uint(v, "id");
      have_id = true;
    } else if (k == "from") {
      e.sender = want_str(v, "from");
      have_from = true;
    } else if (k == "dl") {
      e.deadline_ms = want_int(v, "dl");
      have_dl = true;
    } else if (k == "idem") {
      e.idempotency_key = want_str(v, "idem");
    } else if (k == "seq") {
      e.seq = want_uint(v, "seq");
    } else if (k == "stream") {
      e.stream = want_str(v, "stream");
    } else if (k == "ts") {
      e.time_ms = want_int(v, "ts");
    } else if (k == "p") {
      if (v.type != msgpack::type::MAP)
        throw fail(std::string("field 'p' (payload) must be a map, got ") + TypeName(v));
      try {
        e.payload = ToJson(v, "payload");
      } catch (const DecodeError& ex) {
        throw fail(ex.what());
      }
      have_p = true;
    }
    // Unknown keys are ignored: a newer sender may add optional fields.
  }
  if (!have_v) throw fail("missing field 'v' (protocol version)");
  if (e.version != kProtocolVersion) {
    throw DecodeError(ErrorCode::kBadVersion,
                      "protocol version " + std::to_string(e.version) +
                          " is not supported (this side speaks " +
                          std::to_string(kProtocolVersion) + ")",
                      corr);
  }
  if (!have_t) throw fail("missing field 't' (message type)");
  if (e.type.empty()) throw fail("field 't' (message type) is empty");
  if (!have_id) throw fail("missing field 'id' (correlation id)");
  if (!have_from) throw fail("missing field 'from' (sender)");
  if (!have_dl) throw fail("missing field 'dl' (deadline)");
  if (!have_p) throw fail("missing field 'p' (payload)");
  return e;
}

Envelope MakeErrorReply(const Envelope& request, const BusError& error, std::string_view sender) {
  Envelope r;
  r.type = std::string(kErrorType);
  r.correlation_id = request.correlation_id;
  r.sender = std::string(sender);
  r.payload = {{"code", ErrorCodeName(error.code())}, {"message", error.what()}};
  if (!error.app_code().empty()) r.payload["app_code"] = error.app_code();
  return r;
}

BusError ErrorOfReply(const Envelope& reply) {
  const auto& p = reply.payload;
  auto str = [&](const char* key) {
    auto it = p.find(key);
    return it != p.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  return BusError(ErrorCodeFromName(str("code")), str("message"), str("app_code"));
}

void ThrowErrorReply(const Envelope& reply) {
  throw ErrorOfReply(reply);
}

}  // namespace mps::bus
