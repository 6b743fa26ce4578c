// The child-process helper: what a child says reaches its parent in order, and every way a child
// can end is told apart; a serving child answers one request after another until it crashes.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "runners/child_process.h"

namespace cyclefuzz {
namespace {

TEST(ChildProcess, HandsOverEveryMessageInOrderThenTheExitStatus) {
  std::vector<ChildMessage> heard;
  const ChildEnd end = run_in_child(
      "a test",
      [](const ChildPipe& parent) {
        parent.send('P', 7);
        parent.send('T', 0, std::string(100'000, 'x'));  // more than a pipe holds at once
        return 42;
      },
      [&](ChildMessage message) { heard.push_back(std::move(message)); });
  EXPECT_EQ(end.signal, 0);
  EXPECT_EQ(end.exit_status, 42);
  EXPECT_TRUE(end.returned);
  EXPECT_FALSE(end.exited_cleanly());
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0].tag, 'P');
  EXPECT_EQ(heard[0].value, 7u);
  EXPECT_TRUE(heard[0].payload.empty());
  EXPECT_EQ(heard[1].tag, 'T');
  EXPECT_EQ(heard[1].payload, std::string(100'000, 'x'));
}

TEST(ChildProcess, AChildThatSaysNothingAndPassesExitsCleanly) {
  EXPECT_TRUE(run_in_child("a test", [](const ChildPipe&) { return 0; }).exited_cleanly());
}

TEST(ChildProcess, TellsTheSignalThatKilledTheChildAfterWhatItSaidFirst) {
  std::uint64_t last = 0;
  const ChildEnd end = run_in_child(
      "a test",
      [](const ChildPipe& parent) {
        parent.send('P', 3);
        parent.progress(5);
        parent.progress(6);
        // (SIGKILL: a sanitizer catches SIGSEGV and exits with a status of its own instead.)
        std::raise(SIGKILL);
        return 0;
      },
      [&](ChildMessage message) { last = message.value; });
  EXPECT_EQ(end.signal, SIGKILL);
  EXPECT_FALSE(end.returned);
  EXPECT_EQ(last, 3u);
  EXPECT_EQ(end.progress, 6u);  // the last progress it made, through the memory they share
}

TEST(ChildProcess, AChildThatMadeNoProgressSaysZero) {
  EXPECT_EQ(run_in_child("a test", [](const ChildPipe&) { return 0; }).progress, 0u);
}

TEST(ChildProcess, AnExceptionInTheChildAbortsItRatherThanReachingTheParentsCode) {
  const ChildEnd end = run_in_child("a test", [](const ChildPipe&) -> int {
    throw std::runtime_error("thrown in the child");
  });
  EXPECT_EQ(end.signal, SIGABRT);
  EXPECT_FALSE(end.returned);
}

TEST(ChildProcess, AChildThatExitsBeforeItsBodyReturnsHasNotReturned) {
  // (As a sanitizer's report ends a child: with an exit status, which may be any.)
  const ChildEnd end = run_in_child("a test", [](const ChildPipe&) -> int { std::_Exit(0); });
  EXPECT_TRUE(end.exited_cleanly());
  EXPECT_FALSE(end.returned);
}

TEST(ServingChild, AnswersEachRequestInOrderFromOneChild) {
  int served = 0;  // the child's own count: each answer says how many came before it
  ServingChild child("a test", [&](std::string_view request) {
    return std::string(request) + " " + std::to_string(++served) + " " + std::to_string(getpid());
  });
  const std::optional<std::string> first = child.ask("first");
  const std::optional<std::string> second = child.ask(std::string(100'000, 'x'));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->rfind("first 1 ", 0), 0u) << *first;
  EXPECT_EQ(second->rfind(std::string(100'000, 'x') + " 2 ", 0), 0u);
  const std::string pid = first->substr(first->rfind(' ') + 1);
  EXPECT_NE(pid, std::to_string(getpid()));  // not the parent
  EXPECT_EQ(second->substr(second->rfind(' ') + 1), pid);  // one child for both
  EXPECT_EQ(served, 0);  // (the parent's count never moved)
}

TEST(ServingChild, AChildThatCrashesAnswersNothingFromThenOn) {
  ServingChild child("a test", [](std::string_view request) -> std::string {
    if (request == "crash") std::raise(SIGKILL);
    return "ok";
  });
  EXPECT_EQ(child.ask("a"), "ok");
  EXPECT_EQ(child.ask("crash"), std::nullopt);
  EXPECT_EQ(child.ask("b"), std::nullopt);
}

}  // namespace
}  // namespace cyclefuzz
