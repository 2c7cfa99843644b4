// Small text forms the Docker Engine API uses: Go's time.Time JSON, Go's []byte JSON (base64),
// and the label filter of GET /nodes, /services, /secrets, ... (`label=key` or `label=key=value`).
#pragma once

#include <swarm/schema/common.capnp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace swarm::api {

// RFC 3339 in UTC with nanoseconds and trailing zeros trimmed, as Go's time.Time marshals:
// "2024-05-06T07:08:09.12345Z". 0 (our "unset") is Go's zero time "0001-01-01T00:00:00Z".
std::string formatTime(int64_t unixNanos);

// Standard alphabet with padding (Go's base64.StdEncoding, which encoding/json uses for []byte).
std::string base64Encode(std::string_view bytes);
// std::nullopt when `text` is not valid padded standard base64. CR and LF are skipped, as Go does.
std::optional<std::string> base64Decode(std::string_view text);

// Docker's label filter: "key" matches when the label exists (any value), "key=value" when it
// exists with exactly that value.
bool matchesLabelFilter(capnp::List<schema::KeyValue>::Reader labels, std::string_view filter);

}  // namespace swarm::api
