// A cell's references, kept inside the cell while there are few of them.
//
// Objects mostly hold a handful of references. Kept inline, they share the cell's cache lines, so
// a collection that visits a cell and its references takes one cache miss where a separately
// allocated array took two, and allocating or freeing a cell is one allocation, not two. The
// cell is still one `new` of its own: a premature free stays a use-after-free AddressSanitizer
// sees.
//
// Up to four references live inline; past that they move to an array of their own, whose pointer
// takes the place of the inline ones (a union), and the size and capacity are 32 bits: 40 bytes in
// all, where boost::container::small_vector<Cell*, 4> took 56. A collection of a large heap is
// memory-bound, so every byte a cell saves is time saved on each pass over it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace cyclefuzz {

template <class Cell>
class References {
 public:
  using value_type = Cell*;
  using iterator = Cell**;
  using const_iterator = Cell* const*;

  References() = default;
  References(const References&) = delete;
  References& operator=(const References&) = delete;
  ~References() {
    if (on_heap()) delete[] slots_.heap;
  }

  iterator begin() { return data(); }
  iterator end() { return data() + size_; }
  const_iterator begin() const { return data(); }
  const_iterator end() const { return data() + size_; }
  Cell** data() { return on_heap() ? slots_.heap : slots_.cells; }
  Cell* const* data() const { return on_heap() ? slots_.heap : slots_.cells; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Cell* operator[](std::size_t i) const { return data()[i]; }
  Cell* front() const { return data()[0]; }
  Cell* back() const { return data()[size_ - 1]; }

  void push_back(Cell* c) {
    if (size_ == capacity_) grow();
    data()[size_++] = c;
  }
  void pop_back() { --size_; }
  /// Removes the element at `at`, keeping the order of the others.
  iterator erase(iterator at) {
    std::copy(at + 1, end(), at);
    --size_;
    return at;
  }
  void clear() { size_ = 0; }

  /// Exchanges the contents; neither representation points into the object itself, so this is
  /// a swap of the bytes.
  void swap(References& other) {
    Slots slots;
    std::memcpy(&slots, &slots_, sizeof slots);
    std::memcpy(&slots_, &other.slots_, sizeof slots);
    std::memcpy(&other.slots_, &slots, sizeof slots);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  static constexpr std::uint32_t kInline = 4;

  bool on_heap() const { return capacity_ > kInline; }

  void grow() {
    if (capacity_ > UINT32_MAX / 2) throw std::length_error("References: too many references");
    const std::uint32_t capacity = capacity_ * 2;
    Cell** bigger = new Cell*[capacity];
    std::copy(begin(), end(), bigger);
    if (on_heap()) delete[] slots_.heap;
    slots_.heap = bigger;
    capacity_ = capacity;
  }

  // The size first: a walk reads it before the references, and often reads nothing else.
  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = kInline;
  union Slots {
    Cell* cells[kInline];
    Cell** heap;
  };
  Slots slots_{};
};

}  // namespace cyclefuzz
