//! Room names and their validation.

use std::fmt;

/// The longest room name, in bytes.
pub const MAX_ROOM_NAME_LEN: usize = 128;

/// Why a room name was refused by [`validate_room_name`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomNameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_ROOM_NAME_LEN`] bytes.
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The name holds a character outside ASCII letters, digits and `-_.:/@#+=~`.
    InvalidChar {
        /// The character.
        ch: char,
        /// Its byte offset in the name.
        index: usize,
    },
}

impl fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a room name cannot be empty"),
            Self::TooLong { len } => write!(
                f,
                "a room name has at most {MAX_ROOM_NAME_LEN} bytes, this one has {len}"
            ),
            Self::InvalidChar { ch, index } => write!(
                f,
                "a room name holds ASCII letters, digits and -_.:/@#+=~ only, not {ch:?} (at byte {index})"
            ),
        }
    }
}

impl std::error::Error for RoomNameError {}

/// Checks a room name: 1 to [`MAX_ROOM_NAME_LEN`] bytes of ASCII letters, digits and
/// `-_.:/@#+=~` (enough for `chat:lobby`, `user/42`, `prices.EURUSD`).
pub fn validate_room_name(name: &str) -> Result<(), RoomNameError> {
    if name.is_empty() {
        return Err(RoomNameError::Empty);
    }
    if name.len() > MAX_ROOM_NAME_LEN {
        return Err(RoomNameError::TooLong { len: name.len() });
    }
    for (index, ch) in name.char_indices() {
        let ok = ch.is_ascii_alphanumeric() || "-_.:/@#+=~".contains(ch);
        if !ok {
            return Err(RoomNameError::InvalidChar { ch, index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_room_name("chat:lobby"), Ok(()));
        assert_eq!(validate_room_name("prices.EUR/USD"), Ok(()));
        assert_eq!(validate_room_name(""), Err(RoomNameError::Empty));
        assert_eq!(
            validate_room_name(&"a".repeat(129)),
            Err(RoomNameError::TooLong { len: 129 })
        );
        assert_eq!(validate_room_name(&"a".repeat(128)), Ok(()));
        assert_eq!(
            validate_room_name("a b"),
            Err(RoomNameError::InvalidChar { ch: ' ', index: 1 })
        );
        assert_eq!(
            validate_room_name("ré"),
            Err(RoomNameError::InvalidChar { ch: 'é', index: 1 })
        );
    }
}
