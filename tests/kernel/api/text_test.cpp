#include "api/text.h"

#include <capnp/message.h>
#include <catch2/catch.hpp>

using namespace swarm;

TEST_CASE("times print as Go's time.Time JSON: UTC, nanoseconds, trailing zeros trimmed") {
  CHECK(api::formatTime(0) == "0001-01-01T00:00:00Z");  // Go's zero time
  CHECK(api::formatTime(1) == "1970-01-01T00:00:00.000000001Z");
  CHECK(api::formatTime(1714979289'123456789) == "2024-05-06T07:08:09.123456789Z");
  CHECK(api::formatTime(1714979289'120000000) == "2024-05-06T07:08:09.12Z");
  CHECK(api::formatTime(1714979289'000000000) == "2024-05-06T07:08:09Z");
  CHECK(api::formatTime(951782400'000000000) == "2000-02-29T00:00:00Z");  // leap day
  CHECK(api::formatTime(-1) == "1969-12-31T23:59:59.999999999Z");
  CHECK(api::formatTime(INT64_MAX) == "2262-04-11T23:47:16.854775807Z");
  CHECK(api::formatTime(INT64_MIN) == "1677-09-21T00:12:43.145224192Z");
}

TEST_CASE("base64 is Go's StdEncoding: padded, strict alphabet, CR and LF skipped") {
  CHECK(api::base64Encode("") == "");
  CHECK(api::base64Encode("f") == "Zg==");
  CHECK(api::base64Encode("fo") == "Zm8=");
  CHECK(api::base64Encode("foo") == "Zm9v");
  CHECK(api::base64Encode(std::string("\xff\xfe\x00", 3)) == "//4A");
  CHECK(api::base64Decode("") == std::string());
  CHECK(api::base64Decode("Zg==") == std::string("f"));
  CHECK(api::base64Decode("Zm8=") == std::string("fo"));
  CHECK(api::base64Decode("Zm9v") == std::string("foo"));
  CHECK(api::base64Decode("//4A") == std::string("\xff\xfe\x00", 3));
  CHECK(api::base64Decode("Zm9v\r\nYmFy") == std::string("foobar"));
  CHECK_FALSE(api::base64Decode("Zg"));        // padding missing
  CHECK_FALSE(api::base64Decode("Zg="));       // short
  CHECK_FALSE(api::base64Decode("Z==="));      // too much padding
  CHECK_FALSE(api::base64Decode("Zg==Zm9v"));  // data after padding
  CHECK_FALSE(api::base64Decode("Zm9-"));      // URL alphabet
  CHECK_FALSE(api::base64Decode("Zm 9v"));
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  CHECK(api::base64Decode(api::base64Encode(all)) == all);
}

TEST_CASE("the label filter matches a key alone or key=value exactly") {
  capnp::MallocMessageBuilder message;
  auto labels = message.initRoot<schema::Annotations>().initLabels(2);
  labels[0].setKey("env");
  labels[0].setValue("prod");
  labels[1].setKey("empty");
  labels[1].setValue("");
  auto reader = labels.asReader();
  CHECK(api::matchesLabelFilter(reader, "env"));
  CHECK(api::matchesLabelFilter(reader, "env=prod"));
  CHECK_FALSE(api::matchesLabelFilter(reader, "env=dev"));
  CHECK_FALSE(api::matchesLabelFilter(reader, "env=pro"));
  CHECK_FALSE(api::matchesLabelFilter(reader, "Env"));
  CHECK(api::matchesLabelFilter(reader, "empty"));
  CHECK(api::matchesLabelFilter(reader, "empty="));
  CHECK_FALSE(api::matchesLabelFilter(reader, "missing"));
  CHECK_FALSE(api::matchesLabelFilter(reader, "missing="));
}
