//! Incremental UTF-8 validation (RFC 6455 §8.1): a text message may be split anywhere, even
//! inside a code point, and an invalid byte must fail the connection as soon as it arrives.

/// Validates a byte stream piece by piece, remembering an incomplete code point at the end
/// of a piece. Uses `simdutf8` for the bulk of each piece.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// The input is not UTF-8 (or cannot be completed into UTF-8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

/// Length of the code point a lead byte announces, 0 when it cannot lead one.
fn width(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

/// Whether `bytes` (shorter than a whole code point) can still become a valid one.
fn is_valid_prefix(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.valid_up_to() == 0 && e.error_len().is_none(),
    }
}

impl Utf8Validator {
    /// Validates the next piece. Fails on the first byte that makes the stream invalid,
    /// including a truncated code point that can no longer be completed.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let need = width(self.partial[0]) - have;
            let take = need.min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            let now = have + take;
            if take < need {
                if !is_valid_prefix(&self.partial[..now]) {
                    return Err(InvalidUtf8);
                }
                self.partial_len = now as u8;
                return Ok(());
            }
            if std::str::from_utf8(&self.partial[..now]).is_err() {
                return Err(InvalidUtf8);
            }
            self.partial_len = 0;
            data = &data[take..];
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Checks that the stream ended on a code point boundary.
    pub(crate) fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.partial_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_everywhere(bytes: &[u8]) -> Vec<Result<(), InvalidUtf8>> {
        (0..=bytes.len())
            .map(|cut| {
                let mut v = Utf8Validator::default();
                v.feed(&bytes[..cut])
                    .and_then(|_| v.feed(&bytes[cut..]))
                    .and_then(|_| v.finish())
            })
            .collect()
    }

    #[test]
    fn rfc6455_8_1_valid_text_split_anywhere() {
        let text = "κόσμε — Hello-µ@ßöäüàá-UTF-8!! 𝄞 \u{10FFFF}";
        for r in split_everywhere(text.as_bytes()) {
            assert_eq!(r, Ok(()));
        }
        // byte at a time
        let mut v = Utf8Validator::default();
        for b in text.as_bytes() {
            v.feed(std::slice::from_ref(b)).unwrap();
        }
        v.finish().unwrap();
    }

    #[test]
    fn rfc6455_8_1_invalid_text_rejected_at_any_split() {
        let cases: &[&[u8]] = &[
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xff",
            b"abc\xe0\x80\xaf",
            b"\xf0\x9f\x98",
        ];
        for case in cases {
            for r in split_everywhere(case) {
                assert_eq!(r, Err(InvalidUtf8), "{case:x?}");
            }
        }
    }

    #[test]
    fn rfc6455_8_1_fails_fast_on_impossible_prefix() {
        // 0xF4 0x90 can never start a valid code point: fail before the rest arrives.
        let mut v = Utf8Validator::default();
        v.feed(b"ok\xf4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
        // An ED A0 prefix (a surrogate) likewise.
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"\xed\xa0"), Err(InvalidUtf8));
    }
}
