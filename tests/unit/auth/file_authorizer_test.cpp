// file_authorizer: who may connect (the anonymous rule with and without a password
// file), the ACL decisions through core::authorizer, loading errors, and concurrent use.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "auth_test_support.hpp"
#include "broker/auth/file_authorizer.hpp"

using namespace edgemq::auth;
using namespace edgemq::auth_test;
using edgemq::core::auth_decision;
using edgemq::core::client_identity;

namespace {

constexpr const char* alice_line =
    "alice:$7$101$eYZhtdFkOVFK+BIu$D4GRm161IFc9PNDPHXcXo1GfovFg/46JG9x/nKOC3f2fvH1Ch7MbxB1GnlZL70RiLD3RTwyitZEKMKo36bk3rw==\n";

std::optional<std::string> none() {
    return std::nullopt;
}

std::optional<std::string> some(const char* s) {
    return std::string(s);
}

file_authorizer with_passwords(std::optional<bool> allow_anonymous) {
    return file_authorizer(password_file::parse(alice_line, "pw"), std::nullopt, allow_anonymous);
}

file_authorizer without_passwords(std::optional<bool> allow_anonymous) {
    return file_authorizer(std::nullopt, std::nullopt, allow_anonymous);
}

}  // namespace

TEST_CASE("authorizer: without files everything is allowed") {
    const auto a = without_passwords(std::nullopt);
    CHECK(a.authenticate(none(), none(), "c") == auth_decision::allow);
    CHECK(a.authenticate(some("anyone"), some("anything"), "c") == auth_decision::allow);
    CHECK(a.authenticate(some("anyone"), none(), "c") == auth_decision::allow);
    const client_identity who{"c", std::nullopt};
    CHECK(a.may_publish(who, "any/topic"));
    CHECK(a.may_subscribe(who, "#"));
    CHECK(a.may_receive(who, "$SYS/broker/uptime"));
    CHECK_FALSE(a.restricts_reads());
    CHECK(a.begin_exchange("SCRAM-SHA-256") == nullptr);
}

TEST_CASE("authorizer: anonymous clients without a password file (MQTT 5.0 section 3.1.3.5)") {
    CHECK(without_passwords(std::nullopt).authenticate(none(), none(), "c") == auth_decision::allow);
    CHECK(without_passwords(true).authenticate(none(), none(), "c") == auth_decision::allow);
    CHECK(without_passwords(false).authenticate(none(), none(), "c") == auth_decision::not_authorized);
    // A password without a user name (allowed in v5) does not make the client named.
    CHECK(without_passwords(false).authenticate(none(), some("pw"), "c") == auth_decision::not_authorized);
    // Nothing can check a user name: refused like Mosquitto 2.0 with allow_anonymous false.
    CHECK(without_passwords(false).authenticate(some("alice"), some("pw"), "c") == auth_decision::not_authorized);
    CHECK(without_passwords(true).authenticate(some("alice"), some("pw"), "c") == auth_decision::allow);
    CHECK(without_passwords(true).allows_anonymous());
    CHECK_FALSE(without_passwords(false).allows_anonymous());
}

TEST_CASE("authorizer: anonymous clients with a password file") {
    CHECK(with_passwords(std::nullopt).authenticate(none(), none(), "c") == auth_decision::not_authorized);
    CHECK(with_passwords(false).authenticate(none(), none(), "c") == auth_decision::not_authorized);
    CHECK(with_passwords(true).authenticate(none(), none(), "c") == auth_decision::allow);
    CHECK_FALSE(with_passwords(std::nullopt).allows_anonymous());
}

TEST_CASE("authorizer: user names are checked against the password file") {
    for (const auto allow_anonymous : {std::optional<bool>{}, std::optional<bool>{true}, std::optional<bool>{false}}) {
        const auto a = with_passwords(allow_anonymous);
        CHECK(a.authenticate(some("alice"), some("secret"), "c") == auth_decision::allow);
        CHECK(a.authenticate(some("alice"), some("wrong"), "c") == auth_decision::bad_credentials);
        CHECK(a.authenticate(some("alice"), some(""), "c") == auth_decision::bad_credentials);
        CHECK(a.authenticate(some("alice"), none(), "c") == auth_decision::bad_credentials);
        CHECK(a.authenticate(some("mallory"), some("secret"), "c") == auth_decision::bad_credentials);
        CHECK(a.authenticate(some(""), some("secret"), "c") == auth_decision::bad_credentials);
    }
}

