// Matching one topic name against one topic filter: the reference the trees are tested
// against, and what ACL checks use.
#pragma once

#include <string_view>

namespace edgemq::topics {

// True when the plain (non-shared) topic filter matches the topic name (section 4.7):
// - levels are split at '/', empty levels included ("a//b", "/a", "a/");
// - '+' matches exactly one level, an empty one too (section 4.7.1.3);
// - '#' matches its parent level and any number of child levels, so "sport/#" also
//   matches "sport" (section 4.7.1.2);
// - a topic starting with '$' is not matched by a filter whose first level is '+' or
//   '#' [MQTT-4.7.2-1];
// - everything else compares byte for byte, case sensitive, without normalization
//   [MQTT-4.7.3-4].
// The filter is expected to be valid (protocol::validate_topic_filter, without any
// "$share/" prefix); an invalid one gives some answer but never reads out of bounds.
// Thread-safe, does not allocate.
bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace edgemq::topics
