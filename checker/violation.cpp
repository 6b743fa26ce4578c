#include "checker/violation.h"

namespace cyclefuzz {

namespace {

struct Words {
  const char* words;
  const char* slug;
};

constexpr Words kWords[] = {
#define CYCLEFUZZ_WORDS(name, words, slug) {words, slug},
    CYCLEFUZZ_VIOLATION_KINDS(CYCLEFUZZ_WORDS)
#undef CYCLEFUZZ_WORDS
};

}  // namespace

const char* describe(ViolationKind kind) { return kWords[static_cast<std::size_t>(kind)].words; }
const char* slug(ViolationKind kind) { return kWords[static_cast<std::size_t>(kind)].slug; }

}  // namespace cyclefuzz
