// The child-process helper: what a child says reaches its parent in order, and every way a child
// can end is told apart.
#include <gtest/gtest.h>

#include <csignal>
#include <stdexcept>
#include <string>
#include <vector>

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
}

}  // namespace
}  // namespace cyclefuzz
