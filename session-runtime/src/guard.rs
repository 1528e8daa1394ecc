//! A structural check of a MessagePack value before serde sees it.
//!
//! serde decoders recurse once per nesting level, so a value nested a hundred thousand
//! levels deep (a few hundred kilobytes of input) overflows the stack, and a length prefix
//! claiming four billion elements can make a decoder reserve memory for them. This check
//! walks the value without recursion and refuses both before decoding starts: nesting
//! deeper than [`MAX_DEPTH`], and any length that the remaining input cannot hold.

/// The deepest nesting of arrays and maps accepted in one stored field.
pub const MAX_DEPTH: usize = 64;

/// Checks that `bytes` is exactly one well-framed MessagePack value within the limits.
pub(crate) fn check(bytes: &[u8]) -> Result<(), &'static str> {
    let mut cursor = Cursor { bytes, pos: 0 };
    // Values still to read at each open nesting level; the outer level holds one value. The
    // depth is bounded, so the levels fit on the stack: no allocation per checked field.
    let mut pending = [0u64; MAX_DEPTH + 1];
    pending[0] = 1;
    let mut depth: usize = 1;
    while let Some(top) = depth
        .checked_sub(1)
        .and_then(|level| pending.get_mut(level))
    {
        if *top == 0 {
            depth -= 1;
            continue;
        }
        *top -= 1;
        if let Some(children) = cursor.value_header()? {
            if children > 0 {
                if depth > MAX_DEPTH {
                    return Err("nesting deeper than the limit");
                }
                // Every element takes at least one byte.
                if children > cursor.remaining() {
                    return Err("container claims more elements than the input holds");
                }
                // `depth <= MAX_DEPTH` here, so the slot exists; `get_mut` keeps even a
                // mistake in that reasoning from becoming a panic.
                *pending
                    .get_mut(depth)
                    .ok_or("nesting deeper than the limit")? = children;
                depth += 1;
            }
        }
    }
    if cursor.remaining() != 0 {
        return Err("trailing bytes after the value");
    }
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let byte = *self.bytes.get(self.pos).ok_or("truncated value")?;
        self.pos += 1;
        Ok(byte)
    }

    /// A big-endian unsigned integer of `width` bytes.
    fn uint(&mut self, width: usize) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for _ in 0..width {
            value = (value << 8) | u64::from(self.byte()?);
        }
        Ok(value)
    }

    fn skip(&mut self, len: u64) -> Result<(), &'static str> {
        if len > self.remaining() {
            return Err("length exceeds the input");
        }
        // `len <= remaining`, which fits in usize.
        self.pos += usize::try_from(len).map_err(|_| "length exceeds the input")?;
        Ok(())
    }

    /// Reads one value's header and skips its scalar payload. Returns how many child
    /// values follow for an array or map (a map's keys and values both count).
    fn value_header(&mut self) -> Result<Option<u64>, &'static str> {
        let marker = self.byte()?;
        let children = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => return Ok(None),
            0x80..=0x8f => u64::from(marker & 0x0f) * 2,
            0x90..=0x9f => u64::from(marker & 0x0f),
            0xa0..=0xbf => return self.skip(u64::from(marker & 0x1f)).map(|()| None),
            0xc1 => return Err("reserved marker 0xc1"),
            0xc4 | 0xd9 => return self.sized(1, 0),
            0xc5 | 0xda => return self.sized(2, 0),
            0xc6 | 0xdb => return self.sized(4, 0),
            0xc7 => return self.sized(1, 1),
            0xc8 => return self.sized(2, 1),
            0xc9 => return self.sized(4, 1),
            0xca => return self.skip(4).map(|()| None),
            0xcb => return self.skip(8).map(|()| None),
            0xcc | 0xd0 => return self.skip(1).map(|()| None),
            0xcd | 0xd1 => return self.skip(2).map(|()| None),
            0xce | 0xd2 => return self.skip(4).map(|()| None),
            0xcf | 0xd3 => return self.skip(8).map(|()| None),
            0xd4 => return self.skip(2).map(|()| None),
            0xd5 => return self.skip(3).map(|()| None),
            0xd6 => return self.skip(5).map(|()| None),
            0xd7 => return self.skip(9).map(|()| None),
            0xd8 => return self.skip(17).map(|()| None),
            0xdc => self.uint(2)?,
            0xdd => self.uint(4)?,
            0xde => self.uint(2)? * 2,
            0xdf => self.uint(4)? * 2,
        };
        Ok(Some(children))
    }

    /// A str, bin or ext: a `width`-byte length, then `extra` type bytes and the payload.
    fn sized(&mut self, width: usize, extra: u64) -> Result<Option<u64>, &'static str> {
        let len = self.uint(width)?;
        self.skip(len + extra).map(|()| None)
    }
}

#[cfg(test)]
mod tests {
    use super::{check, MAX_DEPTH};

    #[test]
    fn accepts_ordinary_values() {
        let value = (vec!["a".to_owned(); 3], Some(1.5f64), -7i64, vec![0u8; 300]);
        let bytes = rmp_serde::to_vec(&value).unwrap();
        assert_eq!(check(&bytes), Ok(()));
        assert_eq!(check(&rmp_serde::to_vec(&u64::MAX).unwrap()), Ok(()));
    }

    #[test]
    fn refuses_depth_beyond_the_limit_and_accepts_it_at_the_limit() {
        let mut at_limit = vec![0x91; MAX_DEPTH];
        at_limit.push(0xc0);
        assert_eq!(check(&at_limit), Ok(()));
        let mut beyond = vec![0x91; MAX_DEPTH + 1];
        beyond.push(0xc0);
        assert!(check(&beyond).is_err());
    }

    #[test]
    fn refuses_lying_lengths_truncation_and_trailing_bytes() {
        assert!(check(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(check(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01]).is_err());
        assert!(check(&[0xc6, 0xff, 0xff, 0xff, 0xff, 0x00]).is_err());
        assert!(check(&[0xa5, b'a']).is_err());
        assert!(check(&[0x01, 0x02]).is_err());
        assert!(check(&[]).is_err());
        assert!(check(&[0xc1]).is_err());
    }
}
