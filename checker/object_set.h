// A set of object ids that empties in the time it takes to list its members.
//
// The checker recomputes sets of objects (what the program's list reaches, what frozen objects
// keep, the garbage a collection must find) at every op or collection. A long trace allocates
// far more objects than any one op touches, so a set that cleared a flag per object ever
// allocated would make a trace's time grow with the square of its length. Here each id carries
// the epoch in which it was inserted; clear() starts a new epoch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "language/op.h"

namespace cyclefuzz {

class ObjectSet {
 public:
  ObjectSet() = default;
  // Copying would copy an epoch per object ever inserted: assign() copies the members only.
  ObjectSet(const ObjectSet&) = delete;
  ObjectSet& operator=(const ObjectSet&) = delete;
  ObjectSet(ObjectSet&&) = default;
  ObjectSet& operator=(ObjectSet&&) = default;

  bool contains(ObjectId x) const { return x < epoch_.size() && epoch_[x] == current_; }
  bool empty() const { return members_.empty(); }
  /// In the order they were inserted.
  std::span<const ObjectId> members() const { return members_; }

  void insert(ObjectId x) {
    if (x >= epoch_.size()) epoch_.resize(std::max<std::size_t>(x + 1, 2 * epoch_.size()), 0);
    if (epoch_[x] == current_) return;
    epoch_[x] = current_;
    members_.push_back(x);
  }
  /// In the time it takes to list the members: for what is rarely taken out.
  void erase(ObjectId x) {
    if (!contains(x)) return;
    epoch_[x] = 0;
    members_.erase(std::find(members_.begin(), members_.end(), x));
  }
  void clear() {
    members_.clear();
    if (++current_ == 0) {  // the epoch counter wrapped: forget every old epoch for real
      std::fill(epoch_.begin(), epoch_.end(), 0);
      current_ = 1;
    }
  }
  /// Becomes a copy of `other`, in the time it takes to list other's members.
  void assign(const ObjectSet& other) {
    clear();
    for (ObjectId x : other.members_) insert(x);
  }

 private:
  std::vector<std::uint32_t> epoch_;  // by object id: the epoch it was last inserted in
  std::uint32_t current_ = 1;         // (0 never marks a member)
  std::vector<ObjectId> members_;
};

}  // namespace cyclefuzz