TEST_CASE("authorizer: the ACL decides publish subscribe and receive") {
    temp_dir dir;
    write_file(dir.file("acl"),
               "topic read public/#\n"
               "user alice\n"
               "topic readwrite alice/#\n"
               "topic read public/#\n"
               "topic deny alice/locked\n");
    write_file(dir.file("pw"), alice_line);
    const auto a = file_authorizer::load({dir.file("pw"), dir.file("acl"), std::nullopt});
    REQUIRE(a);
    CHECK(a->restricts_reads());
    const client_identity alice{"c1", std::string("alice")};
    const client_identity anon{"c2", std::nullopt};
    CHECK(a->authenticate(some("alice"), some("secret"), "c1") == auth_decision::allow);
    CHECK(a->may_publish(alice, "alice/x"));
    CHECK_FALSE(a->may_publish(alice, "alice/locked"));
    CHECK_FALSE(a->may_publish(alice, "public/x"));
    CHECK(a->may_receive(alice, "public/x"));
    CHECK_FALSE(a->may_receive(alice, "alice/locked"));
    CHECK(a->may_subscribe(alice, "public/#"));
    CHECK(a->may_subscribe(alice, "alice/+/x"));
    CHECK(a->may_subscribe(alice, "alice/#"));  // alice/locked is dropped at delivery
    CHECK_FALSE(a->may_subscribe(alice, "alice/locked"));
    CHECK_FALSE(a->may_subscribe(alice, "#"));
    CHECK(a->may_subscribe(anon, "public/+"));
    CHECK_FALSE(a->may_publish(anon, "public/x"));
    CHECK_FALSE(a->may_receive(anon, "alice/x"));

    // An ACL file without a password file.
    const auto b = file_authorizer::load({std::nullopt, dir.file("acl"), std::nullopt});
    CHECK(b->authenticate(none(), none(), "c") == auth_decision::allow);
    CHECK(b->may_receive(anon, "public/x"));
    CHECK_FALSE(b->may_receive(anon, "other"));
}

TEST_CASE("authorizer: load reports the file and line at fault") {
    temp_dir dir;
    write_file(dir.file("pw"), std::string(alice_line) + "bob\n");
    write_file(dir.file("acl"), "topic read a\nbogus line\n");
    write_file(dir.file("good-pw"), alice_line);
    auto message = [](const file_authorizer_options& options) -> std::string {
        try {
            (void)file_authorizer::load(options);
        } catch (const file_error& e) {
            return e.what();
        }
        return "(loaded)";
    };
    CHECK(message({dir.file("pw"), std::nullopt, std::nullopt}) ==
          dir.file("pw") + ":2: missing ':' between user name and password hash");
    CHECK(message({dir.file("good-pw"), dir.file("acl"), std::nullopt}) ==
          dir.file("acl") + ":2: unknown keyword 'bogus' (expected topic, pattern or user)");
    CHECK(message({dir.file("missing"), std::nullopt, std::nullopt}) ==
          dir.file("missing") + ": cannot open: No such file or directory");
    CHECK(message({std::nullopt, std::nullopt, false}) == "(loaded)");
}

TEST_CASE("authorizer: safe to use from many threads at once") {
    const std::string password_line = alice_line;
    const auto a = std::make_shared<const file_authorizer>(
        password_file::parse(password_line, "pw"),
        acl_file::parse("pattern readwrite devices/%c/#\nuser alice\ntopic read #\n", "acl"), std::nullopt);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            const client_identity device{"d" + std::to_string(t), std::nullopt};
            const client_identity alice{"c", std::string("alice")};
            for (int i = 0; i < 2000; ++i) {
                if (!a->may_publish(device, "devices/d" + std::to_string(t) + "/x")) ++wrong;
                if (a->may_publish(device, "devices/other/x")) ++wrong;
                if (!a->may_subscribe(alice, "a/+/b")) ++wrong;
                if (!a->may_receive(alice, "a/b")) ++wrong;
                if (i % 500 == 0 && a->authenticate(std::string("alice"), std::string("secret"), "c") !=
                                        auth_decision::allow) {
                    ++wrong;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(wrong.load() == 0);
}
