// Weak references as the built-in collectors keep them: from each weak reference to its target,
// and from each target to its weak references, so that freeing an object clears them at once.
#pragma once

#include <optional>
#include <unordered_map>
#include <vector>

#include "language/op.h"

namespace cyclefuzz {

class WeakReferences {
 public:
  void add(WeakId w, ObjectId target, bool callback) {
    if (entries_.size() <= w) entries_.resize(w + 1);
    entries_[w] = {target, callback, false};
    by_target_[target].push_back(w);
  }

  /// Clears the weak references to `target`; returns them, in the order they were taken.
  std::vector<WeakId> clear(ObjectId target) {
    const auto it = by_target_.find(target);
    if (it == by_target_.end()) return {};
    std::vector<WeakId> cleared = std::move(it->second);
    by_target_.erase(it);
    for (WeakId w : cleared) entries_[w].cleared = true;
    return cleared;
  }

  /// Whether no weak reference is left to clear (then a collection need not list its garbage).
  bool empty() const { return by_target_.empty(); }

  bool has_callback(WeakId w) const { return entries_[w].callback; }

  std::optional<ObjectId> deref(WeakId w) const {
    if (w >= entries_.size() || entries_[w].cleared) return std::nullopt;
    return entries_[w].target;
  }

 private:
  struct Entry {
    ObjectId target = 0;
    bool callback = false;
    bool cleared = false;
  };
  std::vector<Entry> entries_;  // by weak reference
  std::unordered_map<ObjectId, std::vector<WeakId>> by_target_;
};

}  // namespace cyclefuzz
