// A Mosquitto 2.0 ACL file: which topics each client may publish to, subscribe to and
// receive. Files written for Mosquitto work unchanged.
//
// Syntax, one directive per line (blanks around a line are ignored; a line whose first
// non-blank character is '#' is a comment):
//   user NAME                         rules below, up to the next "user" line, are NAME's
//                                     (two blocks for one NAME add up)
//   topic [read|write|readwrite|deny] FILTER
//                                     a rule for the current user; before the first
//                                     "user" line: for clients without a user name
//   pattern [read|write|readwrite|deny] FILTER
//                                     a rule for every client, wherever it stands, with
//                                     "%c" replaced by the client id and "%u" by the user
//                                     name
// No access word means readwrite. As in Mosquitto, "topic read" alone is a readwrite rule
// for the topic "read", and FILTER is the rest of the line, spaces included. FILTER must be
// a valid topic filter (MQTT 5.0 section 4.7.1). Errors: file_error "FILE:LINE: why".
//
// Decision for one topic and one access (Mosquitto's acl_check_default):
//   1. the client's own rules (its user block, or the anonymous rules when it has no
//      user name): any deny rule matching the topic refuses; else any rule matching it
//      with the access allows;
//   2. otherwise patterns, the same way: deny patterns first, then the others;
//   3. otherwise refused. Nothing is allowed that no rule allows.
// A topic starting with '$' is matched only by rules whose filter starts with '$', so
// "#" and "+/..." never reach $SYS [MQTT-4.7.2-1]. Publishing to "$SYS..." or
// "$share..." is always refused, as Mosquitto does whatever the ACL says (it lets only
// its own bridges write $SYS/broker/connection/+/state; ours is not a client).
// If any pattern exists and the client id or user name contains '+', '#' or '/', step 2
// refuses: substituted into a pattern such an id would widen it ("%c" = "#") or reach
// into another client's subtree ("%c" = "a/b").
//
// Deliberate differences from Mosquitto 2.0.11:
// - SUBSCRIBE: Mosquitto grants every subscription and filters each delivery. Here a
//   filter is granted only when one read rule covers every topic the filter can match
//   (Mosquitto develop's mosquitto_sub_matches_acl: read on "a/+/c" covers "a/b/c" and
//   "a/+/c", not "a/#" nor "#"), so a client learns at once (SUBACK 0x87) that it asked
//   for more than it may read. A deny rule refuses the subscriptions it covers whole
//   ("deny a/secret/#" refuses "a/secret/x"); one that covers only part of a granted
//   filter ("readwrite #" with "deny a/secret/#", subscribing to "#") leaves it granted,
//   and the broker drops the denied topics at delivery (may_read), as Mosquitto does,
//   so Mosquitto files with broad rules and a few denies keep working. Filters covered
//   only by several rules together (read on "a" and on "a/+/#" for "a/#") are refused:
//   the check is conservative.
// - Mosquitto 2.0 refuses pattern matching for ids with '+' or '#' only; '/' is
//   refused here too (Mosquitto 1.x did).
// - A pattern using %c (or %u) matches nothing for an empty client id (or user name),
//   as in Mosquitto develop; 2.0 would substitute "" and make "a/%c" mean "a/".
// - A rule whose filter does not start with '$' never matches a '$' topic, patterns
//   included: a client id "$SYS" in "%c/#" does not open $SYS.
// - Blanks between words may be tabs as well as spaces, and a comment may be indented.
//
// Immutable once built; every check is const and safe from many threads at once. The
// checks for PUBLISH and deliveries do not allocate.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "broker/auth/file_error.hpp"
#include "broker/core/authorizer.hpp"

namespace edgemq::auth {

class acl_file {
public:
    // Reads and checks the whole file. Throws file_error.
    static acl_file load(const std::string& path);
    // The same from text already in memory; `file_name` is what error messages call it.
    static acl_file parse(std::string_view text, const std::string& file_name);

    // PUBLISH to `topic` (a topic name, no wildcards).
    bool may_write(const core::client_identity& who, std::string_view topic) const;
    // A message on `topic` delivered to the client.
    bool may_read(const core::client_identity& who, std::string_view topic) const;
    // SUBSCRIBE with `filter` (without "$share/GROUP/"); false for an invalid filter.
    bool may_subscribe(const core::client_identity& who, std::string_view filter) const;

    // How many topic and pattern lines were read (for logs and tests).
    std::size_t rule_count() const noexcept;

    struct rules;  // defined in acl_file.cpp

private:
    explicit acl_file(std::shared_ptr<const rules> r) noexcept : rules_(std::move(r)) {}
    std::shared_ptr<const rules> rules_;
};

}  // namespace edgemq::auth
