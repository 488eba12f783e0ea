//! A vector of optional entries with a free list: stable `u32` indices,
//! allocation only when the table grows (on commands, never per packet).

/// Stable-index storage.
#[derive(Debug)]
pub struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    /// Stores a value; returns its index.
    pub fn insert(&mut self, value: T) -> u32 {
        if let Some(i) = self.free.pop() {
            self.entries[i as usize] = Some(value);
            i
        } else {
            self.entries.push(Some(value));
            (self.entries.len() - 1) as u32
        }
    }
    /// Removes and returns the value at `i`.
    pub fn remove(&mut self, i: u32) -> Option<T> {
        let v = self.entries.get_mut(i as usize)?.take();
        if v.is_some() {
            self.free.push(i);
        }
        v
    }
    /// The value at `i`.
    pub fn get(&self, i: u32) -> Option<&T> {
        self.entries.get(i as usize)?.as_ref()
    }
    /// The value at `i`, mutably.
    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.entries.get_mut(i as usize)?.as_mut()
    }
    /// Every (index, value).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)))
    }
    /// Every (index, value), mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(i, v)| v.as_mut().map(|v| (i as u32, v)))
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }
    /// True when it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// One past the highest index ever used.
    pub fn bound(&self) -> u32 {
        self.entries.len() as u32
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reuses_indices() {
        let mut s = super::Slab::default();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.insert("c"), a);
        assert_eq!((s.get(b), s.len()), (Some(&"b"), 2));
    }
}
