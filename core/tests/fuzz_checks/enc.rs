//! The inverse of `arbitrary`'s decoding (arbitrary 1.x, `derive`), for the few shapes the
//! fuzz inputs use, so that seeds can be written from valid traffic.
//!
//! Rules mirrored: integers are little-endian; `bool` is one byte (`& 1`); an enum is a
//! `u32` tag `t` selecting variant `(t * count) >> 32`; a `Vec<T>` is a `1` byte before each
//! element and a `0` byte at the end; a trailing `&[u8]` field takes the rest of the input.
//! The replay test decodes every seed again and compares, so a mismatch cannot go unseen.

/// Bytes being written in `arbitrary`'s format.
#[derive(Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    /// An empty encoder.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// A `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    /// A `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `bool`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(u8::from(v));
        self
    }

    /// The tag selecting variant `index` of an enum with `count` variants.
    pub fn tag(&mut self, index: u32, count: u32) -> &mut Self {
        assert!(index < count);
        let tag = (u64::from(index) << 32).div_ceil(u64::from(count));
        let tag = u32::try_from(tag).expect("tag fits in u32");
        debug_assert_eq!((u64::from(tag) * u64::from(count)) >> 32, u64::from(index));
        self.u32(tag)
    }

    /// A `Vec<u8>` (not in trailing position).
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        for &x in b {
            self.0.push(1);
            self.0.push(x);
        }
        self.0.push(0);
        self
    }

    /// A `Vec<u16>`.
    pub fn u16s(&mut self, v: &[u16]) -> &mut Self {
        self.list(v, |e, &x| {
            e.u16(x);
        })
    }

    /// A `Vec<T>`, each element written by `f`.
    pub fn list<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Enc, &T)) -> &mut Self {
        for item in items {
            self.0.push(1);
            f(self, item);
        }
        self.0.push(0);
        self
    }

    /// A trailing `&[u8]`: the rest of the input.
    pub fn rest(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    /// The encoded bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}
