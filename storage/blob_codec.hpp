// Byte encodings of the values the store keeps in BLOB columns. They are our own,
// not MQTT's wire format: MQTT limits strings to 65,535 bytes and lets each packet
// carry only some properties, while the store must give back exactly what it was
// given, whatever the core puts in.
//
// Properties (the will's): empty for no properties, else a format byte (1) followed by
// (property id, value) records in identifier order; u8/u16/u32 values big-endian in
// 1/2/4 bytes, strings and binary data as a 4-byte big-endian length and the bytes,
// a User Property as two strings, each Subscription Identifier as its own record.
// Every field of protocol::properties is covered (blob_codec_test checks the round
// trip with all of them set); a new field must be added to for_each_property.
//
// Subscription identifiers of a delivery: 4-byte big-endian values, concatenated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/protocol/properties.hpp"

namespace edgemq::storage {

std::string encode_properties(const protocol::properties& props);
// false when `blob` is not an encoding of ours (damaged file); `out` is then partial.
bool decode_properties(std::string_view blob, protocol::properties& out);

void encode_u32_list(const std::vector<std::uint32_t>& values, std::string& out);
bool decode_u32_list(std::string_view blob, std::vector<std::uint32_t>& out);

}  // namespace edgemq::storage
