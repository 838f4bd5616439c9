//! A FIFO queue that holds its first item inline, so that the usual case of one item at a
//! time (one event, one frame to write) never allocates, and an empty queue holds no heap.

use std::collections::VecDeque;

/// A FIFO queue: the oldest item inline, the rest in a `VecDeque` that is freed whenever the
/// queue runs empty.
///
/// The connection keeps its events and frames to write in it; the adapters keep received
/// messages in it. One item at a time, the common case, costs no allocation.
///
/// ```
/// let mut q = tether_core::Queue::default();
/// q.push_back("a");
/// q.push_back("b");
/// assert_eq!(q.pop_front(), Some("a"));
/// assert_eq!(q.len(), 1);
/// ```
#[derive(Debug)]
pub struct Queue<T> {
    front: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            front: None,
            rest: VecDeque::new(),
        }
    }
}

impl<T> Queue<T> {
    /// Appends an item.
    pub fn push_back(&mut self, item: T) {
        if self.front.is_none() {
            debug_assert!(self.rest.is_empty());
            self.front = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    /// Takes the oldest item.
    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.front.take()?;
        self.front = self.rest.pop_front();
        if self.rest.is_empty() && self.rest.capacity() > 0 {
            self.rest = VecDeque::new();
        }
        Some(item)
    }

    /// The newest item.
    pub fn back_mut(&mut self) -> Option<&mut T> {
        match self.rest.back_mut() {
            Some(item) => Some(item),
            None => self.front.as_mut(),
        }
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    /// How many items the queue holds.
    pub fn len(&self) -> usize {
        usize::from(self.front.is_some()) + self.rest.len()
    }

    /// The items, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.front.iter().chain(self.rest.iter())
    }

    /// Heap capacity, in items (0 while at most one item is held).
    pub fn heap_capacity(&self) -> usize {
        self.rest.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_no_heap_when_drained() {
        let mut q = Queue::default();
        assert!(q.is_empty());
        q.push_back(1);
        assert_eq!(q.heap_capacity(), 0, "one item stays inline");
        q.push_back(2);
        q.push_back(3);
        assert_eq!(q.len(), 3);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(q.back_mut(), Some(&mut 3));
        assert_eq!(q.pop_front(), Some(1));
        q.push_back(4);
        assert_eq!(q.pop_front(), Some(2));
        assert_eq!(q.pop_front(), Some(3));
        assert_eq!(
            q.heap_capacity(),
            0,
            "freed once only the inline item is left"
        );
        assert_eq!(q.pop_front(), Some(4));
        assert_eq!(q.pop_front(), None);
        assert!(q.is_empty());
    }
}
