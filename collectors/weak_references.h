// Weak references as the built-in collectors keep them: from each weak reference to its target,
// and from each target to its weak references, so that freeing an object clears them at once;
// and from each holder to the weak references it holds, so that freeing the holder drops them
// (a weakref object goes with the object that refers to it: nothing clears it afterwards).
#pragma once

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <vector>

#include "language/op.h"

namespace cyclefuzz {

class WeakReferences {
 public:
  void add(WeakId w, ObjectId target, bool callback) {
    if (entries_.size() <= w) entries_.resize(w + 1);
    entries_[w] = {target, callback, false, std::nullopt};
    by_target_[target].push_back(w);
  }

  /// `holder` holds w (right after add).
  void hold(WeakId w, ObjectId holder) {
    entries_[w].holder = holder;
    by_holder_[holder].push_back(w);
  }

  /// The holder was freed: the weak references it held are gone, uncleared.
  void drop_held_by(ObjectId holder) {
    clear_held_by(holder);
    by_holder_.erase(holder);
  }

  /// Clears the weak references `holder` holds that are not cleared yet; returns them.
  std::vector<WeakId> clear_held_by(ObjectId holder) {
    std::vector<WeakId> cleared;
    const auto it = by_holder_.find(holder);
    if (it == by_holder_.end()) return cleared;
    for (WeakId w : it->second) {
      Entry& entry = entries_[w];
      if (entry.cleared) continue;
      entry.cleared = true;
      cleared.push_back(w);
      std::vector<WeakId>& to_target = by_target_[entry.target];
      to_target.erase(std::find(to_target.begin(), to_target.end(), w));
      if (to_target.empty()) by_target_.erase(entry.target);
    }
    return cleared;
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
  std::optional<ObjectId> holder(WeakId w) const { return entries_[w].holder; }

  std::optional<ObjectId> deref(WeakId w) const {
    if (w >= entries_.size() || entries_[w].cleared) return std::nullopt;
    return entries_[w].target;
  }

 private:
  struct Entry {
    ObjectId target = 0;
    bool callback = false;
    bool cleared = false;  // or dropped with its holder
    std::optional<ObjectId> holder;
  };
  std::vector<Entry> entries_;  // by weak reference
  std::unordered_map<ObjectId, std::vector<WeakId>> by_target_;
  std::unordered_map<ObjectId, std::vector<WeakId>> by_holder_;
};

}  // namespace cyclefuzz
