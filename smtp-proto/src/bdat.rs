//! The BDAT chunk reader (RFC 3030): exactly `size` octets follow the BDAT line, with no
//! stuffing and no terminator.

/// Reads the octets of one BDAT chunk from successive inputs (sans-IO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BdatReceiver {
    remaining: u64,
}

impl BdatReceiver {
    /// A reader for a chunk of `size` octets.
    pub fn new(size: u64) -> Self {
        BdatReceiver { remaining: size }
    }

    /// Octets of the chunk not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// True once the whole chunk has been read.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// Takes the chunk's octets from the front of `input`: the returned slice is chunk data,
    /// and its length is what was used; anything after it is the next command.
    pub fn take<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        let n = usize::try_from(self.remaining).map_or(input.len(), |r| r.min(input.len()));
        self.remaining -= n as u64;
        &input[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_exactly_the_chunk_across_inputs() {
        let mut chunk = BdatReceiver::new(5);
        assert_eq!(chunk.take(b"ab"), b"ab");
        assert!(!chunk.is_done());
        assert_eq!(chunk.remaining(), 3);
        assert_eq!(chunk.take(b"cdeQUIT\r\n"), b"cde");
        assert!(chunk.is_done());
        assert_eq!(chunk.take(b"QUIT\r\n"), b"");
        assert!(BdatReceiver::new(0).is_done());
    }
}
