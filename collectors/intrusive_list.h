// A doubly linked list threaded through the objects themselves, as CPython's PyGC_Head lists:
// O(1) insertion, removal from any position and splicing, and no allocation. A cell is in at most
// one list at a time.
#pragma once

#include <cassert>
#include <cstddef>

namespace cyclefuzz {

struct ListLinks {
  ListLinks* prev = nullptr;
  ListLinks* next = nullptr;
  bool linked() const { return next != nullptr; }
};

/// T must derive from ListLinks.
template <class T>
class IntrusiveList {
 public:
  IntrusiveList() { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const { return head_.next == &head_; }
  std::size_t size() const { return size_; }
  T* front() const { return empty() ? nullptr : static_cast<T*>(head_.next); }
  /// The element after `x`, or nullptr at the end.
  T* next(const T* x) const {
    return x->next == &head_ ? nullptr : static_cast<T*>(x->next);
  }

  void push_back(T* x) {
    assert(!x->linked());
    x->prev = head_.prev;
    x->next = &head_;
    head_.prev->next = x;
    head_.prev = x;
    ++size_;
  }

  void remove(T* x) {
    assert(x->linked());
    x->prev->next = x->next;
    x->next->prev = x->prev;
    x->prev = x->next = nullptr;
    --size_;
  }

  /// Moves every element of `other` to the end of this list.
  void splice_back(IntrusiveList& other) {
    if (other.empty()) return;
    ListLinks* first = other.head_.next;
    ListLinks* last = other.head_.prev;
    first->prev = head_.prev;
    head_.prev->next = first;
    last->next = &head_;
    head_.prev = last;
    size_ += other.size_;
    other.head_.prev = other.head_.next = &other.head_;
    other.size_ = 0;
  }

  /// Calls f(x) for each element; f may remove x (and only x) from this list.
  template <class F>
  void for_each(F f) const {
    for (ListLinks* at = head_.next; at != &head_;) {
      ListLinks* after = at->next;
      f(static_cast<T*>(at));
      at = after;
    }
  }

 private:
  ListLinks head_;
  std::size_t size_ = 0;
};

}  // namespace cyclefuzz
